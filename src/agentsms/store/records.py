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
from typing import Any, NamedTuple, Self

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
        """From a mapping holding every column by name (a row built before its insert)."""
        return tuple.__new__(cls, [values[name] for name in cls._fields])

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
        """From a mapping holding every column by name (a row built before its insert)."""
        return tuple.__new__(cls, [values[name] for name in cls._fields])

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


_CONVERSATION_WIDTH = len(ConversationRecord._fields)

for _record, _table in ((MessageRecord, messages), (ConversationRecord, conversations)):
    if _record._fields != tuple(_table.c.keys()):  # pragma: no cover - a schema change
        raise RuntimeError(f"{_record.__name__} fields differ from the {_table.name} columns")
for _name in DispatchMessage._fields:
    if _name not in messages.c:  # pragma: no cover - a schema change
        raise RuntimeError(f"DispatchMessage.{_name} is no messages column")
