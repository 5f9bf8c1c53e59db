"""Messages and batches."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Update,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import (
    decode_sqlite_time,
    encoder_for,
    id_list_params,
    id_list_sql,
    insert_rows,
)
from agentsms.store.records import AdvancedMessage, DispatchMessage, MessageRecord
from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import batches, messages, sticky_senders


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
    number: str | None = None
    direction: str | None = None
    batched: bool | None = None
    """Only messages sent in a batch (``True``) or outside one (``False``)."""
    purpose: str | None = None


async def insert_messages(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert message ``rows`` and keep each person's newest message and its sender
    (``sticky_senders``) up to date."""
    await insert_rows(conn, messages, rows, set_based=True)
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["project_id"], row["contact"])
        if key not in newest or row["id"] > newest[key]["id"]:
            newest[key] = row
    await insert_rows(
        conn,
        sticky_senders,
        [
            {
                "project_id": row["project_id"],
                "contact": row["contact"],
                "message_id": row["id"],
                "number_id": row.get("number_id"),
            }
            # In key order: on PostgreSQL each upsert locks its row until the commit, and
            # transactions that lock rows in one order never deadlock on them.
            for _, row in sorted(newest.items())
        ],
        suffix=_NEWER_SENDER,
        # One row per key (an upsert may not update a row twice in one statement).
        set_based=True,
    )


# A row already there keeps a newer message (one inserted meanwhile by another transaction).
_NEWER_SENDER = (
    " ON CONFLICT (project_id, contact) DO UPDATE SET message_id = excluded.message_id,"
    " number_id = excluded.number_id WHERE excluded.message_id > sticky_senders.message_id"
)


async def insert_batch(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await insert_rows(conn, batches, [row])


async def get_message(
    conn: AsyncConnection, project_id: str, message_id: str
) -> MessageRecord | None:
    query = select(messages).where(messages.c.id == message_id, messages.c.project_id == project_id)
    row = (await conn.execute(query)).first()
    return None if row is None else MessageRecord.from_row(row)


async def messages_by_ids(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, MessageRecord]:
    wanted = list(ids)
    found: dict[str, MessageRecord] = {}
    for start in range(0, len(wanted), 500):
        query = select(messages).where(messages.c.id.in_(wanted[start : start + 500]))
        for row in await conn.execute(query):
            record = MessageRecord.from_row(row)
            found[record.id] = record
    return found


def records(rows: Iterable[Any]) -> list[MessageRecord]:
    """Rows of ``select(messages)`` as records."""
    return [MessageRecord.from_row(row) for row in rows]


async def list_messages(
    conn: AsyncConnection, where: MessageFilter, limit: int, offset: int = 0
) -> list[MessageRecord]:
    query = select(messages).where(messages.c.project_id == where.project_id)
    if where.direction is not None:
        query = query.where(messages.c.direction == where.direction)
    if where.batched is not None:
        query = query.where(
            messages.c.batch_id.is_not(None) if where.batched else messages.c.batch_id.is_(None)
        )
    if where.status is not None:
        query = query.where(messages.c.status == where.status)
    if where.purpose is not None:
        query = query.where(messages.c.purpose == where.purpose)
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
    if where.number is not None:
        query = query.where(
            or_(messages.c.to_number == where.number, messages.c.from_number == where.number)
        )
    query = query.order_by(messages.c.id.desc()).limit(limit).offset(offset)
    return records(await conn.execute(query))


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


_CHUNK = 500
DISPATCH_COLUMNS = DispatchMessage._fields
"""What dispatch reads of a message to send it."""
_EXPIRES_AT = DISPATCH_COLUMNS.index("expires_at")
_IN_FLIGHT = DISPATCH_COLUMNS.index("in_flight")
_MEDIA_URLS = DISPATCH_COLUMNS.index("media_urls")


async def dispatch_rows(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, DispatchMessage]:
    """``DISPATCH_COLUMNS`` of the messages ``ids`` (missing ones are left out), by id.

    Read with plain driver SQL, decoding only these columns: dispatch reads every message
    it sends, and full rows through the ORM layer cost more than the query.
    """
    dialect = conn.dialect.name
    sqlite = dialect == "sqlite"
    found: dict[str, DispatchMessage] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        sql = (
            f"SELECT {', '.join(DISPATCH_COLUMNS)} FROM messages "
            f"WHERE id {id_list_sql(dialect, len(chunk), 1)}"
        )
        result = await conn.exec_driver_sql(sql, tuple(id_list_params(dialect, chunk)))
        for values in result.all():
            if sqlite:
                fixed = list(values)
                fixed[_EXPIRES_AT] = decode_sqlite_time(fixed[_EXPIRES_AT])
                fixed[_IN_FLIGHT] = bool(fixed[_IN_FLIGHT])
                media = fixed[_MEDIA_URLS]
                fixed[_MEDIA_URLS] = [] if media in (None, "[]") else json.loads(media)
                row = tuple.__new__(DispatchMessage, fixed)
            else:
                row = tuple.__new__(DispatchMessage, values)
            found[row.id] = row
    return found


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
    rows = await advance_where(
        conn, ids, from_statuses=from_statuses, values=values, returning=("id",)
    )
    return [row["id"] for row in rows]


async def advance_where(
    conn: AsyncConnection,
    ids: Sequence[str],
    *,
    from_statuses: Sequence[str],
    values: dict[str, Any],
    returning: Sequence[str],
) -> list[Row]:
    """``set_status_where``, returning the ``returning`` columns of the changed rows.

    ``returning`` may name ``id``, text and integer columns (returned as stored).
    """
    return [
        row._mapping
        for row in await _advance(
            conn, ids, from_statuses=from_statuses, values=values, returning=returning
        )
    ]


async def advance(
    conn: AsyncConnection,
    ids: Sequence[str],
    *,
    from_statuses: Sequence[str],
    values: dict[str, Any],
) -> list[AdvancedMessage]:
    """``set_status_where``, returning what a receipt needs of each changed message."""
    rows = await _advance(
        conn, ids, from_statuses=from_statuses, values=values, returning=AdvancedMessage._fields
    )
    return [tuple.__new__(AdvancedMessage, row) for row in rows]


async def _advance(
    conn: AsyncConnection,
    ids: Sequence[str],
    *,
    from_statuses: Sequence[str],
    values: dict[str, Any],
    returning: Sequence[str],
) -> list[Any]:
    dialect = conn.dialect.name
    names = list(values)
    params: list[Any] = []
    for name in names:
        encode = encoder_for(messages, name, dialect)
        params.append(values[name] if encode is None else encode(values[name]))
    if dialect == "sqlite":
        assignments = ", ".join(f"{name} = ?" for name in names)
    else:
        assignments = ", ".join(f"{name} = ${i + 1}" for i, name in enumerate(names))
    guard = _quoted(tuple(from_statuses))
    changed: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        sql = (
            f"UPDATE messages SET {assignments} "
            f"WHERE id {id_list_sql(dialect, len(chunk), len(names) + 1)} "
            f"AND status IN ({guard}) RETURNING {', '.join(returning)}"
        )
        result = await conn.exec_driver_sql(sql, (*params, *id_list_params(dialect, chunk)))
        changed.extend(result.all())
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
    columns = tuple(name for name in rows[0] if name != "b_id")
    await conn.execute(_update_each(columns, tuple(from_statuses)), list(rows))


@lru_cache(maxsize=64)
def _update_each(columns: tuple[str, ...], from_statuses: tuple[str, ...]) -> Update:
    """``update_each``'s statement, built once per shape: a statement built per call costs
    its cache key every time."""
    return (
        update(messages)
        .where(messages.c.id == bindparam("b_id"), messages.c.status.in_(_constants(from_statuses)))
        .values({name: bindparam(name) for name in columns})
    )


async def mark_sent(
    conn: AsyncConnection,
    rows: Sequence[tuple[str, str, Decimal | float | None, int, datetime]],
    *,
    now: datetime,
    advance_from: Sequence[str],
) -> set[str]:
    """Record providers' acceptances: ``rows`` of (message id, provider message id, price,
    attempts, sent at), each sent at its own moment of hand-off to the carrier; ``now`` is
    the update time. The status becomes ``sent`` only from one of ``advance_from``, since a
    receipt may already have moved the message on; a message moved there loses the error
    of an earlier attempt. Returns the ids that are ``sent`` now: those this moved there.

    One statement per 500 rows (a join with the rows as a list of values), not one each.
    """
    if not rows:
        return set()
    dialect = conn.dialect.name
    advance = _quoted(tuple(advance_from))
    moved = f"messages.status IN ({advance})"
    assign = (
        "provider_message_id = u.pmid, price = u.price, attempts = u.attempts, "
        "sent_at = u.sent_at, updated_at = {now}, in_flight = {false}, "
        f"error_code = CASE WHEN {moved} THEN NULL ELSE messages.error_code END, "
        f"error_message = CASE WHEN {moved} THEN NULL ELSE messages.error_message END, "
        f"status = CASE WHEN {moved} THEN 'sent' ELSE messages.status END"
    )
    advanced: set[str] = set()
    if dialect == "sqlite":
        stamp = encoder_for(messages, "sent_at", dialect) or (lambda value: value)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            marks = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
            params: list[Any] = []
            for message_id, pmid, price, attempts, sent_at in chunk:
                price_value = None if price is None else float(price)
                params += (message_id, pmid, price_value, attempts, stamp(sent_at))
            result = await conn.exec_driver_sql(
                f"WITH u(id, pmid, price, attempts, sent_at) AS (VALUES {marks}) "
                f"UPDATE messages SET {assign.format(now='?', false='0')} "
                f"FROM u WHERE messages.id = u.id {_NOW_SENT}",
                (*params, stamp(now)),
            )
            advanced.update(r["id"] for r in result.mappings() if r["status"] == "sent")
        return advanced
    result = await conn.exec_driver_sql(
        f"UPDATE messages SET {assign.format(now='$6', false='false')} "
        "FROM unnest($1::varchar[], $2::varchar[], $3::numeric[], $4::int[], "
        "$5::timestamptz[]) "
        # The ANY: rows reached by the primary key, never by hashing the whole table.
        "AS u(id, pmid, price, attempts, sent_at) WHERE messages.id = u.id "
        f"AND messages.id = ANY($1) {_NOW_SENT}",
        (
            [row[0] for row in rows],
            [row[1] for row in rows],
            [None if row[2] is None else Decimal(str(row[2])) for row in rows],
            [row[3] for row in rows],
            [row[4] for row in rows],
            now,
        ),
    )
    return {r["id"] for r in result.mappings() if r["status"] == "sent"}


_NOW_SENT = "RETURNING messages.id, messages.status"


@lru_cache(maxsize=64)
def _quoted(values: tuple[str, ...]) -> str:
    """Our own status constants as a list of SQL string literals (``'a', 'b'``)."""
    assert all(value.isalpha() for value in values)
    return ", ".join(f"'{value}'" for value in values)


def _constants(values: Sequence[str]) -> list[ColumnElement[str]]:
    """Inline SQL string literals: executemany cannot expand a bound IN list.

    Only for our own status constants, never for caller input.
    """
    assert all(value.isalpha() for value in values)
    return [literal_column(f"'{value}'") for value in values]


async def list_batches(
    conn: AsyncConnection, project_id: str, *, before_id: str | None, limit: int
) -> Sequence[Row]:
    """The project's batches, newest first, before the cursor ``before_id``."""
    query = select(batches).where(batches.c.project_id == project_id)
    if before_id is not None:
        query = query.where(batches.c.id < before_id)
    query = query.order_by(batches.c.id.desc()).limit(limit)
    return many((await conn.execute(query)).mappings().all())


async def batches_status_counts(
    conn: AsyncConnection, batch_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """``batch_status_counts`` for many batches in one query."""
    found: dict[str, dict[str, int]] = {batch_id: {} for batch_id in batch_ids}
    if not batch_ids:
        return found
    query = (
        select(messages.c.batch_id, messages.c.status, func.count())
        .where(messages.c.batch_id.in_(list(batch_ids)))
        .group_by(messages.c.batch_id, messages.c.status)
    )
    for batch_id, status, count in (await conn.execute(query)).all():
        found[batch_id][status] = int(count)
    return found


async def batch_ids_with_status(
    conn: AsyncConnection, batch_id: str, statuses: Sequence[str]
) -> list[str]:
    query = select(messages.c.id).where(
        messages.c.batch_id == batch_id, messages.c.status.in_(list(statuses))
    )
    return [row[0] for row in (await conn.execute(query)).all()]


async def outbound_timings(
    conn: AsyncConnection, project_id: str, since: datetime, limit: int
) -> Sequence[Row]:
    """``created_at``, ``status`` and ``delivered_at`` of outbound messages created since."""
    query = (
        select(messages.c.created_at, messages.c.status, messages.c.delivered_at)
        .where(
            messages.c.project_id == project_id,
            messages.c.direction == "outbound",
            messages.c.created_at >= since,
        )
        .order_by(messages.c.id.desc())
        .limit(limit)
    )
    return many((await conn.execute(query)).mappings().all())


async def recent_errors_by_number(
    conn: AsyncConnection, project_id: str, per_number: int, scan: int = 2000
) -> dict[str, list[Row]]:
    """The newest messages with an error, up to ``per_number`` per sender number id
    (looking at the project's ``scan`` newest failed messages)."""
    query = (
        select(
            messages.c.id,
            messages.c.number_id,
            messages.c.error_code,
            messages.c.error_message,
            messages.c.updated_at,
        )
        .where(messages.c.project_id == project_id, messages.c.error_code.is_not(None))
        .order_by(messages.c.id.desc())
        .limit(scan)
    )
    found: dict[str, list[Row]] = {}
    for row in many((await conn.execute(query)).mappings().all()):
        bucket = found.setdefault(row["number_id"], [])
        if len(bucket) < per_number:
            bucket.append(row)
    return found


async def sent_counts_by_number(
    conn: AsyncConnection, project_id: str, since: datetime
) -> dict[str, int]:
    """Outbound messages handed to a carrier since ``since``, per sender number id."""
    query = (
        select(messages.c.number_id, func.count())
        .where(
            messages.c.project_id == project_id,
            messages.c.direction == "outbound",
            messages.c.sent_at >= since,
        )
        .group_by(messages.c.number_id)
    )
    return {number_id: int(n) for number_id, n in (await conn.execute(query)).all()}


async def get_batches(
    conn: AsyncConnection, project_id: str, batch_ids: Sequence[str]
) -> Sequence[Row]:
    if not batch_ids:
        return []
    query = select(batches).where(
        batches.c.project_id == project_id, batches.c.id.in_(list(batch_ids))
    )
    return many((await conn.execute(query)).mappings().all())


async def outbound_after(
    conn: AsyncConnection, project_id: str, after_id: str, limit: int = 500
) -> list[MessageRecord]:
    """The project's outbound messages with an id above ``after_id`` (ids sort by creation
    time), oldest first: their acceptance, which intake stores no event row for."""
    query = (
        select(messages)
        .where(
            messages.c.project_id == project_id,
            messages.c.id > after_id,
            messages.c.direction == "outbound",
        )
        .order_by(messages.c.id)
        .limit(limit)
    )
    return records(await conn.execute(query))
