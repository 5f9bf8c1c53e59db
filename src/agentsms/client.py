"""A small typed client for the agentsms HTTP API (used by the CLI; usable from any script).

Responses are parsed into the API's own response models (``agentsms.api.schemas``), so
the client and the server share one definition of a Message, Batch, Number and event.
Problem responses (RFC 9457) raise :class:`ApiError`; a server that cannot be reached
raises :class:`ConnectionFailed`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, Self

import httpx
from httpx_sse import EventSource, SSEError, connect_sse

from agentsms.api.schemas import (
    Batch,
    Message,
    MessageEvent,
    MessagePage,
    Number,
    NumberList,
    ProviderAccount,
    ProviderAccountList,
)

DEFAULT_URL: Final = "http://127.0.0.1:8000"
FINAL_STATUSES: Final = frozenset(
    {"delivered", "undelivered", "failed", "canceled", "expired", "received"}
)

_RETRY_DELAYS: Final = (0.3, 1.0)
_MAX_RETRY_AFTER: Final = 10.0


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One ``{field, message}`` item of a problem response."""

    field: str
    message: str


@dataclass(eq=False)
class ApiError(Exception):
    """The API answered with an error (problem+json when it is agentsms answering)."""

    status: int
    title: str
    detail: str
    code: str = "http_error"
    errors: list[FieldProblem] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Read a problem+json body; fall back to the status line for anything else."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = response.text.strip()[:300] or response.reason_phrase
            return cls(response.status_code, response.reason_phrase, text)
        raw_errors = body.get("errors")
        errors = [
            FieldProblem(str(item.get("field", "")), str(item.get("message", "")))
            for item in (raw_errors if isinstance(raw_errors, list) else [])
            if isinstance(item, dict)
        ]
        detail = body.get("detail")
        title = str(body.get("title") or response.reason_phrase)
        return cls(
            status=response.status_code,
            title=title,
            detail=str(detail) if detail is not None else title,
            code=str(body.get("code") or "http_error"),
            errors=errors,
        )


class ConnectionFailed(Exception):
    """The server could not be reached (refused, DNS, TLS, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach agentsms at {url}: {reason}")
        self.url = url
        self.reason = reason


class StreamIdle(ConnectionFailed):
    """An event stream sent nothing (not even a ping) for longer than its read timeout."""


def new_idempotency_key() -> str:
    """A fresh key, so that a POST retried after a network error never sends twice."""
    return f"cli-{uuid.uuid4()}"


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _describe(error: httpx.TransportError) -> str:
    text = str(error).strip()
    return text or type(error).__name__


class Client:
    """A synchronous agentsms API client bound to one base URL and API key."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "agentsms-cli", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one request; retry network errors (when safe) and ``429`` with Retry-After."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        safe = method == "GET" or idempotency_key is not None
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    params=_without_none(params or {}),
                    headers=headers,
                )
            except httpx.TransportError as error:
                if not safe or attempt >= len(_RETRY_DELAYS):
                    raise ConnectionFailed(self.url, _describe(error)) from error
                time.sleep(_RETRY_DELAYS[attempt])
                attempt += 1
                continue
            if response.status_code == 429 and attempt < len(_RETRY_DELAYS):
                time.sleep(_retry_after(response))
                attempt += 1
                continue
            if response.status_code >= 400:
                raise ApiError.from_response(response)
            return response

    # -- messages ---------------------------------------------------------------------

    def send_message(
        self,
        to: str,
        body: str | None = None,
        *,
        from_: str | None = None,
        media_urls: Sequence[str] = (),
        channel: str | None = None,
        send_at: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        external_id: str | None = None,
        validity_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """``POST /v1/messages``. A key is generated when none is given, so retries are safe."""
        payload = _without_none(
            {
                "to": to,
                "body": body,
                "from": from_,
                "media_urls": list(media_urls) or None,
                "channel": channel,
                "send_at": send_at,
                "metadata": dict(metadata) if metadata else None,
                "external_id": external_id,
                "validity_seconds": validity_seconds,
            }
        )
        response = self.request(
            "POST",
            "/v1/messages",
            json=payload,
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        return Message.model_validate_json(response.content)

    def get_message(self, message_id: str) -> Message:
        return Message.model_validate_json(
            self.request("GET", f"/v1/messages/{message_id}").content
        )

    def message_events(self, message_id: str) -> list[MessageEvent]:
        """Every status change of one message, oldest first."""
        response = self.request("GET", f"/v1/messages/{message_id}/events")
        return [MessageEvent.model_validate(item) for item in response.json()]

    def list_messages(
        self,
        *,
        status: str | None = None,
        to: str | None = None,
        from_: str | None = None,
        batch_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> MessagePage:
        """One page of ``GET /v1/messages``, newest first."""
        params = {
            "status": status,
            "to": to,
            "from": from_,
            "batch_id": batch_id,
            "limit": limit,
            "cursor": cursor,
        }
        response = self.request("GET", "/v1/messages", params=params)
        return MessagePage.model_validate_json(response.content)

    def cancel_message(self, message_id: str) -> Message:
        response = self.request("POST", f"/v1/messages/{message_id}/cancel")
        return Message.model_validate_json(response.content)

    # -- batches ----------------------------------------------------------------------

    def create_batch(
        self,
        recipients: Sequence[str | Mapping[str, Any]],
        *,
        body: str | None = None,
        from_: str | None = None,
        media_urls: Sequence[str] = (),
        channel: str | None = None,
        send_at: str | None = None,
        spacing_seconds: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """``POST /v1/batches``: up to 10,000 recipients, accepted all or nothing."""
        payload = _without_none(
            {
                "recipients": [r if isinstance(r, str) else dict(r) for r in recipients],
                "body": body,
                "from": from_,
                "media_urls": list(media_urls) or None,
                "channel": channel,
                "send_at": send_at,
                "spacing_seconds": spacing_seconds,
                "metadata": dict(metadata) if metadata else None,
            }
        )
        response = self.request(
            "POST",
            "/v1/batches",
            json=payload,
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        return Batch.model_validate_json(response.content)

    def get_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate_json(self.request("GET", f"/v1/batches/{batch_id}").content)

    # -- numbers ----------------------------------------------------------------------

    def add_number(
        self,
        number: str,
        *,
        provider: str | None = None,
        provider_account_id: str | None = None,
        capabilities: Sequence[str] = (),
        throughput_mps: float | None = None,
        price_per_segment: Decimal | None = None,
        currency: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Number:
        """``POST /v1/numbers``: add a sender to the project's pool."""
        payload = _without_none(
            {
                "number": number,
                "provider": provider,
                "provider_account_id": provider_account_id,
                "capabilities": list(capabilities) or None,
                "throughput_mps": throughput_mps,
                "price_per_segment": str(price_per_segment) if price_per_segment else None,
                "currency": currency,
                "settings": dict(settings) if settings else None,
            }
        )
        response = self.request("POST", "/v1/numbers", json=payload)
        return Number.model_validate_json(response.content)

    def list_numbers(self) -> list[Number]:
        return NumberList.model_validate_json(self.request("GET", "/v1/numbers").content).data

    # -- provider accounts ------------------------------------------------------------

    def add_provider_account(
        self,
        provider: str,
        name: str,
        credentials: Mapping[str, str],
        *,
        api_base_url: str | None = None,
    ) -> ProviderAccount:
        """``POST /v1/provider-accounts``: the carrier checks the credentials first."""
        payload = _without_none(
            {
                "provider": provider,
                "name": name,
                "credentials": dict(credentials),
                "api_base_url": api_base_url,
            }
        )
        response = self.request("POST", "/v1/provider-accounts", json=payload)
        return ProviderAccount.model_validate_json(response.content)

    def list_provider_accounts(self) -> list[ProviderAccount]:
        response = self.request("GET", "/v1/provider-accounts")
        return ProviderAccountList.model_validate_json(response.content).data

    def delete_provider_account(self, account_id: str) -> None:
        self.request("DELETE", f"/v1/provider-accounts/{account_id}")

    # -- events -----------------------------------------------------------------------

    @contextmanager
    def open_stream(
        self, after: int | None = None, *, read_timeout: float = 60.0
    ) -> Iterator[Iterator[MessageEvent]]:
        """Connect to ``/v1/events/stream``; the value is an iterator of events as they happen.

        Entering returns once the server has accepted the stream. ``after`` starts after
        that event ``seq`` (without it: only new events). The iterator ends if the server
        closes the stream. Network errors raise :class:`ConnectionFailed`; no data for
        ``read_timeout`` seconds raises :class:`StreamIdle` (the server pings every 15 s).
        """
        params = {"after": after} if after is not None else {}
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            with connect_sse(
                self._http, "GET", "/v1/events/stream", params=params, timeout=timeout
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise ApiError.from_response(source.response)
                yield self._events(source)
        except httpx.ReadTimeout as error:
            raise StreamIdle(self.url, "no data from the event stream") from error
        except httpx.TransportError as error:
            raise ConnectionFailed(self.url, _describe(error)) from error

    def _events(self, source: EventSource) -> Iterator[MessageEvent]:
        for sse in source.iter_sse():
            if sse.data:
                yield MessageEvent.model_validate_json(sse.data)

    def stream_events(
        self, after: int | None = None, *, read_timeout: float = 60.0
    ) -> Iterator[MessageEvent]:
        """Message events over one stream connection (see :meth:`open_stream`)."""
        with self.open_stream(after, read_timeout=read_timeout) as events:
            yield from events


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.1), _MAX_RETRY_AFTER)


_RANK: Final = {"scheduled": 0, "queued": 1, "sending": 2, "sent": 3}


class _Timeline:
    """The status changes of one message already reported, so each is reported once, in order."""

    def __init__(self) -> None:
        self.reported: set[str] = set()
        self.rank = -1
        self.final = False

    def news(self, events: Sequence[MessageEvent]) -> list[MessageEvent]:
        """Events not reported yet, up to and including a final one; stale ones dropped."""
        fresh: list[MessageEvent] = []
        for event in events:
            if self.final or event.id in self.reported:
                continue
            self.reported.add(event.id)
            rank = _RANK.get(event.status, len(_RANK))
            if rank < self.rank:
                continue  # statuses only move forward; an older one seen late adds nothing
            self.rank = rank
            fresh.append(event)
            self.final = event.status in FINAL_STATUSES
        return fresh


def follow_message(
    client: Client,
    message_id: str,
    *,
    idle_seconds: float = 5.0,
    poll_interval: float = 0.5,
    reconnects: int = 3,
) -> Iterator[MessageEvent]:
    """Yield every status change of one message, oldest first, until a final status.

    The message's own timeline (``GET /v1/messages/{id}/events``) is the truth; the live
    stream (``/v1/events/stream``) only says when to read it again. The timeline is read
    once the stream is open, then on each of the message's events, and whenever the stream
    has been quiet for ``idle_seconds``: so a change is never missed, nor reported twice or
    out of order, however fast the message moves. If the stream cannot be used (not
    offered, or the connection keeps dropping) it polls the timeline instead.
    """
    timeline = _Timeline()
    cursor: int | None = None
    failures = 0
    while failures < reconnects:
        try:
            with client.open_stream(after=cursor, read_timeout=idle_seconds) as events:
                yield from timeline.news(client.message_events(message_id))
                if timeline.final:
                    return
                for event in events:
                    failures = 0
                    cursor = event.seq
                    if event.message_id == message_id:
                        yield from timeline.news(client.message_events(message_id))
                        if timeline.final:
                            return
            failures += 1  # the server ended the stream
        except StreamIdle:
            continue  # reconnect; reading the timeline on open covers anything missed
        except ApiError as error:
            if error.status not in (404, 405, 406, 501):
                raise
            break
        except (ConnectionFailed, SSEError):
            failures += 1
            time.sleep(poll_interval)
    while True:
        yield from timeline.news(client.message_events(message_id))
        if timeline.final:
            return
        time.sleep(poll_interval)
