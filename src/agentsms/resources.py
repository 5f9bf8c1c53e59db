"""The message resource: one definition for the API (``GET /v1/messages/{id}``), the
``message.*`` webhook events built in ``core`` and the SDK (through ``api.schemas``).

Pure pydantic, below every layer, so the domain builds event payloads without importing
``api`` and ``import agentsms`` (the SDK) loads no server code. ``core.rendering`` fills it
from a stored row.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentsms.purposes import Purpose

__all__ = ["Channel", "Message", "MessageStatus"]

Channel = Literal["sms", "mms", "whatsapp", "imessage"]
MessageStatus = Literal[
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "canceled",
    "expired",
    "received",
]


class Message(BaseModel):
    """A message, outbound or inbound."""

    model_config = ConfigDict(populate_by_name=True, ser_json_timedelta="float")

    id: str
    object: Literal["message"] = "message"
    batch_id: str | None
    conversation_id: str | None
    direction: Literal["outbound", "inbound"]
    to: str
    from_: str = Field(alias="from")
    body: str
    media_urls: list[str]
    channel: Channel
    status: MessageStatus
    segments: int
    encoding: Literal["GSM-7", "UCS-2"]
    price_estimate: Decimal
    price: Decimal | None
    currency: str
    send_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    expires_at: datetime | None
    error_code: str | None
    error_message: str | None
    metadata: dict[str, Any]
    external_id: str | None
    provider: str
    provider_message_id: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    send_style: str | None = None
    reply_to_message_id: str | None = None
    reply_parent_unresolved: bool | None = None
    purpose: Purpose = Field(
        default="api",
        description="Why the message exists: api (a caller's send), agent, human, compliance "
        "(opt-out/opt-in/help answers), timeout_warning, timeout_message, inbound",
    )
