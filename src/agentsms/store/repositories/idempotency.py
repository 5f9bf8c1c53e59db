"""Idempotency records: one per (project, key)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import insert_rows
from agentsms.store.purge import chunk_delete
from agentsms.store.repositories import Row, many
from agentsms.store.tables import idempotency_keys as keys

_GET_MANY = select(keys).where(
    keys.c.project_id == bindparam("project_id"),
    keys.c.key.in_(bindparam("keys", expanding=True)),
)


async def lock_key(conn: AsyncConnection, project_id: str, key: str) -> bool:
    """Take a transaction-scoped lock on the key (PostgreSQL); False if another holds it.

    SQLite needs none: its write transactions are exclusive.
    """
    (locked,) = await lock_keys(conn, project_id, [key])
    return locked


async def lock_keys(conn: AsyncConnection, project_id: str, given: Sequence[str]) -> list[bool]:
    """``lock_key`` for many keys in one statement, in order."""
    if conn.dialect.name == "sqlite":
        return [True] * len(given)
    result = await conn.execute(
        text(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(token, 0)) FROM"
            " unnest(CAST(:tokens AS text[])) WITH ORDINALITY AS t(token, n) ORDER BY n"
        ),
        {"tokens": [f"{project_id}\x1f{key}" for key in given]},
    )
    return [bool(locked) for locked in result.scalars()]


async def get_many(conn: AsyncConnection, project_id: str, given: Sequence[str]) -> dict[str, Row]:
    """The project's records among ``given`` keys, by key."""
    if not given:
        return {}
    result = await conn.execute(_GET_MANY, {"project_id": project_id, "keys": list(given)})
    return {row["key"]: row for row in many(result.mappings())}


async def insert_records(conn: AsyncConnection, records: Sequence[dict[str, object]]) -> None:
    """Store finished responses: dicts of ``project_id, key, request_hash, response_status,
    response_body, created_at, expires_at``."""
    await insert_rows(conn, keys, [record | {"state": "done"} for record in records])


async def remove(conn: AsyncConnection, project_id: str, key: str) -> None:
    await conn.execute(delete(keys).where(keys.c.project_id == project_id, keys.c.key == key))


async def remove_expired(conn: AsyncConnection, now: datetime, limit: int) -> int:
    """Delete at most ``limit`` keys expired before ``now`` (found through their
    ``expires_at`` index); returns how many were deleted."""
    result = await conn.execute(chunk_delete(keys, keys.c.expires_at < now, limit))
    return int(result.rowcount or 0)


async def count(conn: AsyncConnection, project_id: str) -> int:
    query = select(func.count()).select_from(keys).where(keys.c.project_id == project_id)
    return int((await conn.execute(query)).scalar_one())
