""":class:`Client`: the blocking agentsms API client."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx
from httpx_sse import EventSource, connect_sse

from agentsms.api.schemas import (
    Batch,
    Contact,
    Conversation,
    Message,
    MessageEvent,
    Number,
    OptOut,
    OptOutImport,
    ProviderAccount,
)
from agentsms.client import _core as calls
from agentsms.client._core import (
    DEFAULT_URL,
    USER_AGENT,
    BatchOptions,
    Call,
    ContactDetails,
    ContactFields,
    ContactFilters,
    ConversationFilters,
    MessageFilters,
    ModelT,
    NumberOptions,
    OptOutFilters,
    Page,
    RetryPolicy,
    SendOptions,
)
from agentsms.client._errors import ApiError, ConnectionFailed, StreamIdle, describe

T = TypeVar("T")


class Client:
    """A blocking agentsms API client bound to one base URL and API key.

    Use it as a context manager (or call :meth:`close`). Every method sends one API call
    (lists: one page; ``iter_*``: every page) and returns the API's typed model. Errors
    raise :class:`ApiError` (a subclass per status) carrying the problem detail; a server
    that cannot be reached raises :class:`ConnectionFailed`. Calls that are safe to repeat
    (reads, deletes, sends with an ``Idempotency-Key``, generated when not given) are
    retried on network errors and ``503``; any call is retried on ``429`` after its
    ``Retry-After``, all at most ``max_retries`` times.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.retry = RetryPolicy(max_retries=max_retries)
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connections."""
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

    def send(self, call: Call[T]) -> T:
        """Send one call, retrying it as :class:`RetryPolicy` allows; its parsed answer."""
        request = call.build(self._http)
        attempt = 0
        while True:
            try:
                response = self._http.send(request)
            except httpx.TransportError as error:
                delay = self.retry.after_error(call, attempt)
                if delay is None:
                    raise ConnectionFailed(self.url, describe(error)) from error
            else:
                delay = self.retry.after_response(call, response, attempt)
                if delay is None:
                    return call.answer(response)
            time.sleep(delay)
            attempt += 1

    def _pages(self, call: Call[Page[ModelT]]) -> Iterator[ModelT]:
        while True:
            page = self.send(call)
            yield from page.data
            if not page.next_cursor:
                return
            call = call.after(page.next_cursor)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Any API request (retried like the others); a problem response raises."""
        return self.send(
            calls.raw(method, path, json=json, params=params, idempotency_key=idempotency_key)
        )

    # -- messages ---------------------------------------------------------------------

    def send_message(
        self, to: str, body: str | None = None, **options: Unpack[SendOptions]
    ) -> Message:
        """``POST /v1/messages``: a text (or MMS) to ``to``; without a body the agent writes it."""
        return self.send(calls.send_message(to, body, options))

    def get_message(self, message_id: str) -> Message:
        """``GET /v1/messages/{id}``."""
        return self.send(calls.get_message(message_id))

    def message_events(self, message_id: str) -> list[MessageEvent]:
        """Every status change of one message, oldest first."""
        return self.send(calls.message_events(message_id))

    def list_messages(
        self, *, cursor: str | None = None, **filters: Unpack[MessageFilters]
    ) -> Page[Message]:
        """One page of ``GET /v1/messages``, newest first."""
        return self.send(calls.list_messages(cursor, filters))

    def iter_messages(self, **filters: Unpack[MessageFilters]) -> Iterator[Message]:
        """Every message matching ``filters``, newest first, page after page."""
        return self._pages(calls.list_messages(None, filters))

    def cancel_message(self, message_id: str) -> Message:
        """``POST /v1/messages/{id}/cancel``: scheduled or queued messages only."""
        return self.send(calls.cancel_message(message_id))

    # -- batches ----------------------------------------------------------------------

    def create_batch(
        self, recipients: Sequence[str | Mapping[str, Any]], **options: Unpack[BatchOptions]
    ) -> Batch:
        """``POST /v1/batches``: up to 10,000 recipients, accepted all or nothing."""
        return self.send(calls.create_batch(recipients, options))

    def get_batch(self, batch_id: str) -> Batch:
        """``GET /v1/batches/{id}`` with its progress counts."""
        return self.send(calls.get_batch(batch_id))

    # -- conversations ----------------------------------------------------------------

    def list_conversations(
        self, *, cursor: str | None = None, **filters: Unpack[ConversationFilters]
    ) -> Page[Conversation]:
        """One page of ``GET /v1/conversations``, newest first."""
        return self.send(calls.list_conversations(cursor, filters))

    def iter_conversations(self, **filters: Unpack[ConversationFilters]) -> Iterator[Conversation]:
        """Every conversation matching ``filters``, newest first, page after page."""
        return self._pages(calls.list_conversations(None, filters))

    def get_conversation(self, conversation_id: str) -> Conversation:
        """``GET /v1/conversations/{id}`` with its messages, oldest first."""
        return self.send(calls.get_conversation(conversation_id))

    def send_in_conversation(
        self, conversation_id: str, body: str | None = None, *, media_urls: Sequence[str] = ()
    ) -> Message:
        """A human writes within the conversation; its agent is paused."""
        return self.send(calls.send_in_conversation(conversation_id, body, media_urls))

    def end_conversation(
        self,
        conversation_id: str,
        *,
        outcome: str | None = None,
        extracted: Mapping[str, Any] | None = None,
    ) -> Conversation:
        """``POST /v1/conversations/{id}/end`` with an optional outcome."""
        return self.send(calls.end_conversation(conversation_id, outcome, extracted))

    def set_agent_paused(self, conversation_id: str, paused: bool = True) -> Conversation:
        """Pause (or, with ``paused=False``, resume) the conversation's agent."""
        return self.send(calls.set_agent_paused(conversation_id, paused))

    # -- numbers ----------------------------------------------------------------------

    def add_number(self, number: str, **options: Unpack[NumberOptions]) -> Number:
        """``POST /v1/numbers``: add a sender to the project's pool."""
        return self.send(calls.add_number(number, options))

    def list_numbers(self) -> list[Number]:
        """The project's sender numbers."""
        return self.send(calls.list_numbers())

    def delete_number(self, number_id: str) -> None:
        """Remove a sender number from the pool."""
        self.send(calls.delete_number(number_id))

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
        return self.send(calls.add_provider_account(provider, name, credentials, api_base_url))

    def list_provider_accounts(self) -> list[ProviderAccount]:
        """The project's carrier accounts (credentials are never returned)."""
        return self.send(calls.list_provider_accounts())

    def delete_provider_account(self, account_id: str) -> None:
        """Remove a carrier account."""
        self.send(calls.delete_provider_account(account_id))

    # -- opt-outs (the suppression list) ---------------------------------------------

    def list_opt_outs(
        self, *, cursor: str | None = None, **filters: Unpack[OptOutFilters]
    ) -> Page[OptOut]:
        """One page of the suppression list, newest first."""
        return self.send(calls.list_opt_outs(cursor, filters))

    def iter_opt_outs(self, **filters: Unpack[OptOutFilters]) -> Iterator[OptOut]:
        """Every entry of the suppression list matching ``filters``, newest first."""
        return self._pages(calls.list_opt_outs(None, filters))

    def add_opt_out(self, phone_number: str, *, keyword: str | None = None) -> OptOut:
        """Put a person on the suppression list (no text but compliance answers reaches
        them); the entry (as it was, when they were already on it)."""
        return self.send(calls.add_opt_out(phone_number, keyword))

    def remove_opt_out(self, phone_number: str) -> OptOut:
        """Opt a person back in; the entry removed (404 :class:`ApiError` if none)."""
        return self.send(calls.remove_opt_out(phone_number))

    def import_opt_outs(self, csv: str) -> OptOutImport:
        """Add the people of a CSV file (a ``phone_number`` column), all or nothing."""
        return self.send(calls.import_opt_outs(csv))

    def export_opt_outs(self) -> str:
        """The whole suppression list as CSV text (which :meth:`import_opt_outs` reads)."""
        return self.send(calls.export_opt_outs())

    # -- contacts (the address book) ---------------------------------------------------

    def list_contacts(
        self, *, cursor: str | None = None, **filters: Unpack[ContactFilters]
    ) -> Page[Contact]:
        """One page of the address book, newest first."""
        return self.send(calls.list_contacts(cursor, filters))

    def iter_contacts(self, **filters: Unpack[ContactFilters]) -> Iterator[Contact]:
        """Every contact matching ``filters``, newest first."""
        return self._pages(calls.list_contacts(None, filters))

    def create_contact(
        self, phone_number: str, name: str, **fields: Unpack[ContactDetails]
    ) -> Contact:
        """Add a person (``timezone``: the IANA zone their replies are read in and their
        quiet hours kept in); 409 :class:`ApiError` when the number already is a contact."""
        return self.send(calls.create_contact(phone_number, name, fields))

    def get_contact(self, contact_id: str) -> Contact:
        """One contact (404 :class:`ApiError` if none)."""
        return self.send(calls.get_contact(contact_id))

    def update_contact(self, contact_id: str, **fields: Unpack[ContactFields]) -> Contact:
        """Change the fields given; ``timezone=None`` (or ``email``, ``notes``,
        ``metadata``) empties it."""
        return self.send(calls.update_contact(contact_id, fields))

    def delete_contact(self, contact_id: str) -> None:
        """Remove a contact (its messages stay)."""
        self.send(calls.delete_contact(contact_id))

    # -- simulator --------------------------------------------------------------------

    def simulate_inbound(
        self, from_: str, to: str, body: str = "", *, media_urls: Sequence[str] = ()
    ) -> Message:
        """A text from a simulated person ``from_`` to the project's number ``to``."""
        return self.send(calls.simulate_inbound(from_, to, body, media_urls))

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
            raise ConnectionFailed(self.url, describe(error)) from error

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
