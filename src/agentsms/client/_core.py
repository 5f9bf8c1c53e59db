"""The part of the client that does no I/O, shared by :class:`Client` and :class:`AsyncClient`.

Each API operation is built here once, as a :class:`Call`: its method, path, query, body,
idempotency key and response model. The two clients only send calls (blocking or awaited)
under one :class:`RetryPolicy`, so neither repeats what an operation means.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Generic, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_jsonable_python

from agentsms.api.schemas import (
    Batch,
    Contact,
    Conversation,
    Message,
    MessageEvent,
    Number,
    NumberList,
    OptOut,
    OptOutImport,
    ProviderAccount,
    ProviderAccountList,
)
from agentsms.client._errors import ApiError
from agentsms.version import __version__

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)

DEFAULT_URL: Final = "http://127.0.0.1:8000"
USER_AGENT: Final = f"agentsms-python/{__version__}"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_IN_FLIGHT: Final = "idempotency_key_in_flight"


class Page(BaseModel, Generic[ModelT]):
    """One page of a list, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    data: list[ModelT]
    next_cursor: str | None = None
    total: int | None = None


def new_idempotency_key() -> str:
    """A fresh ``Idempotency-Key``, so that a POST retried after a network error sends once."""
    return f"sdk-{uuid.uuid4()}"


def payload(values: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body from keyword values: ``None`` left out, ``from_`` sent as ``from``."""
    return {
        ("from" if key == "from_" else key): to_jsonable_python(value)
        for key, value in values.items()
        if value is not None
    }


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API request, ready to send, and how to read its successful answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    idempotency_key: str | None = None
    csv: str | None = None
    """A ``text/csv`` body, sent instead of ``json``."""

    @property
    def repeatable(self) -> bool:
        """Whether sending it twice does it once: a read or delete, or a POST with a key."""
        return self.method in _SAFE_METHODS or self.idempotency_key is not None

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The HTTP request; the same one is re-sent on every retry (same key included)."""
        headers = {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}
        params = {key: value for key, value in self.params.items() if value is not None}
        if self.csv is not None:
            headers["Content-Type"] = "text/csv; charset=utf-8"
            return http.build_request(
                self.method, self.path, content=self.csv.encode(), params=params, headers=headers
            )
        return http.build_request(
            self.method, self.path, json=self.json, params=params, headers=headers
        )

    def answer(self, response: httpx.Response) -> T:
        """The parsed answer; a problem response raises :class:`ApiError`."""
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return self.read(response)

    def after(self, cursor: str) -> Call[T]:
        """The same list call for the page after ``cursor``."""
        return replace(self, params={**self.params, "cursor": cursor})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a call is sent again, and after how long; at most ``max_retries`` times.

    Retried: network errors and ``503`` for repeatable calls (reads, deletes, POSTs with an
    idempotency key); ``429`` always (the rate limit refuses before any work), after its
    ``Retry-After``; and a key still ``in flight`` on the server after our own retry.
    """

    max_retries: int = 2
    backoff_seconds: float = 0.3
    max_wait_seconds: float = 10.0

    def after_error(self, call: Call[Any], attempt: int) -> float | None:
        """Seconds to wait before resending after a network error; ``None``: give up."""
        if not call.repeatable or attempt >= self.max_retries:
            return None
        return self._backoff(attempt)

    def after_response(
        self, call: Call[Any], response: httpx.Response, attempt: int
    ) -> float | None:
        """Seconds to wait before resending after ``response``; ``None``: it is the answer."""
        if attempt >= self.max_retries or response.status_code < 400:
            return None
        status = response.status_code
        if status == 429 or (status == 503 and call.repeatable):
            return self._retry_after(response, attempt)
        if status == 409 and attempt > 0 and call.idempotency_key and _code(response) == _IN_FLIGHT:
            return self._backoff(attempt)  # our earlier try is still being handled
        return None

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff_seconds * 3**attempt, self.max_wait_seconds))

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        try:
            seconds = float(response.headers["Retry-After"])
        except (KeyError, ValueError):
            return self._backoff(attempt)
        return min(max(seconds, 0.1), self.max_wait_seconds)


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body.get("code")) if isinstance(body, dict) else None


def _model(model: type[ModelT]) -> Callable[[httpx.Response], ModelT]:
    return lambda response: model.model_validate_json(response.content)


def _adapter(kind: Any) -> Callable[[httpx.Response], Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    return lambda response: adapter.validate_json(response.content)


def _raw(response: httpx.Response) -> httpx.Response:
    return response


def _nothing(_: httpx.Response) -> None:
    return None


def _text(response: httpx.Response) -> str:
    return response.text


_events = _adapter(list[MessageEvent])
_message_page = _adapter(Page[Message])
_conversation_page = _adapter(Page[Conversation])
_opt_out_page = _adapter(Page[OptOut])
_contact_page = _adapter(Page[Contact])


# -- options: each operation's keyword arguments, declared once for both clients ----------


class SendOptions(TypedDict, total=False):
    """Optional fields of ``POST /v1/messages`` (see the API reference for each)."""

    from_: str | None
    media_urls: Sequence[str] | None
    channel: str | None
    send_at: str | datetime | int | None
    metadata: Mapping[str, Any] | None
    external_id: str | None
    validity_seconds: int | None
    variables: Mapping[str, Any] | None
    template_id: str | None
    conversation: Mapping[str, Any] | None
    new_conversation: bool | None
    idempotency_key: str | None


class BatchOptions(TypedDict, total=False):
    """Optional fields of ``POST /v1/batches``."""

    body: str | None
    from_: str | None
    media_urls: Sequence[str] | None
    channel: str | None
    send_at: str | datetime | int | None
    spacing_seconds: float | None
    metadata: Mapping[str, Any] | None
    validity_seconds: int | None
    variables: Mapping[str, Any] | None
    conversation: Mapping[str, Any] | None
    new_conversation: bool | None
    idempotency_key: str | None


class MessageFilters(TypedDict, total=False):
    """Filters of ``GET /v1/messages``; ``limit`` is the page size (1-500)."""

    status: str | None
    to: str | None
    from_: str | None
    batch_id: str | None
    conversation_id: str | None
    created_after: str | datetime | None
    created_before: str | datetime | None
    limit: int | None


class ConversationFilters(TypedDict, total=False):
    """Filters of ``GET /v1/conversations``; ``limit`` is the page size (1-500)."""

    status: str | None
    agent_number: str | None
    user_number: str | None
    persona_id: str | None
    outcome: str | None
    limit: int | None


class OptOutFilters(TypedDict, total=False):
    """Filters of ``GET /v1/opt-outs``; ``limit`` is the page size (1-500)."""

    phone_number: str | None
    source: str | None
    limit: int | None


class ContactFilters(TypedDict, total=False):
    """Filters of ``GET /v1/contacts``; ``limit`` is the page size (1-500)."""

    phone_number: str | None
    limit: int | None


class ContactDetails(TypedDict, total=False):
    """Optional fields of ``POST /v1/contacts``."""

    email: str | None
    notes: str | None
    timezone: str | None
    metadata: Mapping[str, Any] | None


class ContactFields(ContactDetails, total=False):
    """Fields of ``PATCH /v1/contacts/{id}``: only the keys given are sent, and ``None``
    empties ``email``, ``notes``, ``timezone`` or ``metadata``."""

    phone_number: str | None
    name: str | None


class NumberOptions(TypedDict, total=False):
    """Optional fields of ``POST /v1/numbers``."""

    provider: str | None
    provider_account_id: str | None
    capabilities: Sequence[str] | None
    throughput_mps: float | None
    price_per_segment: Decimal | str | None
    currency: str | None
    settings: Mapping[str, Any] | None


# -- operations --------------------------------------------------------------------------


def raw(
    method: str,
    path: str,
    *,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[httpx.Response]:
    """Any request; the answer is the HTTP response itself."""
    return Call(method, path, _raw, dict(params or {}), json, idempotency_key)


def _keyed(options: SendOptions | BatchOptions) -> tuple[dict[str, Any], str]:
    """The body fields, and the idempotency key given (or a new one)."""
    fields = {name: value for name, value in options.items() if name != "idempotency_key"}
    return fields, options.get("idempotency_key") or new_idempotency_key()


def send_message(to: str, body: str | None, options: SendOptions) -> Call[Message]:
    """``POST /v1/messages``, with an idempotency key (the one given, or a new one)."""
    fields, key = _keyed(options)
    return Call(
        "POST",
        "/v1/messages",
        _model(Message),
        json=payload({"to": to, "body": body, **fields}),
        idempotency_key=key,
    )


def get_message(message_id: str) -> Call[Message]:
    """``GET /v1/messages/{id}``."""
    return Call("GET", f"/v1/messages/{message_id}", _model(Message))


def message_events(message_id: str) -> Call[list[MessageEvent]]:
    """``GET /v1/messages/{id}/events``: its status changes, oldest first."""
    return Call("GET", f"/v1/messages/{message_id}/events", _events)


def list_messages(cursor: str | None, filters: MessageFilters) -> Call[Page[Message]]:
    """One page of ``GET /v1/messages``, from ``cursor`` on."""
    params = {**payload(dict(filters)), "cursor": cursor}
    return Call("GET", "/v1/messages", _message_page, params)


def cancel_message(message_id: str) -> Call[Message]:
    """``POST /v1/messages/{id}/cancel``."""
    return Call("POST", f"/v1/messages/{message_id}/cancel", _model(Message))


def create_batch(
    recipients: Sequence[str | Mapping[str, Any]], options: BatchOptions
) -> Call[Batch]:
    """``POST /v1/batches``, with an idempotency key (the one given, or a new one)."""
    fields, key = _keyed(options)
    listed = [r if isinstance(r, str) else dict(r) for r in recipients]
    body = payload({"recipients": listed, **fields})
    return Call("POST", "/v1/batches", _model(Batch), json=body, idempotency_key=key)


def get_batch(batch_id: str) -> Call[Batch]:
    """``GET /v1/batches/{id}``."""
    return Call("GET", f"/v1/batches/{batch_id}", _model(Batch))


def list_conversations(
    cursor: str | None, filters: ConversationFilters
) -> Call[Page[Conversation]]:
    """One page of ``GET /v1/conversations``, from ``cursor`` on."""
    params = {**payload(dict(filters)), "cursor": cursor}
    return Call("GET", "/v1/conversations", _conversation_page, params)


def get_conversation(conversation_id: str) -> Call[Conversation]:
    """``GET /v1/conversations/{id}``, with its messages."""
    return Call("GET", f"/v1/conversations/{conversation_id}", _model(Conversation))


def send_in_conversation(
    conversation_id: str, body: str | None, media_urls: Sequence[str]
) -> Call[Message]:
    """``POST /v1/conversations/{id}/messages``: a human writes (no key: never resent)."""
    json = payload({"body": body, "media_urls": list(media_urls)})
    return Call("POST", f"/v1/conversations/{conversation_id}/messages", _model(Message), json=json)


def end_conversation(
    conversation_id: str, outcome: str | None, extracted: Mapping[str, Any] | None
) -> Call[Conversation]:
    """``POST /v1/conversations/{id}/end``."""
    json = payload({"outcome": outcome, "extracted": extracted})
    return Call("POST", f"/v1/conversations/{conversation_id}/end", _model(Conversation), json=json)


def set_agent_paused(conversation_id: str, paused: bool) -> Call[Conversation]:
    """``POST /v1/conversations/{id}/agent``: pause or resume the conversation's agent."""
    json = {"paused": paused}
    return Call(
        "POST", f"/v1/conversations/{conversation_id}/agent", _model(Conversation), json=json
    )


def add_number(number: str, options: NumberOptions) -> Call[Number]:
    """``POST /v1/numbers``."""
    return Call("POST", "/v1/numbers", _model(Number), json=payload({"number": number, **options}))


def list_numbers() -> Call[list[Number]]:
    """``GET /v1/numbers``."""
    listed = _model(NumberList)
    return Call("GET", "/v1/numbers", lambda response: listed(response).data)


def delete_number(number_id: str) -> Call[None]:
    """``DELETE /v1/numbers/{id}``."""
    return Call("DELETE", f"/v1/numbers/{number_id}", _nothing)


def add_provider_account(
    provider: str, name: str, credentials: Mapping[str, str], api_base_url: str | None
) -> Call[ProviderAccount]:
    """``POST /v1/provider-accounts``."""
    json = payload(
        {
            "provider": provider,
            "name": name,
            "credentials": credentials,
            "api_base_url": api_base_url,
        }
    )
    return Call("POST", "/v1/provider-accounts", _model(ProviderAccount), json=json)


def list_provider_accounts() -> Call[list[ProviderAccount]]:
    """``GET /v1/provider-accounts``."""
    return Call(
        "GET",
        "/v1/provider-accounts",
        lambda r: ProviderAccountList.model_validate_json(r.content).data,
    )


def delete_provider_account(account_id: str) -> Call[None]:
    """``DELETE /v1/provider-accounts/{id}``."""
    return Call("DELETE", f"/v1/provider-accounts/{account_id}", _nothing)


def simulate_inbound(from_: str, to: str, body: str, media_urls: Sequence[str]) -> Call[Message]:
    """``POST /v1/simulator/inbound``: a text from a simulated person."""
    json = payload({"from_": from_, "to": to, "body": body, "media_urls": list(media_urls)})
    return Call("POST", "/v1/simulator/inbound", _model(Message), json=json)


def list_opt_outs(cursor: str | None, filters: OptOutFilters) -> Call[Page[OptOut]]:
    """One page of ``GET /v1/opt-outs`` (the suppression list), from ``cursor`` on."""
    params = {**payload(dict(filters)), "cursor": cursor}
    return Call("GET", "/v1/opt-outs", _opt_out_page, params)


def add_opt_out(phone_number: str, keyword: str | None) -> Call[OptOut]:
    """``POST /v1/opt-outs`` (adding a person twice changes nothing: safe to resend)."""
    json = payload({"phone_number": phone_number, "keyword": keyword})
    return Call(
        "POST", "/v1/opt-outs", _model(OptOut), json=json, idempotency_key=new_idempotency_key()
    )


def remove_opt_out(phone_number: str) -> Call[OptOut]:
    """``DELETE /v1/opt-outs/{phone_number}``: the person opts back in."""
    return Call("DELETE", f"/v1/opt-outs/{quote(phone_number, safe='+')}", _model(OptOut))


def import_opt_outs(csv: str) -> Call[OptOutImport]:
    """``POST /v1/opt-outs/import``: a CSV file, all or nothing."""
    return Call("POST", "/v1/opt-outs/import", _model(OptOutImport), csv=csv)


def export_opt_outs() -> Call[str]:
    """``GET /v1/opt-outs/export``: the whole list as CSV text."""
    return Call("GET", "/v1/opt-outs/export", _text)


def list_contacts(cursor: str | None, filters: ContactFilters) -> Call[Page[Contact]]:
    """One page of ``GET /v1/contacts`` (the address book, newest first), from ``cursor``."""
    params = {**payload(dict(filters)), "cursor": cursor}
    return Call("GET", "/v1/contacts", _contact_page, params)


def create_contact(phone_number: str, name: str, fields: ContactDetails) -> Call[Contact]:
    """``POST /v1/contacts``."""
    json = payload({**fields, "phone_number": phone_number, "name": name})
    return Call("POST", "/v1/contacts", _model(Contact), json=json)


def get_contact(contact_id: str) -> Call[Contact]:
    """``GET /v1/contacts/{id}``."""
    return Call("GET", f"/v1/contacts/{quote(contact_id, safe='')}", _model(Contact))


def update_contact(contact_id: str, fields: ContactFields) -> Call[Contact]:
    """``PATCH /v1/contacts/{id}``: the keys of ``fields`` as given (``None`` empties)."""
    json = {key: to_jsonable_python(value) for key, value in fields.items()}
    return Call("PATCH", f"/v1/contacts/{quote(contact_id, safe='')}", _model(Contact), json=json)


def delete_contact(contact_id: str) -> Call[None]:
    """``DELETE /v1/contacts/{id}``."""
    return Call("DELETE", f"/v1/contacts/{quote(contact_id, safe='')}", _nothing)
