"""Messages and batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import insert_rows
from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import batches, messages


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What ``GET /v1/messages`` narrows by."""

    project_id: str
    status: str | None = None
    to: str | None = None
    from_: str | None = None
    batch_id: str | None = None
    conversation_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    before_id: str | None = None


async def insert_messages(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(conn, messages, rows)


async def insert_batch(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(batches).values(**row))


async def get_message(conn: AsyncConnection, project_id: str, message_id: str) -> Row | None:
    query = select(messages).where(messages.c.id == message_id, messages.c.project_id == project_id)
    return one((await conn.execute(query)).mappings().first())


async def messages_by_ids(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, Row]:
    wanted = list(ids)
    found: dict[str, Row] = {}
    for start in range(0, len(wanted), 500):
        query = select(messages).where(messages.c.id.in_(wanted[start : start + 500]))
        for row in many((await conn.execute(query)).mappings()):
            found[row["id"]] = row
    return found


async def list_messages(conn: AsyncConnection, where: MessageFilter, limit: int) -> Sequence[Row]:
    query = select(messages).where(messages.c.project_id == where.project_id)
    if where.status is not None:
        query = query.where(messages.c.status == where.status)
    if where.to is not None:
        query = query.where(messages.c.to_number == where.to)
    if where.from_ is not None:
        query = query.where(messages.c.from_number == where.from_)
    if where.batch_id is not None:
        query = query.where(messages.c.batch_id == where.batch_id)
    if where.conversation_id is not None:
        query = query.where(messages.c.conversation_id == where.conversation_id)
    if where.created_after is not None:
        query = query.where(messages.c.created_at >= where.created_after)
    if where.created_before is not None:
        query = query.where(messages.c.created_at < where.created_before)
    if where.before_id is not None:
        query = query.where(messages.c.id < where.before_id)
    query = query.order_by(messages.c.id.desc()).limit(limit)
    return many((await conn.execute(query)).mappings().all())


async def get_batch(conn: AsyncConnection, project_id: str, batch_id: str) -> Row | None:
    query = select(batches).where(batches.c.id == batch_id, batches.c.project_id == project_id)
    return one((await conn.execute(query)).mappings().first())


async def batch_status_counts(conn: AsyncConnection, batch_id: str) -> dict[str, int]:
    query = (
        select(messages.c.status, func.count())
        .where(messages.c.batch_id == batch_id)
        .group_by(messages.c.status)
    )
    return {status: int(count) for status, count in (await conn.execute(query)).all()}


async def status_counts(conn: AsyncConnection) -> dict[str, int]:
    query = select(messages.c.status, func.count()).group_by(messages.c.status)
    return {status: int(count) for status, count in (await conn.execute(query)).all()}


async def set_status_where(
    conn: AsyncConnection,
    ids: Sequence[str],
    *,
    from_statuses: Sequence[str],
    values: dict[str, Any],
) -> list[str]:
    """Set ``values`` on those of ``ids`` whose status is one of ``from_statuses``.

    Returns the ids that changed: the guard makes concurrent writers and late receipts safe.
    """
    changed: list[str] = []
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        statement = (
            update(messages)
            .where(messages.c.id.in_(chunk), messages.c.status.in_(list(from_statuses)))
            .values(**values)
            .returning(messages.c.id)
        )
        changed.extend(row[0] for row in (await conn.execute(statement)).all())
    return changed


async def update_each(
    conn: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    *,
    from_statuses: Sequence[str],
) -> None:
    """Per-row updates (``rows`` each hold ``b_id`` plus the new column values)."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != "b_id"]
    statement = (
        update(messages)
        .where(messages.c.id == bindparam("b_id"), messages.c.status.in_(_constants(from_statuses)))
        .values({name: bindparam(name) for name in columns})
    )
    await conn.execute(statement, list(rows))


async def mark_sent(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], *, advance_from: Sequence[str]
) -> None:
    """Record providers' acceptances (``rows``: ``b_id``, ``provider_message_id``, ``sent_at``,
    ``price``, ``updated_at``, ``attempts``); the status becomes ``sent`` only from one of
    ``advance_from``, since a receipt may already have moved the message past it."""
    if not rows:
        return
    statement = (
        update(messages)
        .where(messages.c.id == bindparam("b_id"))
        .values(
            provider_message_id=bindparam("provider_message_id"),
            sent_at=bindparam("sent_at"),
            price=bindparam("price"),
            updated_at=bindparam("updated_at"),
            attempts=bindparam("attempts"),
            in_flight=False,
            status=case(
                (messages.c.status.in_(_constants(advance_from)), "sent"),
                else_=messages.c.status,
            ),
        )
    )
    await conn.execute(statement, list(rows))


def _constants(values: Sequence[str]) -> list[ColumnElement[str]]:
    """Inline SQL string literals: executemany cannot expand a bound IN list.

    Only for our own status constants, never for caller input.
    """
    assert all(value.isalpha() for value in values)
    return [literal_column(f"'{value}'") for value in values]
