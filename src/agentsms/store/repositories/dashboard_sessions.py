"""Dashboard sessions: one row per signed-in browser."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, one
from agentsms.store.tables import api_keys, dashboard_sessions, projects


async def insert_session(
    conn: AsyncConnection, *, id_hash: str, key_id: str, created_at: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        insert(dashboard_sessions).values(
            id_hash=id_hash, key_id=key_id, created_at=created_at, expires_at=expires_at
        )
    )


async def project_for_session(conn: AsyncConnection, id_hash: str, now: datetime) -> Row | None:
    """The project (and, as ``key_id``, the key) of an unexpired session whose key is not
    revoked."""
    query = (
        select(projects, dashboard_sessions.c.key_id)
        .join(api_keys, api_keys.c.project_id == projects.c.id)
        .join(dashboard_sessions, dashboard_sessions.c.key_id == api_keys.c.id)
        .where(
            dashboard_sessions.c.id_hash == id_hash,
            dashboard_sessions.c.expires_at > now,
            api_keys.c.revoked_at.is_(None),
        )
    )
    return one((await conn.execute(query)).mappings().first())


async def delete_session(conn: AsyncConnection, id_hash: str) -> None:
    await conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id_hash == id_hash))


async def delete_expired(conn: AsyncConnection, now: datetime) -> None:
    await conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at <= now))
