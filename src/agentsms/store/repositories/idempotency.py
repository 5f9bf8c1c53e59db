"""Idempotency records: one per (project, key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import insert_rows
from agentsms.store.repositories import Row, one
from agentsms.store.tables import idempotency_keys as keys

# Built once: the lookup runs on every request that carries a key.
_GET = select(keys).where(
    keys.c.project_id == bindparam("project_id"), keys.c.key == bindparam("key")
)


async def lock_key(conn: AsyncConnection, project_id: str, key: str) -> bool:
    """Take a transaction-scoped lock on the key (PostgreSQL); False if another holds it.

    SQLite needs none: its write transactions are exclusive.
    """
    if conn.dialect.name == "sqlite":
        return True
    result = await conn.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:token, 0))"),
        {"token": f"{project_id}\x1f{key}"},
    )
    return bool(result.scalar_one())


async def get(conn: AsyncConnection, project_id: str, key: str) -> Row | None:
    result = await conn.execute(_GET, {"project_id": project_id, "key": key})
    return one(result.mappings().first())


async def insert_record(
    conn: AsyncConnection,
    *,
    project_id: str,
    key: str,
    request_hash: str,
    status: int,
    body: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await insert_rows(
        conn,
        keys,
        [
            {
                "project_id": project_id,
                "key": key,
                "request_hash": request_hash,
                "state": "done",
                "response_status": status,
                "response_body": body,
                "created_at": now,
                "expires_at": expires_at,
            }
        ],
    )


async def remove(conn: AsyncConnection, project_id: str, key: str) -> None:
    await conn.execute(delete(keys).where(keys.c.project_id == project_id, keys.c.key == key))


async def remove_expired(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(keys).where(keys.c.expires_at < now))
    return int(result.rowcount or 0)


async def count(conn: AsyncConnection, project_id: str) -> int:
    query = select(func.count()).select_from(keys).where(keys.c.project_id == project_id)
    return int((await conn.execute(query)).scalar_one())
