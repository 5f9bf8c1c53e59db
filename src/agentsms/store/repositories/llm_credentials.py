"""A project's own LLM credentials (one sealed API key per project)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, one
from agentsms.store.tables import llm_credentials


async def get(conn: AsyncConnection, project_id: str) -> Row | None:
    query = select(llm_credentials).where(llm_credentials.c.project_id == project_id)
    return one((await conn.execute(query)).mappings().first())


async def put(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert or replace the project's row (one statement: concurrent puts cannot clash)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(llm_credentials).values(**row)
    changes = {key: insert.excluded[key] for key in row if key != "project_id"}
    await conn.execute(insert.on_conflict_do_update(index_elements=["project_id"], set_=changes))


async def remove(conn: AsyncConnection, project_id: str) -> bool:
    result = await conn.execute(
        delete(llm_credentials).where(llm_credentials.c.project_id == project_id)
    )
    return bool(result.rowcount)
