"""The one interface every carrier adapter implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

Channel = Literal["sms", "mms", "whatsapp", "imessage"]
ReceiptStatus = Literal["sent", "delivered", "undelivered", "failed"]


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One message to hand to a carrier. ``reference`` is our message id: carriers that
    honour a client reference use it to answer a repeated send with the first result."""

    reference: str
    from_number: str
    to_number: str
    body: str
    channel: Channel
    media_urls: Sequence[str] = ()
    number_settings: Mapping[str, Any] = field(default_factory=dict)
    status_callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """The carrier accepted the message."""

    provider_message_id: str
    status: ReceiptStatus = "sent"
    price: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class SendError:
    """The carrier refused the message. ``retryable`` decides between retry and failure."""

    code: str
    message: str
    retryable: bool
    retry_after: float | None = None


SendOutcome = SendResult | SendError


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a carrier knows of a message by our reference."""

    found: bool
    result: SendResult | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery report from a carrier."""

    provider_message_id: str | None
    status: ReceiptStatus
    reference: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    price: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A text from a person, as a carrier delivered it to us."""

    from_number: str
    to_number: str
    body: str
    media_urls: Sequence[str] = ()
    provider_message_id: str | None = None
    channel: Channel = "sms"


class CredentialsRejected(Exception):
    """The carrier refused the credentials (or one of them is malformed)."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class CarrierUnreachable(Exception):
    """The carrier could not be asked (network error, a 5xx answer, an SMSC that does not
    answer)."""


@runtime_checkable
class Provider(Protocol):
    """A carrier adapter."""

    name: str

    async def send_many(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        """Hand messages to the carrier; one outcome per request, in order."""
        ...

    async def lookup(self, request: SendRequest) -> Lookup | None:
        """Ask the carrier whether it already has this message (by reference).

        ``None`` means the carrier cannot answer that question.
        """
        ...


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    """A customer's account at a carrier, as a provider adapter is built from it.

    ``credentials`` are decrypted values (never logged); ``api_base_url`` is the carrier's
    public API unless the user pointed it at an edge, a proxy or a test server (for SMPP:
    ``smpp://host:port``); ``callback_base_url`` is where this account's carrier webhooks
    reach agentsms (``{public_url}/callbacks/{provider}/{account id}``).
    """

    id: str
    provider: str
    name: str
    credentials: Mapping[str, str]
    api_base_url: str
    callback_base_url: str


class ProviderEvents(Protocol):
    """Where a connection-oriented adapter (SMPP) delivers what its carrier pushes to it.

    HTTP carriers push through ``api/callbacks``; an SMPP session receives receipts and
    inbound texts on its own socket and hands them here.
    """

    async def receipts(self, account_id: str, receipts: Sequence[Receipt]) -> None:
        """Apply delivery receipts (forward-only, duplicates ignored)."""
        ...

    async def inbound(self, account_id: str, message: InboundMessage) -> None:
        """Store a whole (already reassembled) inbound text."""
        ...
