""":class:`AsyncClient`: the agentsms API client for asyncio (and any anyio) code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import anyio
import httpx
from httpx_sse import EventSource, aconnect_sse

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


class AsyncClient:
    """The awaitable twin of :class:`agentsms.Client`: the same methods, ``await``-ed.

    Lists page with ``async for`` over ``iter_*``; retries and errors are those of
    :class:`agentsms.Client`. ``transport`` may be any httpx async transport, e.g.
    ``httpx.ASGITransport(app)`` to call an agentsms app in the same process.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.retry = RetryPolicy(max_retries=max_retries)
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- plumbing ---------------------------------------------------------------------

    async def send(self, call: Call[T]) -> T:
        """Send one call, retrying it as :class:`RetryPolicy` allows; its parsed answer."""
        request = call.build(self._http)
        attempt = 0
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as error:
                delay = self.retry.after_error(call, attempt)
                if delay is None:
                    raise ConnectionFailed(self.url, describe(error)) from error
            else:
                delay = self.retry.after_response(call, response, attempt)
                if delay is None:
                    return call.answer(response)
            await anyio.sleep(delay)
            attempt += 1

    async def _pages(self, call: Call[Page[ModelT]]) -> AsyncIterator[ModelT]:
        while True:
            page = await self.send(call)
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            call = call.after(page.next_cursor)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Any API request (retried like the others); a problem response raises."""
        return await self.send(
            calls.raw(method, path, json=json, params=params, idempotency_key=idempotency_key)
        )

    # -- messages ---------------------------------------------------------------------

    async def send_message(
        self, to: str, body: str | None = None, **options: Unpack[SendOptions]
    ) -> Message:
        """``POST /v1/messages``: a text (or MMS) to ``to``; without a body the agent writes it."""
        return await self.send(calls.send_message(to, body, options))

    async def get_message(self, message_id: str) -> Message:
        """``GET /v1/messages/{id}``."""
        return await self.send(calls.get_message(message_id))

    async def message_events(self, message_id: str) -> list[MessageEvent]:
        """Every status change of one message, oldest first."""
        return await self.send(calls.message_events(message_id))

    async def list_messages(
        self, *, cursor: str | None = None, **filters: Unpack[MessageFilters]
    ) -> Page[Message]:
        """One page of ``GET /v1/messages``, newest first."""
        return await self.send(calls.list_messages(cursor, filters))

    def iter_messages(self, **filters: Unpack[MessageFilters]) -> AsyncIterator[Message]:
        """Every message matching ``filters``, newest first, page after page."""
        return self._pages(calls.list_messages(None, filters))

    async def cancel_message(self, message_id: str) -> Message:
        """``POST /v1/messages/{id}/cancel``: scheduled or queued messages only."""
        return await self.send(calls.cancel_message(message_id))

    # -- batches ----------------------------------------------------------------------

    async def create_batch(
        self, recipients: Sequence[str | Mapping[str, Any]], **options: Unpack[BatchOptions]
    ) -> Batch:
        """``POST /v1/batches``: up to 10,000 recipients, accepted all or nothing."""
        return await self.send(calls.create_batch(recipients, options))

    async def get_batch(self, batch_id: str) -> Batch:
        """``GET /v1/batches/{id}`` with its progress counts."""
        return await self.send(calls.get_batch(batch_id))

    # -- conversations ----------------------------------------------------------------

    async def list_conversations(
        self, *, cursor: str | None = None, **filters: Unpack[ConversationFilters]
    ) -> Page[Conversation]:
        """One page of ``GET /v1/conversations``, newest first."""
        return await self.send(calls.list_conversations(cursor, filters))

    def iter_conversations(
        self, **filters: Unpack[ConversationFilters]
    ) -> AsyncIterator[Conversation]:
        """Every conversation matching ``filters``, newest first, page after page."""
        return self._pages(calls.list_conversations(None, filters))

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """``GET /v1/conversations/{id}`` with its messages, oldest first."""
        return await self.send(calls.get_conversation(conversation_id))

    async def send_in_conversation(
        self, conversation_id: str, body: str | None = None, *, media_urls: Sequence[str] = ()
    ) -> Message:
        """A human writes within the conversation; its agent is paused."""
        return await self.send(calls.send_in_conversation(conversation_id, body, media_urls))

    async def end_conversation(
        self,
        conversation_id: str,
        *,
        outcome: str | None = None,
        extracted: Mapping[str, Any] | None = None,
    ) -> Conversation:
        """``POST /v1/conversations/{id}/end`` with an optional outcome."""
        return await self.send(calls.end_conversation(conversation_id, outcome, extracted))

    async def set_agent_paused(self, conversation_id: str, paused: bool = True) -> Conversation:
        """Pause (or, with ``paused=False``, resume) the conversation's agent."""
        return await self.send(calls.set_agent_paused(conversation_id, paused))

    # -- numbers ----------------------------------------------------------------------

    async def add_number(self, number: str, **options: Unpack[NumberOptions]) -> Number:
        """``POST /v1/numbers``: add a sender to the project's pool."""
        return await self.send(calls.add_number(number, options))

    async def list_numbers(self) -> list[Number]:
        """The project's sender numbers."""
        return await self.send(calls.list_numbers())

    async def delete_number(self, number_id: str) -> None:
        """Remove a sender number from the pool."""
        await self.send(calls.delete_number(number_id))

    # -- provider accounts ------------------------------------------------------------

    async def add_provider_account(
        self,
        provider: str,
        name: str,
        credentials: Mapping[str, str],
        *,
        api_base_url: str | None = None,
    ) -> ProviderAccount:
        """``POST /v1/provider-accounts``: the carrier checks the credentials first."""
        return await self.send(
            calls.add_provider_account(provider, name, credentials, api_base_url)
        )

    async def list_provider_accounts(self) -> list[ProviderAccount]:
        """The project's carrier accounts (credentials are never returned)."""
        return await self.send(calls.list_provider_accounts())

    async def delete_provider_account(self, account_id: str) -> None:
        """Remove a carrier account."""
        await self.send(calls.delete_provider_account(account_id))

    # -- opt-outs (the suppression list) ---------------------------------------------

    async def list_opt_outs(
        self, *, cursor: str | None = None, **filters: Unpack[OptOutFilters]
    ) -> Page[OptOut]:
        """One page of the suppression list, newest first."""
        return await self.send(calls.list_opt_outs(cursor, filters))

    def iter_opt_outs(self, **filters: Unpack[OptOutFilters]) -> AsyncIterator[OptOut]:
        """Every entry of the suppression list matching ``filters``, newest first."""
        return self._pages(calls.list_opt_outs(None, filters))

    async def add_opt_out(self, phone_number: str, *, keyword: str | None = None) -> OptOut:
        """Put a person on the suppression list (no text but compliance answers reaches
        them); the entry (as it was, when they were already on it)."""
        return await self.send(calls.add_opt_out(phone_number, keyword))

    async def remove_opt_out(self, phone_number: str) -> OptOut:
        """Opt a person back in; the entry removed (404 :class:`ApiError` if none)."""
        return await self.send(calls.remove_opt_out(phone_number))

    async def import_opt_outs(self, csv: str) -> OptOutImport:
        """Add the people of a CSV file (a ``phone_number`` column), all or nothing."""
        return await self.send(calls.import_opt_outs(csv))

    async def export_opt_outs(self) -> str:
        """The whole suppression list as CSV text (which :meth:`import_opt_outs` reads)."""
        return await self.send(calls.export_opt_outs())

    # -- contacts (the address book) ---------------------------------------------------

    async def list_contacts(
        self, *, cursor: str | None = None, **filters: Unpack[ContactFilters]
    ) -> Page[Contact]:
        """One page of the address book, newest first."""
        return await self.send(calls.list_contacts(cursor, filters))

    def iter_contacts(self, **filters: Unpack[ContactFilters]) -> AsyncIterator[Contact]:
        """Every contact matching ``filters``, newest first."""
        return self._pages(calls.list_contacts(None, filters))

    async def create_contact(
        self, phone_number: str, name: str, **fields: Unpack[ContactDetails]
    ) -> Contact:
        """Add a person (``timezone``: the IANA zone their replies are read in and their
        quiet hours kept in); 409 :class:`ApiError` when the number already is a contact."""
        return await self.send(calls.create_contact(phone_number, name, fields))

    async def get_contact(self, contact_id: str) -> Contact:
        """One contact (404 :class:`ApiError` if none)."""
        return await self.send(calls.get_contact(contact_id))

    async def update_contact(self, contact_id: str, **fields: Unpack[ContactFields]) -> Contact:
        """Change the fields given; ``timezone=None`` (or ``email``, ``notes``,
        ``metadata``) empties it."""
        return await self.send(calls.update_contact(contact_id, fields))

    async def delete_contact(self, contact_id: str) -> None:
        """Remove a contact (its messages stay)."""
        await self.send(calls.delete_contact(contact_id))

    # -- simulator --------------------------------------------------------------------

    async def simulate_inbound(
        self, from_: str, to: str, body: str = "", *, media_urls: Sequence[str] = ()
    ) -> Message:
        """A text from a simulated person ``from_`` to the project's number ``to``."""
        return await self.send(calls.simulate_inbound(from_, to, body, media_urls))

    # -- events -----------------------------------------------------------------------

    @asynccontextmanager
    async def open_stream(
        self, after: int | None = None, *, read_timeout: float = 60.0
    ) -> AsyncIterator[AsyncIterator[MessageEvent]]:
        """Connect to ``/v1/events/stream`` (see :meth:`agentsms.Client.open_stream`)."""
        params = {"after": after} if after is not None else {}
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            async with aconnect_sse(
                self._http, "GET", "/v1/events/stream", params=params, timeout=timeout
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise ApiError.from_response(source.response)
                yield self._events(source)
        except httpx.ReadTimeout as error:
            raise StreamIdle(self.url, "no data from the event stream") from error
        except httpx.TransportError as error:
            raise ConnectionFailed(self.url, describe(error)) from error

    async def _events(self, source: EventSource) -> AsyncIterator[MessageEvent]:
        async for sse in source.aiter_sse():
            if sse.data:
                yield MessageEvent.model_validate_json(sse.data)
