"""Message templates: bodies with ``{{variable}}`` placeholders, stored per project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import message_templates

t = message_templates.c


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(message_templates.insert().values(**values))


async def get(conn: AsyncConnection, project_id: str, id_or_key: str) -> Row | None:
    """The project's template with this id, or else with this key."""
    query = select(message_templates).where(
        t.project_id == project_id, or_(t.id == id_or_key, t.key == id_or_key)
    )
    rows = many((await conn.execute(query)).mappings().all())
    by_id = [row for row in rows if row["id"] == id_or_key]
    return one(None) if not rows else (by_id or rows)[0]


async def key_taken(conn: AsyncConnection, project_id: str, key: str) -> bool:
    query = select(t.id).where(t.project_id == project_id, t.key == key)
    return (await conn.execute(query)).first() is not None


async def list_templates(
    conn: AsyncConnection, project_id: str, *, before_id: str | None, limit: int
) -> Sequence[Row]:
    query = select(message_templates).where(t.project_id == project_id)
    if before_id is not None:
        query = query.where(t.id < before_id)
    query = query.order_by(t.id.desc()).limit(limit)
    return many((await conn.execute(query)).mappings().all())


async def delete_one(conn: AsyncConnection, project_id: str, template_id: str) -> bool:
    result = await conn.execute(
        delete(message_templates).where(t.project_id == project_id, t.id == template_id)
    )
    return bool(result.rowcount)
