"""The message event log: every status change, in order, for streams, timelines and webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import insert_rows
from agentsms.store.repositories import Row, many
from agentsms.store.tables import message_events


async def insert_events(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(conn, message_events, rows, set_based=True)


async def events_after(
    conn: AsyncConnection, project_id: str, after_seq: int, limit: int = 500
) -> Sequence[Row]:
    query = (
        select(message_events)
        .where(message_events.c.project_id == project_id, message_events.c.seq > after_seq)
        .order_by(message_events.c.seq)
        .limit(limit)
    )
    return many((await conn.execute(query)).mappings().all())


async def last_seq(conn: AsyncConnection, project_id: str) -> int:
    query = select(func.max(message_events.c.seq)).where(message_events.c.project_id == project_id)
    return int((await conn.execute(query)).scalar_one_or_none() or 0)


async def event_time(conn: AsyncConnection, project_id: str, seq: int) -> datetime | None:
    """When the project's event ``seq`` was recorded (``None``: no such event)."""
    query = select(message_events.c.created_at).where(
        message_events.c.project_id == project_id, message_events.c.seq == seq
    )
    found: datetime | None = (await conn.execute(query)).scalar_one_or_none()
    return found


async def events_for_message(conn: AsyncConnection, message_id: str) -> Sequence[Row]:
    query = (
        select(message_events)
        .where(message_events.c.message_id == message_id)
        .order_by(message_events.c.seq)
    )
    return many((await conn.execute(query)).mappings().all())
