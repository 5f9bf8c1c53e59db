"""What the HTTP carrier adapters (Twilio, Telnyx, Vonage, Plivo) share beyond ``base``.

Each adapter is built from one :class:`ProviderAccount`, sends over its own httpx client
to ``account.api_base_url``, checks credentials against the carrier, and turns a signed
callback request into receipts and inbound texts (:meth:`HttpCarrier.parse_callback`).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from agentsms.providers.base import (
    CarrierUnreachable,
    CredentialsRejected,
    InboundMessage,
    Lookup,
    ProviderAccount,
    ProviderEvents,
    Receipt,
    SendError,
    SendOutcome,
    SendRequest,
)
from agentsms.providers.handoff import HandoffLapsed, fence_client, lapsed

SEND_CONCURRENCY = 8
REQUEST_TIMEOUT_SECONDS = 15.0
USER_AGENT = "agentsms"


class SignatureInvalid(Exception):
    """A callback's signature is missing, stale or wrong: answer 403 and change nothing."""


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A carrier's webhook as it reached us. ``url`` is the URL the carrier called, as it
    saw it (built from ``AGENTSMS_PUBLIC_URL``, with the query string); header names are
    lower case."""

    url: str
    method: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class InboundPart:
    """An inbound text, or one part of a concatenated one (``total`` > 1)."""

    message: InboundMessage
    concat_ref: str | None = None
    part: int = 1
    total: int = 1


@dataclass(slots=True)
class CallbackBatch:
    """What one verified callback carried."""

    receipts: list[Receipt] = field(default_factory=list)
    inbound: list[InboundPart] = field(default_factory=list)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def http_error(
    response: httpx.Response,
    code: str,
    message: str,
    *,
    permanent: frozenset[str] = frozenset(),
    retryable: frozenset[str] = frozenset(),
) -> SendError:
    """A refused send: 429 and 5xx (and the carrier's own throttling codes) are retried,
    other 4xx are permanent; documented codes override the status."""
    is_retryable = response.status_code == 429 or response.status_code >= 500
    if code in retryable:
        is_retryable = True
    if code in permanent:
        is_retryable = False
    return SendError(
        code=code,
        message=message,
        retryable=is_retryable,
        retry_after=retry_after_seconds(response) if is_retryable else None,
    )


def unsupported_channel(carrier: str, channel: str) -> SendError:
    """A permanent refusal for a channel this carrier's adapter does not send."""
    return SendError(
        code="unsupported_channel",
        message=f"the {carrier} adapter does not send {channel} messages",
        retryable=False,
    )


def e164(value: str) -> str:
    """A carrier's number (``14155550100`` or ``+14155550100``) in E.164."""
    value = value.strip().removeprefix("whatsapp:")
    if value and value[0] != "+" and value.isdigit():
        return f"+{value}"
    return value


class HttpCarrier:
    """The shared part of the HTTP adapters: client, concurrency, callback URLs."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # the carrier's name in messages to people
    default_api_base_url: ClassVar[str] = ""
    required_credentials: ClassVar[tuple[str, ...]] = ()
    optional_credentials: ClassVar[tuple[str, ...]] = ()
    callback_content_type: ClassVar[str] = "application/json"
    callback_body: ClassVar[bytes] = b"{}"

    def __init__(
        self,
        account: ProviderAccount,
        *,
        events: ProviderEvents | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport`` is the SSRF guard in production (the account's URL is the tenant's)."""
        self.account = account
        self.credentials = account.credentials
        self.client = fence_client(
            client
            or httpx.AsyncClient(
                base_url=account.api_base_url.rstrip("/"),
                timeout=httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=5.0),
                headers={"User-Agent": USER_AGENT},
                transport=transport,
            )
        )
        self._limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send_many(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        """Each request is its own API call; a few run at once, answers stay in order."""

        async def one(request: SendRequest) -> SendOutcome:
            if request.channel not in self.channels:
                return unsupported_channel(self.name, request.channel)
            async with self._limit:
                try:
                    return await self.send(request)
                except HandoffLapsed:
                    return lapsed()
                except httpx.TransportError as error:
                    return SendError(
                        code="network_error",
                        message=f"{self.name} could not be reached: {error!r}",
                        # A transport marks what can never succeed (the SSRF guard's refusals).
                        retryable=bool(getattr(error, "retryable", True)),
                    )

        return list(await asyncio.gather(*(one(r) for r in requests)))

    channels: ClassVar[tuple[str, ...]] = ("sms", "mms")

    async def send(self, request: SendRequest) -> SendOutcome:
        raise NotImplementedError

    async def lookup(self, request: SendRequest) -> Lookup | None:
        """These carriers cannot find a message by our reference: the dispatcher's
        ``uncertain_send_policy`` decides."""
        return None

    async def check_credentials(self) -> None:
        """Ask the carrier whether the credentials work; raise ``CredentialsRejected``."""
        raise NotImplementedError

    async def probe(
        self,
        path: str,
        rejection: Callable[[httpx.Response], CredentialsRejected | None],
        **options: Any,
    ) -> httpx.Response:
        """``GET path`` (httpx ``options``: auth, headers) to check the credentials; the
        answer when it is a success. Raises ``rejection(response)`` when that is not None
        (the carrier refused them), else ``CarrierUnreachable`` for a network error or any
        other 4xx/5xx answer."""
        try:
            response = await self.client.get(path, **options)
        except httpx.TransportError as error:
            raise CarrierUnreachable(f"{self.title} could not be reached: {error!r}") from None
        refused = rejection(response)
        if refused is not None:
            raise refused
        if response.status_code >= 400:
            raise CarrierUnreachable(f"{self.title} answered {response.status_code}")
        return response

    def parse_callback(self, request: CallbackRequest) -> CallbackBatch:
        """Verify the signature (``SignatureInvalid``) and read receipts and texts."""
        raise NotImplementedError

    def media_auth(self, url: str) -> httpx.Auth | None:
        """Credentials for fetching an inbound media URL (only on the carrier's own API)."""
        return None

    def status_callback_url(self, request: SendRequest) -> str:
        """Where the carrier reports this message's status; ``ref`` finds the message
        even before its carrier id is recorded."""
        if request.status_callback_url:
            return request.status_callback_url
        return f"{self.account.callback_base_url}?{urlencode({'ref': request.reference})}"

    def _on_api_host(self, url: str) -> bool:
        ours = urlsplit(self.account.api_base_url)
        theirs = urlsplit(url)
        return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)

    async def aclose(self) -> None:
        await self.client.aclose()


def json_or_empty(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or ``{}`` when it is not one."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def decimal_or_none(value: object) -> Decimal | None:
    """A carrier's amount (number or text) as a ``Decimal``; None when absent or unreadable."""
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
