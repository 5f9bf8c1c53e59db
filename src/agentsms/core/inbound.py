"""Inbound texts: the one path every carrier's (and the simulator's) inbound message takes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import statuses
from agentsms.core.errors import invalid
from agentsms.core.messages import record_events
from agentsms.core.phone import parse_phone_field
from agentsms.core.segments import count_segments
from agentsms.ids import new_id
from agentsms.providers.base import InboundMessage
from agentsms.store.repositories import messages as repo
from agentsms.store.repositories import numbers as numbers_repo
from agentsms.store.types import utcnow

Row = Mapping[str, Any]


async def receive(
    conn: AsyncConnection, project_id: str, provider: str, inbound: InboundMessage
) -> Row:
    """Store a text a person sent to one of the project's numbers."""
    sender = parse_phone_field(inbound.from_number, "from")
    ours = parse_phone_field(inbound.to_number, "to")
    number = await numbers_repo.find_by_e164(conn, project_id, ours.e164)
    if number is None:
        raise invalid("to", "is not a number in this project's sender pool")
    if not inbound.body and not inbound.media_urls:
        raise invalid("body", "must not be empty unless media_urls is given")
    now = utcnow()
    info = count_segments(inbound.body)
    row = {
        "id": new_id("msg"),
        "project_id": project_id,
        "batch_id": None,
        "conversation_id": None,
        "direction": "inbound",
        "to_number": ours.e164,
        "from_number": sender.e164,
        "number_id": number["id"],
        "contact": sender.e164,
        "body": inbound.body,
        "media_urls": list(inbound.media_urls),
        "channel": inbound.channel if not inbound.media_urls or inbound.channel != "sms" else "mms",
        "status": statuses.RECEIVED,
        "segments": info.segments,
        "encoding": info.encoding,
        "price_estimate": 0,
        "price": None,
        "currency": number["currency"],
        "send_at": None,
        "expires_at": None,
        "sent_at": None,
        "delivered_at": now,
        "error_code": None,
        "error_message": None,
        "metadata": {},
        "external_id": None,
        "provider": provider,
        "provider_message_id": inbound.provider_message_id,
        "in_flight": False,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    await repo.insert_messages(conn, [row])
    await record_events(conn, [(row, statuses.RECEIVED, {})], now)
    return row
