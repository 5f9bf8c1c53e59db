"""Message reactions (iMessage tapbacks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, many
from agentsms.store.tables import message_reactions


async def insert_reaction(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(message_reactions).values(**row))


async def reactions_of(conn: AsyncConnection, project_id: str, message_id: str) -> Sequence[Row]:
    query = (
        select(message_reactions)
        .where(
            message_reactions.c.project_id == project_id,
            message_reactions.c.message_id == message_id,
        )
        .order_by(message_reactions.c.id)
    )
    return many((await conn.execute(query)).mappings().all())
