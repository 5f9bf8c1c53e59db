"""The pacing clock per sender number, shared by every worker through the database."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.tables import sender_pacing


async def reserve_slots(
    conn: AsyncConnection, number_id: str, *, wanted: int, rate: float, now: float, horizon: float
) -> list[float]:
    """Take up to ``wanted`` send times for a number, ``1/rate`` apart, none past ``now+horizon``.

    The row is locked for the rest of the transaction (PostgreSQL ``FOR UPDATE``; SQLite
    write transactions are exclusive), so concurrent workers get disjoint slots.
    """
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    await conn.execute(
        dialect_insert(sender_pacing)
        .values(number_id=number_id, next_slot_at=now)
        .on_conflict_do_nothing(index_elements=["number_id"])
    )
    query = select(sender_pacing.c.next_slot_at).where(sender_pacing.c.number_id == number_id)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    next_slot = max(float((await conn.execute(query)).scalar_one()), now)
    interval = 1.0 / rate
    available = int((now + horizon - next_slot) / interval) + 1
    count = max(0, min(wanted, available))
    if count == 0:
        return []
    slots = [next_slot + i * interval for i in range(count)]
    await conn.execute(
        update(sender_pacing)
        .where(sender_pacing.c.number_id == number_id)
        .values(next_slot_at=next_slot + count * interval)
    )
    return slots


async def next_free_slot(conn: AsyncConnection, number_id: str) -> float | None:
    query = select(sender_pacing.c.next_slot_at).where(sender_pacing.c.number_id == number_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else float(value)
