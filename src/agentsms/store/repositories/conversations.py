"""Conversations: one thread of texts between a sender number and a person."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    Select,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import id_list_params, id_list_sql, insert_rows
from agentsms.store.records import ConversationRecord, MessageRecord
from agentsms.store.repositories import Row, many
from agentsms.store.tables import conversations, jobs, messages, optouts, projects

ACTIVE = ("open", "needs_attention")


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """What ``GET /v1/conversations`` narrows by."""

    project_id: str
    status: str | None = None
    agent_number: str | None = None
    user_number: str | None = None
    persona_id: str | None = None
    outcome: str | None = None
    before_id: str | None = None


async def active_by_keys(
    conn: AsyncConnection, keys: Sequence[str]
) -> dict[str, ConversationRecord]:
    """The active conversation of each thread key that has one."""
    return {
        key: conversation
        for key, (conversation, _) in (await _active_by_keys(conn, keys, _ACTIVE)).items()
    }


async def active_by_keys_with_opt_out(
    conn: AsyncConnection, keys: Sequence[str]
) -> dict[str, tuple[ConversationRecord, bool]]:
    """``active_by_keys``, each with whether its person opted out of the project (read in
    the same query)."""
    return await _active_by_keys(conn, keys, _ACTIVE_WITH_OPT_OUT)


async def _active_by_keys(
    conn: AsyncConnection, keys: Sequence[str], query: Select[Any]
) -> dict[str, tuple[ConversationRecord, bool]]:
    found: dict[str, tuple[ConversationRecord, bool]] = {}
    # Which keys have a conversation at all, asked of the driver directly: a batch to new
    # recipients finds none, and reads no rows through SQLAlchemy's per-parameter binding.
    existing = await _existing_keys(conn, list(dict.fromkeys(keys)))
    for start in range(0, len(existing), 500):
        chunk = existing[start : start + 500]
        for row in await conn.execute(query, {"keys": chunk}):
            conversation = ConversationRecord.from_row(row)
            opted_out = bool(row[-1]) if len(row) > len(conversation) else False
            assert conversation.thread_key is not None  # active: it has its thread
            found[conversation.thread_key] = (conversation, opted_out)
    return found


# PostgreSQL: each key looked up on its own by a subquery, whose plan is an index lookup
# whatever the table's statistics. ``thread_key = ANY($1)`` got a generic plan (the
# prepared statement's, from its sixth run on) made while the table was nearly empty: a
# sequential scan, kept as the table grew until the next ANALYZE (every intake group of a
# fresh deployment read every conversation).
_EXISTING_KEYS_PG = (
    "SELECT k FROM unnest($1::varchar[]) AS k"
    " WHERE (SELECT true FROM conversations AS c WHERE c.thread_key = k)"
)


async def _existing_keys(conn: AsyncConnection, keys: Sequence[str]) -> list[str]:
    dialect = conn.dialect.name
    existing: list[str] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        if dialect == "postgresql":
            sql = _EXISTING_KEYS_PG
        else:
            sql = "SELECT thread_key FROM conversations WHERE thread_key " + id_list_sql(
                dialect, len(chunk), 1
            )
        result = await conn.exec_driver_sql(sql, tuple(id_list_params(dialect, chunk)))
        existing.extend(row[0] for row in result.all())
    return existing


# Built once: every send looks its thread up.
_ACTIVE = select(conversations).where(
    conversations.c.thread_key.in_(bindparam("keys", expanding=True))
)
_ACTIVE_WITH_OPT_OUT = select(
    conversations,
    exists()
    .where(
        optouts.c.project_id == conversations.c.project_id,
        optouts.c.recipient == conversations.c.user_number,
    )
    .label("opted_out"),
).where(conversations.c.thread_key.in_(bindparam("keys", expanding=True)))


async def active_ids_by_keys(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, str]:
    """The id of the active conversation of each thread key that has one."""
    found: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        chunk = list(set(keys[start : start + 500]))
        query = select(conversations.c.thread_key, conversations.c.id).where(
            conversations.c.thread_key.in_(chunk)
        )
        found.update({key: cid for key, cid in (await conn.execute(query)).all()})
    return found


async def insert_new(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int | None:
    """Insert conversations, skipping any whose thread already has an active one (another
    writer got there first). How many went in, where the driver says (SQLite; PostgreSQL,
    whose one statement reports it); when that is not all or not known, read the threads
    back to learn which rows went in."""
    return await insert_rows(
        conn, conversations, rows, suffix=" ON CONFLICT (thread_key) DO NOTHING", set_based=True
    )


async def get(
    conn: AsyncConnection, project_id: str, conversation_id: str
) -> ConversationRecord | None:
    query = select(conversations).where(
        conversations.c.id == conversation_id, conversations.c.project_id == project_id
    )
    return _one((await conn.execute(query)).first())


async def get_by_id(conn: AsyncConnection, conversation_id: str) -> ConversationRecord | None:
    query = select(conversations).where(conversations.c.id == conversation_id)
    return _one((await conn.execute(query)).first())


def _one(row: Any) -> ConversationRecord | None:
    return None if row is None else ConversationRecord.from_row(row)


def _all(rows: Iterable[Any]) -> list[ConversationRecord]:
    return [ConversationRecord.from_row(row) for row in rows]


async def active_for_user(
    conn: AsyncConnection, project_id: str, user_number: str
) -> list[ConversationRecord]:
    query = select(conversations).where(
        conversations.c.project_id == project_id,
        conversations.c.user_number == user_number,
        conversations.c.status.in_(ACTIVE),
    )
    return _all(await conn.execute(query))


async def active_for_users(
    conn: AsyncConnection, project_id: str, user_numbers: Sequence[str]
) -> list[ConversationRecord]:
    """The active conversations of any of ``user_numbers``."""
    found: list[ConversationRecord] = []
    for start in range(0, len(user_numbers), 500):
        query = select(conversations).where(
            conversations.c.project_id == project_id,
            conversations.c.user_number.in_(list(user_numbers[start : start + 500])),
            conversations.c.status.in_(ACTIVE),
        )
        found.extend(_all(await conn.execute(query)))
    return found


async def update_one(conn: AsyncConnection, conversation_id: str, values: dict[str, Any]) -> None:
    await conn.execute(
        update(conversations).where(conversations.c.id == conversation_id).values(**values)
    )


async def update_each(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Per-row updates in one executemany (``rows`` each hold ``b_id`` plus new values)."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != "b_id"]
    statement = (
        update(conversations)
        .where(conversations.c.id == bindparam("b_id"))
        .values({name: bindparam(name) for name in columns})
    )
    await conn.execute(statement, list(rows))


async def end_where_active(
    conn: AsyncConnection, ids: Sequence[str], values: dict[str, Any]
) -> list[str]:
    """End those of ``ids`` still active; returns the ids that changed."""
    if not ids:
        return []
    statement = (
        update(conversations)
        .where(conversations.c.id.in_(list(ids)), conversations.c.status.in_(ACTIVE))
        .values(thread_key=None, **values)
        .returning(conversations.c.id)
    )
    return [row[0] for row in (await conn.execute(statement)).all()]


def _filtered(query: Select[Any], where: ConversationFilter) -> Select[Any]:
    c = conversations.c
    query = query.where(c.project_id == where.project_id)
    if where.status is not None:
        query = query.where(c.status == where.status)
    if where.agent_number is not None:
        query = query.where(c.agent_number == where.agent_number)
    if where.user_number is not None:
        query = query.where(c.user_number == where.user_number)
    if where.persona_id is not None:
        query = query.where(c.settings["persona_id"].as_string() == where.persona_id)
    if where.outcome is not None:
        query = query.where(c.outcome == where.outcome)
    if where.before_id is not None:
        query = query.where(c.id < where.before_id)
    return query


async def list_conversations(
    conn: AsyncConnection, where: ConversationFilter, limit: int, offset: int = 0
) -> list[ConversationRecord]:
    query = _filtered(select(conversations), where).order_by(conversations.c.id.desc())
    query = query.limit(limit).offset(offset) if offset else query.limit(limit)
    return _all(await conn.execute(query))


async def count_conversations(conn: AsyncConnection, where: ConversationFilter) -> int:
    query = _filtered(select(func.count()).select_from(conversations), where)
    return int((await conn.execute(query)).scalar_one())


async def messages_of(
    conn: AsyncConnection, conversation_id: str, *, limit: int | None = None
) -> list[MessageRecord]:
    """The conversation's messages, oldest first (the newest ``limit`` when given)."""
    query = select(messages).where(messages.c.conversation_id == conversation_id)
    if limit is None:
        query = query.order_by(messages.c.id)
        return [MessageRecord.from_row(row) for row in await conn.execute(query)]
    query = query.order_by(messages.c.id.desc()).limit(limit)
    return [MessageRecord.from_row(row) for row in reversed((await conn.execute(query)).all())]


async def by_ids(
    conn: AsyncConnection, conversation_ids: Sequence[str]
) -> dict[str, ConversationRecord]:
    """The conversations among ``conversation_ids``, by id (one query per 500 of them)."""
    found: dict[str, ConversationRecord] = {}
    wanted = list(dict.fromkeys(conversation_ids))
    for start in range(0, len(wanted), 500):
        query = select(conversations).where(conversations.c.id.in_(wanted[start : start + 500]))
        for row in map(ConversationRecord.from_row, await conn.execute(query)):
            found[row.id] = row
    return found


async def recent_messages(
    conn: AsyncConnection, conversation_ids: Sequence[str], *, limit: int
) -> dict[str, list[MessageRecord]]:
    """The newest ``limit`` messages of each conversation, oldest first, in one statement
    of one shape whatever the number of conversations (a shape per count cost a
    compilation each, up to ~0.5 s of CPU on the event loop)."""
    wanted = list(dict.fromkeys(conversation_ids))
    if not wanted:
        return {}
    if conn.dialect.name == "sqlite":
        params = {"ids": json.dumps(wanted), "skip": limit - 1}
    else:
        params = {"ids": wanted, "take": limit}
    found: dict[str, list[MessageRecord]] = {}
    for row in map(MessageRecord.from_row, await conn.execute(_recent[conn.dialect.name], params)):
        found.setdefault(row.conversation_id or "", []).append(row)
    return {cid: sorted(rows, key=lambda row: row.id) for cid, rows in found.items()}


def _recent_sqlite() -> Select[Any]:
    # Per conversation: an index seek for its ``limit``-th newest message id, and a range
    # read from there (SQLite has no LATERAL).
    wanted = func.json_each(bindparam("ids")).table_valued("value").alias("c")
    newer = messages.alias("r")
    cutoff = (
        select(newer.c.id)
        .where(newer.c.conversation_id == wanted.c.value)
        .order_by(newer.c.id.desc())
        .limit(1)
        .offset(bindparam("skip"))
        .scalar_subquery()
    )
    on = and_(
        messages.c.conversation_id == wanted.c.value,
        messages.c.id >= func.coalesce(cutoff, ""),
    )
    return select(messages).select_from(wanted.join(messages, on))


def _recent_postgresql() -> Select[Any]:
    wanted = (
        func.unnest(bindparam("ids", type_=ARRAY(Text)))
        .table_valued("value")
        .render_derived(name="c")
    )
    newest = (
        select(messages)
        .where(messages.c.conversation_id == wanted.c.value)
        .order_by(messages.c.id.desc())
        .limit(bindparam("take"))
        .lateral("m")
    )
    return select(newest).select_from(wanted.join(newest, true()))


_recent = {"sqlite": _recent_sqlite(), "postgresql": _recent_postgresql()}


async def message_stats(
    conn: AsyncConnection, conversation_ids: Sequence[str]
) -> dict[str, tuple[int, MessageRecord]]:
    """Per conversation: how many messages it has and its newest message (two queries)."""
    if not conversation_ids:
        return {}
    m = messages.c
    counted = (
        select(m.conversation_id, func.count().label("n"), func.max(m.id).label("last_id"))
        .where(m.conversation_id.in_(list(conversation_ids)))
        .group_by(m.conversation_id)
    )
    totals = {row.conversation_id: (int(row.n), row.last_id) for row in await conn.execute(counted)}
    if not totals:
        return {}
    last_ids = [last for _, last in totals.values()]
    newest = await conn.execute(select(messages).where(m.id.in_(last_ids)))
    by_id = {row.id: row for row in map(MessageRecord.from_row, newest)}
    return {cid: (n, by_id[last]) for cid, (n, last) in totals.items() if last in by_id}


async def message_counts(conn: AsyncConnection, conversation_ids: Sequence[str]) -> dict[str, int]:
    """Per conversation: how many messages it has (one query; none are left out as 0)."""
    if not conversation_ids:
        return {}
    m = messages.c
    counted = (
        select(m.conversation_id, func.count().label("n"))
        .where(m.conversation_id.in_(list(conversation_ids)))
        .group_by(m.conversation_id)
    )
    return {row.conversation_id: int(row.n) for row in await conn.execute(counted)}


async def cancel_jobs(conn: AsyncConnection, kinds: Sequence[str], refs: Sequence[str]) -> None:
    """Delete the queued jobs of ``kinds`` for these conversations (running ones finish)."""
    for start in range(0, len(refs), 500):
        await conn.execute(
            delete(jobs).where(
                jobs.c.kind.in_(list(kinds)),
                jobs.c.ref.in_(list(refs[start : start + 500])),
                jobs.c.status == "queued",
            )
        )


async def earlier_job_pending(conn: AsyncConnection, kind: str, ref: str, job_id: int) -> bool:
    """Whether a job of ``kind`` for ``ref`` queued before ``job_id`` is still unfinished."""
    query = select(jobs.c.id).where(
        jobs.c.kind == kind,
        jobs.c.ref == ref,
        jobs.c.id < job_id,
        jobs.c.status.in_(["queued", "running"]),
    )
    return (await conn.execute(query.limit(1))).first() is not None


async def update_where_status(
    conn: AsyncConnection, conversation_id: str, statuses: Sequence[str], values: dict[str, Any]
) -> bool:
    result = await conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id, conversations.c.status.in_(list(statuses)))
        .values(**values)
    )
    return bool(result.rowcount)


async def cancel_openings(
    conn: AsyncConnection, conversation_ids: Sequence[str], values: dict[str, Any]
) -> Sequence[Row]:
    """Cancel the conversations' openings still waiting for their agent; returns them."""
    if not conversation_ids:
        return []
    statement = (
        update(messages)
        .where(
            messages.c.conversation_id.in_(list(conversation_ids)),
            messages.c.purpose == "agent",
            messages.c.body == "",
            messages.c.status.in_(["scheduled", "queued"]),
        )
        .values(**values)
        .returning(messages.c.id, messages.c.project_id)
    )
    return many((await conn.execute(statement)).mappings().all())


async def webhook_urls(conn: AsyncConnection, conversation_ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    wanted = list(set(conversation_ids))
    for start in range(0, len(wanted), 500):
        query = select(conversations.c.id, conversations.c.settings).where(
            conversations.c.id.in_(wanted[start : start + 500])
        )
        for conversation_id, settings in (await conn.execute(query)).all():
            url = (settings or {}).get("webhook_url")
            if url:
                found[conversation_id] = str(url)
    return found


# Built once: every claimed batch of sends reads its projects' settings.
_PROJECT_SETTINGS = select(projects.c.id, projects.c.settings).where(
    projects.c.id.in_(bindparam("b_ids", expanding=True))
)


async def project_settings_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Any]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = (await conn.execute(_PROJECT_SETTINGS, {"b_ids": wanted})).all()
    return {pid: dict(settings or {}) for pid, settings in rows}


async def metadata_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Any]:
    """Each conversation's metadata."""
    found: dict[str, Any] = {}
    wanted = list(set(ids))
    for start in range(0, len(wanted), 500):
        query = select(conversations.c.id, conversations.c.metadata).where(
            conversations.c.id.in_(wanted[start : start + 500])
        )
        found.update({cid: dict(m or {}) for cid, m in (await conn.execute(query)).all()})
    return found


async def settings_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Any]:
    """Each conversation's stored settings."""
    found: dict[str, Any] = {}
    wanted = list(set(ids))
    for start in range(0, len(wanted), 500):
        query = select(conversations.c.id, conversations.c.settings).where(
            conversations.c.id.in_(wanted[start : start + 500])
        )
        found.update({cid: dict(s or {}) for cid, s in (await conn.execute(query)).all()})
    return found
