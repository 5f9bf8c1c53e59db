"""What capped projects have been charged per day (``project_daily_usage``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.tables import messages, project_daily_usage

usage = project_daily_usage


async def lock_day(conn: AsyncConnection, project_id: str, day: str) -> tuple[int, Decimal]:
    """The project's charges of ``day`` (segments, spend), its row locked for the rest of the
    transaction (PostgreSQL ``FOR UPDATE``; SQLite write transactions are exclusive), so
    concurrent intakes and workers charge one after another."""
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    await conn.execute(
        dialect_insert(usage)
        .values(project_id=project_id, day=day, segments=0, spend=Decimal(0))
        .on_conflict_do_nothing(index_elements=["project_id", "day"])
    )
    query = select(usage.c.segments, usage.c.spend).where(
        usage.c.project_id == project_id, usage.c.day == day
    )
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    segments, spend = (await conn.execute(query)).one()
    return int(segments), Decimal(spend)


async def add(
    conn: AsyncConnection, project_id: str, day: str, segments: int, spend: Decimal
) -> None:
    """Add to the project's charges of ``day`` (its row exists: ``lock_day`` made it)."""
    await conn.execute(
        update(usage)
        .where(usage.c.project_id == project_id, usage.c.day == day)
        .values(segments=usage.c.segments + segments, spend=usage.c.spend + spend)
    )


async def reset_day(conn: AsyncConnection, project_id: str, day: str, since: datetime) -> None:
    """Set the project's charges of ``day`` to what it has accepted since ``since`` for
    sending now (its outbound messages not waiting for a later time)."""
    query = select(
        func.coalesce(func.sum(messages.c.segments), 0),
        func.coalesce(func.sum(messages.c.price_estimate), 0),
    ).where(
        messages.c.project_id == project_id,
        messages.c.direction == "outbound",
        messages.c.created_at >= since,
        messages.c.status != "scheduled",
    )
    segments, spend = (await conn.execute(query)).one()
    values = {"segments": int(segments), "spend": Decimal(spend)}
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    await conn.execute(
        dialect_insert(usage)
        .values(project_id=project_id, day=day, **values)
        .on_conflict_do_update(index_elements=["project_id", "day"], set_=values)
    )
