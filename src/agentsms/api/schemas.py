"""Request and response bodies of the native API v1."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

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


def _moment(value: Any) -> Any:
    """ISO 8601 (a zone is required) or unix seconds, as the API accepts for ``send_at``."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 time or unix seconds")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 time or unix seconds") from None
        if parsed.tzinfo is None:
            raise ValueError("ISO 8601 time must include a zone, e.g. Z or +02:00")
        return parsed.astimezone(UTC)
    return value


Moment = Annotated[datetime, BeforeValidator(_moment)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MessageCreate(_Strict):
    """``POST /v1/messages``: one message to one recipient."""

    to: str = Field(description="Recipient in E.164, e.g. +14155552671", max_length=32)
    from_: str | None = Field(
        default=None, alias="from", description="A number of the project's pool", max_length=32
    )
    body: str | None = Field(default=None, description="Text; {{variables}} are filled")
    media_urls: list[str] = Field(default_factory=list)
    channel: Channel | None = None
    send_at: Moment | None = Field(default=None, description="ISO 8601 or unix seconds")
    metadata: dict[str, Any] = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=200)
    validity_seconds: int | None = Field(default=None, gt=0)
    variables: dict[str, Any] = Field(default_factory=dict)
    literal: bool = Field(
        default=False, description="Send the body as written: no {{variables}} filling"
    )


class Recipient(_Strict):
    """One recipient of a batch, with its own overrides."""

    to: str = Field(max_length=32)
    body: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    send_at: Moment | None = None
    external_id: str | None = Field(default=None, max_length=200)
    media_urls: list[str] | None = None


def _recipient_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "str"
    return "Recipient" if isinstance(value, dict | Recipient) else None


# A number or an object, told apart up front so an error names the fault of the one the
# client meant (not also "Input should be a valid string" for every object).
RecipientItem = Annotated[
    Annotated[str, Tag("str")] | Annotated[Recipient, Tag("Recipient")],
    Discriminator(
        _recipient_kind,
        custom_error_type="recipient_type",
        custom_error_message="must be a phone number or an object with 'to'",
    ),
]


class BatchCreate(_Strict):
    """``POST /v1/batches``: up to 10,000 recipients, accepted all or nothing."""

    recipients: list[RecipientItem] = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from", max_length=32)
    body: str | None = None
    media_urls: list[str] = Field(default_factory=list)
    channel: Channel | None = None
    send_at: Moment | None = None
    spacing_seconds: float | None = Field(default=None, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)
    validity_seconds: int | None = Field(default=None, gt=0)
    variables: dict[str, Any] = Field(default_factory=dict)
    literal: bool = Field(
        default=False, description="Send the body as written: no {{variables}} filling"
    )


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


class MessagePage(BaseModel):
    data: list[Message]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class Batch(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    total: int
    counts: dict[str, int] = Field(description="Messages per status")
    completed: int = Field(description="Messages in a final status")
    metadata: dict[str, Any]
    created_at: datetime
    message_ids: list[str] | None = Field(
        default=None, description="In recipient order; returned when the batch is created"
    )


class NumberCreate(_Strict):
    number: str = Field(max_length=32)
    provider: str | None = Field(
        default=None, description="Default: the account's provider, else simulator"
    )
    provider_account_id: str | None = Field(
        default=None, max_length=40, description="The carrier account this number belongs to"
    )
    capabilities: list[Channel] | None = Field(
        default=None, description="Default: sms and mms (sms for an SMPP number)"
    )
    throughput_mps: float = Field(default=1.0, gt=0, description="Messages per second")
    price_per_segment: Decimal = Field(default=Decimal("0"), ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    settings: dict[str, Any] = Field(default_factory=dict)


class Number(BaseModel):
    id: str
    object: Literal["number"] = "number"
    number: str
    provider: str
    country: str | None
    capabilities: list[Channel]
    throughput_mps: float
    price_per_segment: Decimal
    currency: str
    settings: dict[str, Any]
    created_at: datetime
    provider_account_id: str | None = None
    callback_url: str | None = Field(
        default=None, description="Paste into the carrier console for inbound texts and receipts"
    )


class NumberList(BaseModel):
    data: list[Number]


class Project(BaseModel):
    id: str
    object: Literal["project"] = "project"
    name: str
    settings: dict[str, Any]


class ProjectUpdate(_Strict):
    name: str | None = Field(default=None, max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict)


class SimulatorInbound(_Strict):
    """A text from a simulated person, injected as a carrier webhook would deliver it."""

    from_: str = Field(alias="from", max_length=32)
    to: str = Field(max_length=32)
    body: str = ""
    media_urls: list[str] = Field(default_factory=list)


class MessageEvent(BaseModel):
    id: str
    seq: int
    type: str
    message_id: str
    status: MessageStatus
    data: dict[str, Any]
    created_at: datetime


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine ``code`` and per-field errors."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] = Field(default_factory=list)


class ProviderAccountCreate(_Strict):
    """``POST /v1/provider-accounts``: credentials at a carrier (checked before saving)."""

    provider: str = Field(max_length=40, description="twilio, telnyx, vonage, plivo or smpp")
    name: str = Field(min_length=1, max_length=200)
    credentials: dict[str, str] = Field(
        description=(
            "twilio: account_sid, auth_token (+messaging_service_sid); telnyx: api_key, "
            "public_key (+messaging_profile_id); vonage: api_key, api_secret, application_id, "
            "private_key, signature_secret; plivo: auth_id, auth_token; smpp: system_id, "
            "password (+system_type)"
        )
    )
    api_base_url: str | None = Field(
        default=None, max_length=500, description="Default: the carrier's public API"
    )


class ProviderAccount(BaseModel):
    """A provider account. Credentials are never returned: ``credentials_set`` names them."""

    id: str
    object: Literal["provider_account"] = "provider_account"
    provider: str
    name: str
    api_base_url: str
    credentials_set: list[str]
    callback_url: str | None = Field(
        description="Paste into the carrier console for inbound texts and receipts; null for "
        "SMPP (they come over the session)"
    )
    created_at: datetime


class ProviderAccountList(BaseModel):
    data: list[ProviderAccount]


# -- API keys -----------------------------------------------------------------------------


class ApiKeyCreate(_Strict):
    """``POST /v1/api-keys``: a new key for the calling project."""

    name: str = Field(description="What the key is for, e.g. 'billing agent'", max_length=200)


class ApiKey(BaseModel):
    """An API key without its secret; ``prefix`` is its first 8 characters."""

    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    """A key just created: ``key`` is the secret, shown this once only."""

    key: str


class ApiKeyList(BaseModel):
    data: list[ApiKey]
