"""A project's own LLM credentials (one sealed API key per project)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, one
from agentsms.store.tables import llm_credentials


async def get(conn: AsyncConnection, project_id: str) -> Row | None:
    query = select(llm_credentials).where(llm_credentials.c.project_id == project_id)
    return one((await conn.execute(query)).mappings().first())


async def put(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert or replace the project's row."""
    changes = {key: value for key, value in row.items() if key != "project_id"}
    result = await conn.execute(
        update(llm_credentials)
        .where(llm_credentials.c.project_id == row["project_id"])
        .values(**changes)
    )
    if result.rowcount == 0:
        await conn.execute(insert(llm_credentials).values(**row))


async def remove(conn: AsyncConnection, project_id: str) -> bool:
    result = await conn.execute(
        delete(llm_credentials).where(llm_credentials.c.project_id == project_id)
    )
    return bool(result.rowcount)
