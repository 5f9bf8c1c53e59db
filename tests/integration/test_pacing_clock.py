"""The pacing clock in the database, and late sends kept to the rate by the worker."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time

from sqlalchemy import delete
from ulid import ULID

from agentsms.store.db import Database
from agentsms.store.repositories import pacing
from agentsms.store.tables import sender_pacing
from tests.conftest import Gateway
from tests.integration.helpers import settle, sim_sends

RATE = 10
INTERVAL = 1.02 / RATE


def most_in_a_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered))


async def reserve(db: Database, number_id: str, wanted: int, now: float) -> list[float]:
    async with db.write() as conn:
        return await pacing.reserve_slots(
            conn, number_id, wanted=wanted, rate=1 / INTERVAL, now=now, horizon=float("inf")
        )


async def next_free(db: Database, number_id: str) -> float | None:
    async with db.read() as conn:
        return await pacing.next_free_slot(conn, number_id)


async def test_slots_are_handed_out_once_and_spaced_across_connections(
    backend_url: str,
) -> None:
    """Workers reserving at once get disjoint slots, one interval apart, none past the
    horizon; the row then points past the last one."""
    db = Database(backend_url)
    number_id = f"num_{ULID()}"
    try:
        start = time.time() + 100
        runs = await asyncio.gather(*(reserve(db, number_id, 4, start) for _ in range(3)))
        slots = sorted(s for run in runs for s in run)
        assert len(slots) == len(set(slots)) == 12
        assert all(b - a >= INTERVAL * 0.999 for a, b in itertools.pairwise(slots))
        # Each worker's run is consecutive: none falls inside another's.
        for run in runs:
            inside = [s for s in slots if run[0] <= s <= run[-1]]
            assert inside == run
        assert await next_free(db, number_id) == slots[-1] + INTERVAL
        async with db.write() as conn:
            capped = await pacing.reserve_slots(
                conn, number_id, wanted=50, rate=1 / INTERVAL, now=start, horizon=2.0
            )
        # Up to now + 2 s only: what is left of the two seconds after the 12 taken.
        assert capped[0] == slots[-1] + INTERVAL
        assert capped[-1] <= start + 2.0 < capped[-1] + INTERVAL
    finally:
        async with db.write() as conn:
            await conn.execute(delete(sender_pacing).where(sender_pacing.c.number_id == number_id))
        await db.dispose()


async def test_a_stalling_worker_sends_late_messages_at_once_and_within_the_rate(
    gateway: Gateway,
) -> None:
    """A worker whose event loop stalls (past several of its slots at a time) sends the
    overdue messages as soon as it wakes up, as far as its own slots make room in every
    second, and re-slots the rest: each message goes once, no second holds more than the
    number's rate."""
    rate = 10
    added = await gateway.client.post(
        "/v1/numbers", json={"number": "+14155550177", "throughput_mps": rate}
    )
    assert added.status_code == 201
    recipients = [f"+141555577{i:02d}" for i in range(30)]
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": recipients, "body": "stalls", "from": "+14155550177"}
    )
    ids = batch.json()["message_ids"]
    stalls = 0

    async def stall() -> None:
        nonlocal stalls
        while True:
            await asyncio.sleep(0.4)
            time.sleep(0.35)  # noqa: ASYNC251 (the stall itself: several slots go by unseen)
            stalls += 1

    staller = asyncio.create_task(stall())
    try:
        final = await settle(gateway, ids, within=60)
    finally:
        staller.cancel()
    assert stalls >= 3
    assert {row["status"] for row in final.values()} == {"delivered"}
    times = []
    for message_id in ids:
        (send,) = await sim_sends(gateway, message_id)  # sent once
        assert send["repeat_count"] == 0
        times.append(float(send["created_at"]))
    assert most_in_a_second(times) <= rate
    # Overdue messages went together on waking up (slots are 0.102 s apart).
    gaps = [b - a for a, b in itertools.pairwise(sorted(times))]
    assert min(gaps) < INTERVAL / 4, gaps
