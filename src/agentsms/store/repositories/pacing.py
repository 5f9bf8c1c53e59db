"""The pacing clock per sender number, shared by every worker through the database."""

from __future__ import annotations

import math

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.tables import jobs, messages, sender_pacing

# Built once: a statement built per call costs its cache key every time (the pacing row is
# read and written by every claim and every re-slotting).
_NEXT_SLOT = select(sender_pacing.c.next_slot_at).where(
    sender_pacing.c.number_id == bindparam("b_number_id")
)
_NEXT_SLOT_LOCKED = _NEXT_SLOT.with_for_update()
_SET_NEXT_SLOT = (
    update(sender_pacing)
    .where(sender_pacing.c.number_id == bindparam("b_number_id"))
    .values(next_slot_at=bindparam("b_next_slot"))
)


async def reserve_slots(
    conn: AsyncConnection, number_id: str, *, wanted: int, rate: float, now: float, horizon: float
) -> list[float]:
    """Take up to ``wanted`` send times for a number, ``1/rate`` apart, none past ``now+horizon``
    (an infinite ``horizon``: all ``wanted``).

    The row is locked for the rest of the transaction (PostgreSQL ``FOR UPDATE``; SQLite
    write transactions are exclusive), so concurrent workers get disjoint slots.
    """
    stored = await _locked_next_slot(conn, number_id)
    if stored is None:
        # The number's first slots: its row is made (by one worker if several try at once).
        dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
        await conn.execute(
            dialect_insert(sender_pacing)
            .values(number_id=number_id, next_slot_at=now)
            .on_conflict_do_nothing(index_elements=["number_id"])
        )
        stored = await _locked_next_slot(conn, number_id)
        assert stored is not None
    next_slot = max(stored, now)
    interval = 1.0 / rate
    if math.isinf(horizon):
        count = wanted
    else:
        count = max(0, min(wanted, int((now + horizon - next_slot) / interval) + 1))
    if count == 0:
        return []
    slots = [next_slot + i * interval for i in range(count)]
    await conn.execute(
        _SET_NEXT_SLOT, {"b_number_id": number_id, "b_next_slot": next_slot + count * interval}
    )
    return slots


async def _locked_next_slot(conn: AsyncConnection, number_id: str) -> float | None:
    """The number's next free slot, its row locked for the transaction (PostgreSQL)."""
    query = _NEXT_SLOT if conn.dialect.name == "sqlite" else _NEXT_SLOT_LOCKED
    value = (await conn.execute(query, {"b_number_id": number_id})).scalar_one_or_none()
    return None if value is None else float(value)


async def next_free_slot(conn: AsyncConnection, number_id: str) -> float | None:
    value = (await conn.execute(_NEXT_SLOT, {"b_number_id": number_id})).scalar_one_or_none()
    return None if value is None else float(value)


async def defer_backlog(
    conn: AsyncConnection,
    number_id: str,
    *,
    kind: str,
    due_by: float,
    run_at: float,
    spacing: float,
) -> int:
    """Spread a number's queued jobs due by ``due_by`` from ``run_at``, ``spacing`` apart.

    For a number with more work than its pacing horizon holds: its backlog stops coming
    back (and being claimed and released again) ahead of other numbers' due jobs, and each
    job becomes due about when its slot is near. Jobs claimed meanwhile are not touched.
    """
    query = (
        select(jobs.c.id)
        .select_from(jobs.join(messages, messages.c.id == jobs.c.ref))
        .where(
            jobs.c.status == "queued",
            jobs.c.kind == kind,
            jobs.c.run_at <= due_by,
            messages.c.number_id == number_id,
        )
        .order_by(jobs.c.run_at, jobs.c.id)
    )
    ids = list((await conn.execute(query)).scalars())
    if not ids:
        return 0
    # Row locks taken in id order, whatever the schedule order.
    rows = sorted(
        ({"b_id": job_id, "b_run_at": run_at + i * spacing} for i, job_id in enumerate(ids)),
        key=lambda row: row["b_id"],
    )
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == bindparam("b_id"), jobs.c.status == "queued")
        .values(run_at=bindparam("b_run_at")),
        rows,
    )
    return len(ids)
