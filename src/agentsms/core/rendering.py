"""Stored rows as the resources the API shows and webhook events carry."""

from __future__ import annotations

from decimal import Decimal

from agentsms import purposes
from agentsms.resources import Message
from agentsms.store.records import MessageRecord

__all__ = ["message", "money"]

_MONEY_PLACES = Decimal("0.000001")  # the scale of every money column


def money(value: Decimal | float | str) -> Decimal:
    """Money as stored, whether it came from the database or was just computed."""
    return Decimal(value).quantize(_MONEY_PLACES)


def message(row: MessageRecord) -> Message:
    """The message resource of ``row`` (``GET /v1/messages/{id}``; webhook payloads carry it
    too)."""
    return Message(
        id=row.id,
        batch_id=row.batch_id,
        conversation_id=row.conversation_id,
        direction=row.direction,
        to=row.to_number,
        from_=row.from_number,
        body=row.body,
        media_urls=list(row.media_urls or []),
        channel=row.channel,
        status=row.status,
        segments=row.segments,
        encoding=row.encoding,
        price_estimate=money(row.price_estimate),
        price=None if row.price is None else money(row.price),
        currency=row.currency,
        send_at=row.send_at,
        sent_at=row.sent_at,
        delivered_at=row.delivered_at,
        expires_at=row.expires_at,
        error_code=row.error_code,
        error_message=row.error_message,
        metadata=dict(row.metadata or {}),
        external_id=row.external_id,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        send_style=row.send_style,
        reply_to_message_id=row.reply_to_message_id,
        reply_parent_unresolved=row.reply_parent_unresolved,
        purpose=row.purpose or purposes.API,
    )
