"""Opt-outs: people who asked a project to stop texting them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import optouts


async def opted_out(conn: AsyncConnection, project_id: str, recipients: Sequence[str]) -> set[str]:
    """Those of ``recipients`` who opted out of ``project_id``."""
    found: set[str] = set()
    wanted = list(set(recipients))
    if (
        len(wanted) > _PROBE_FIRST
        and (await conn.execute(_ANY, {"project_id": project_id})).first() is None
    ):
        return found  # a project nobody opted out of: one lookup, not one per recipient
    for start in range(0, len(wanted), 500):
        if conn.dialect.name == "postgresql":
            result = await conn.exec_driver_sql(
                _OPTED_OUT_PG, (project_id, wanted[start : start + 500])
            )
        else:
            chunk = {"project_id": project_id, "recipients": wanted[start : start + 500]}
            result = await conn.execute(_OPTED_OUT, chunk)
        found.update(row[0] for row in result.all())
    return found


_PROBE_FIRST = 20
"""Above this many recipients, first ask whether anybody opted out of the project at all."""
_ANY = select(optouts.c.recipient).where(optouts.c.project_id == bindparam("project_id")).limit(1)
# PostgreSQL: one statement whatever the number of recipients (an ``IN`` list of each
# length is a statement of its own, prepared again on every connection), each recipient
# looked up by its own subquery on the primary key (a plan that stays an index lookup
# whatever the statistics it was made with; see ``conversations._EXISTING_KEYS_PG``).
_OPTED_OUT_PG = (
    "SELECT r FROM unnest($2::varchar[]) AS r WHERE"
    " (SELECT true FROM optouts AS o WHERE o.project_id = $1 AND o.recipient = r)"
)
# Built once: sends to new threads ask it.
_OPTED_OUT = select(optouts.c.recipient).where(
    optouts.c.project_id == bindparam("project_id"),
    optouts.c.recipient.in_(bindparam("recipients", expanding=True)),
)


async def opted_out_pairs(
    conn: AsyncConnection, pairs: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Those (project, recipient) pairs that are opted out."""
    found: set[tuple[str, str]] = set()
    by_project: dict[str, list[str]] = {}
    for project_id, recipient in pairs:
        by_project.setdefault(project_id, []).append(recipient)
    for project_id, recipients in by_project.items():
        found.update((project_id, r) for r in await opted_out(conn, project_id, recipients))
    return found


async def get(conn: AsyncConnection, project_id: str, recipient: str) -> Row | None:
    query = select(optouts).where(
        optouts.c.project_id == project_id, optouts.c.recipient == recipient
    )
    return one((await conn.execute(query)).mappings().first())


async def record(
    conn: AsyncConnection,
    project_id: str,
    recipient: str,
    keyword: str | None,
    now: datetime,
    *,
    source: str = "keyword",
    number: str | None = None,
) -> bool:
    """Record an opt-out; False when the person had already opted out."""
    row = {
        "project_id": project_id,
        "recipient": recipient,
        "keyword": keyword,
        "created_at": now,
        "source": source,
        "number": number,
    }
    return bool(await record_many(conn, [row]))


async def record_many(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    """Record opt-outs (full ``optouts`` rows); those already recorded stay as they were.
    How many were new."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(optouts).on_conflict_do_nothing(
        index_elements=["project_id", "recipient"]
    )
    added = 0
    for start in range(0, len(rows), 500):
        result = await conn.execute(statement.values(list(rows[start : start + 500])))
        added += max(result.rowcount, 0)
    return added


@dataclass(frozen=True, slots=True)
class OptOutFilter:
    """What the opt-out list narrows by; ``after`` is the (created_at, recipient) of the
    last entry of the previous page (the list is newest first)."""

    project_id: str
    recipient: str | None = None
    source: str | None = None
    after: tuple[datetime, str] | None = None


async def page(conn: AsyncConnection, where: OptOutFilter, limit: int) -> Sequence[Row]:
    """A page of the project's opt-outs, newest first."""
    query = select(optouts).where(optouts.c.project_id == where.project_id)
    if where.recipient is not None:
        query = query.where(optouts.c.recipient == where.recipient)
    if where.source is not None:
        query = query.where(optouts.c.source == where.source)
    if where.after is not None:
        at, recipient = where.after
        query = query.where(
            or_(
                optouts.c.created_at < at,
                and_(optouts.c.created_at == at, optouts.c.recipient < recipient),
            )
        )
    query = query.order_by(optouts.c.created_at.desc(), optouts.c.recipient.desc()).limit(limit)
    return many((await conn.execute(query)).mappings().all())


async def remove(conn: AsyncConnection, project_id: str, recipient: str) -> bool:
    result = await conn.execute(
        delete(optouts).where(optouts.c.project_id == project_id, optouts.c.recipient == recipient)
    )
    return bool(result.rowcount)
