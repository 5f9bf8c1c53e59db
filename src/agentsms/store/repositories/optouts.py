"""Opt-outs: people who asked a project to stop texting them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, one
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
        chunk = {"project_id": project_id, "recipients": wanted[start : start + 500]}
        found.update(row[0] for row in (await conn.execute(_OPTED_OUT, chunk)).all())
    return found


_PROBE_FIRST = 20
"""Above this many recipients, first ask whether anybody opted out of the project at all."""
_ANY = select(optouts.c.recipient).where(optouts.c.project_id == bindparam("project_id")).limit(1)
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
    conn: AsyncConnection, project_id: str, recipient: str, keyword: str, now: datetime
) -> bool:
    """Record an opt-out; False when the person had already opted out."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(optouts)
        .values(project_id=project_id, recipient=recipient, keyword=keyword, created_at=now)
        .on_conflict_do_nothing(index_elements=["project_id", "recipient"])
    )
    result = await conn.execute(statement)
    return bool(result.rowcount)


async def remove(conn: AsyncConnection, project_id: str, recipient: str) -> bool:
    result = await conn.execute(
        delete(optouts).where(optouts.c.project_id == project_id, optouts.c.recipient == recipient)
    )
    return bool(result.rowcount)
