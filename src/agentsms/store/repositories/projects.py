"""Projects and their API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import api_keys, projects


async def insert_project(
    conn: AsyncConnection, *, id: str, name: str, settings: dict[str, Any], created_at: datetime
) -> None:
    await conn.execute(
        insert(projects).values(id=id, name=name, settings=settings, created_at=created_at)
    )


async def get_project(conn: AsyncConnection, project_id: str) -> Row | None:
    result = await conn.execute(select(projects).where(projects.c.id == project_id))
    return one(result.mappings().first())


async def update_project(
    conn: AsyncConnection, project_id: str, *, name: str, settings: dict[str, Any]
) -> None:
    await conn.execute(
        update(projects).where(projects.c.id == project_id).values(name=name, settings=settings)
    )


async def insert_api_key(
    conn: AsyncConnection,
    *,
    id: str,
    project_id: str,
    key_hash: str,
    prefix: str,
    name: str,
    created_at: datetime,
) -> None:
    await conn.execute(
        insert(api_keys).values(
            id=id,
            project_id=project_id,
            key_hash=key_hash,
            prefix=prefix,
            name=name,
            created_at=created_at,
        )
    )


async def project_for_key_hash(conn: AsyncConnection, key_hash: str) -> Row | None:
    """The project owning an unrevoked key with this hash."""
    query = (
        select(projects)
        .join(api_keys, api_keys.c.project_id == projects.c.id)
        .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    )
    return one((await conn.execute(query)).mappings().first())


async def key_for_hash(conn: AsyncConnection, key_hash: str) -> Row | None:
    """The unrevoked key row with this hash."""
    query = select(api_keys).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    return one((await conn.execute(query)).mappings().first())


async def project_for_key_id(conn: AsyncConnection, key_id: str) -> Row | None:
    """The project owning the unrevoked key ``key_id``."""
    query = (
        select(projects)
        .join(api_keys, api_keys.c.project_id == projects.c.id)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
    )
    return one((await conn.execute(query)).mappings().first())


async def list_api_keys(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    query = (
        select(api_keys)
        .where(api_keys.c.project_id == project_id)
        .order_by(api_keys.c.revoked_at.is_not(None), api_keys.c.id.desc())
    )
    return many((await conn.execute(query)).mappings().all())


async def get_api_key(conn: AsyncConnection, project_id: str, key_id: str) -> Row | None:
    query = select(api_keys).where(api_keys.c.project_id == project_id, api_keys.c.id == key_id)
    return one((await conn.execute(query)).mappings().first())


async def count_active_keys(conn: AsyncConnection, project_id: str) -> int:
    query = select(func.count()).where(
        api_keys.c.project_id == project_id, api_keys.c.revoked_at.is_(None)
    )
    return int((await conn.execute(query)).scalar_one())


async def revoke_api_key(
    conn: AsyncConnection, project_id: str, key_id: str, revoked_at: datetime
) -> None:
    await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.project_id == project_id,
            api_keys.c.id == key_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=revoked_at)
    )
