"""Typed records of the rows that travel beyond ``store/``: messages and conversations.

A repository returns these instead of mappings read by column name, so that a wrong
column name outside ``store/`` is a type error (``mypy --strict``), not a ``KeyError``
at run time. Jobs travel as ``jobs.queue.Job``.

They are named tuples rather than frozen dataclasses: as immutable and as typed, and
made from a row without a call per field (a frozen dataclass sets every field through
``object.__setattr__``, which costs more than the query on the dispatch path). Their
fields are the table's columns in table order (checked below), so ``from_row`` takes a
row of ``select(table)`` as it comes. ``as_dict`` is the one way back to a mapping, for
rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, Self

from sqlalchemy import Table

from agentsms.store.tables import conversations, messages


class MessageRecord(NamedTuple):
    """A row of ``messages``."""

    id: str
    project_id: str
    batch_id: str | None
    conversation_id: str | None
    direction: str
    to_number: str
    from_number: str
    number_id: str | None
    contact: str
    body: str
    media_urls: list[str]
    channel: str
    status: str
    segments: int
    encoding: str
    price_estimate: Decimal
    price: Decimal | None
    currency: str
    send_at: datetime | None
    expires_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    error_code: str | None
    error_message: str | None
    metadata: dict[str, Any]
    external_id: str | None
    provider: str
    provider_message_id: str | None
    in_flight: bool
    attempts: int
    created_at: datetime
    updated_at: datetime
    purpose: str
    send_style: str | None
    reply_to_message_id: str | None
    reply_parent_unresolved: bool | None

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """From a row of ``select(messages)`` (its columns in table order)."""
        return tuple.__new__(cls, row)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """From a row built for its insert: every column by name, where a nullable column
        without a default may be left out (``None``, as stored)."""
        return tuple.__new__(cls, _by_name(values, cls._fields, _MESSAGE_OPTIONAL))

    def as_dict(self) -> dict[str, Any]:
        """The columns by name, for rendering."""
        return dict(zip(self._fields, self, strict=True))


class ConversationRecord(NamedTuple):
    """A row of ``conversations``."""

    id: str
    project_id: str
    number_id: str | None
    agent_number: str
    user_number: str
    channel: str
    status: str
    thread_key: str | None
    agent_paused: bool
    engaged: bool
    settings: dict[str, Any]
    metadata: dict[str, Any]
    state: dict[str, Any]
    current_node_id: str | None
    outcome: str | None
    extracted: dict[str, Any]
    end_reason: str | None
    timer_epoch: float | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """From a row of ``select(conversations)`` (its columns in table order; any
        further columns of the row are left out)."""
        return tuple.__new__(cls, row[:_CONVERSATION_WIDTH])

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """From a row built for its insert: every column by name, where a nullable column
        without a default may be left out (``None``, as stored)."""
        return tuple.__new__(cls, _by_name(values, cls._fields, _CONVERSATION_OPTIONAL))

    def as_dict(self) -> dict[str, Any]:
        """The columns by name, for rendering."""
        return dict(zip(self._fields, self, strict=True))


class DispatchMessage(NamedTuple):
    """What dispatch reads of a message to send it (``messages.dispatch_rows``)."""

    id: str
    project_id: str
    conversation_id: str | None
    status: str
    expires_at: datetime | None
    in_flight: bool
    purpose: str
    to_number: str
    from_number: str
    number_id: str | None
    body: str
    channel: str
    media_urls: list[str]
    provider: str


class MessageKey(Protocol):
    """What a status change needs to know of its message (a ``MessageRecord`` or a
    ``DispatchMessage``)."""

    @property
    def id(self) -> str: ...

    @property
    def project_id(self) -> str: ...

    @property
    def conversation_id(self) -> str | None: ...


class AdvancedMessage(NamedTuple):
    """What a status change by receipt returns of each message it moved
    (``messages.advance``)."""

    id: str
    project_id: str
    conversation_id: str | None
    provider_message_id: str | None
    sent_at: Any
    """Only whether it is ``None`` is read: returned as stored (``sent_at IS NULL`` in a
    ``RETURNING`` list misreads on SQLite 3.40)."""
    provider: str
    """Which provider's words describe a carrier's error code given without them."""


_CONVERSATION_WIDTH = len(ConversationRecord._fields)


def _optional(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.c if c.nullable and c.server_default is None)


_MESSAGE_OPTIONAL = _optional(messages)
_CONVERSATION_OPTIONAL = _optional(conversations)


def _by_name(
    values: Mapping[str, Any], names: tuple[str, ...], optional: frozenset[str]
) -> list[Any]:
    get = values.get
    return [get(name) if name in optional else values[name] for name in names]


for _record, _table in ((MessageRecord, messages), (ConversationRecord, conversations)):
    if _record._fields != tuple(_table.c.keys()):  # pragma: no cover - a schema change
        raise RuntimeError(f"{_record.__name__} fields differ from the {_table.name} columns")
for _name in (*DispatchMessage._fields, *AdvancedMessage._fields):
    if _name not in messages.c:  # pragma: no cover - a schema change
        raise RuntimeError(f"{_name} is no messages column")
