"""The pacing clock in the database: slots, and late sends let through only with room."""

from __future__ import annotations

import bisect
import time

from sqlalchemy import delete
from ulid import ULID

from agentsms.store.db import Database
from agentsms.store.repositories import pacing
from agentsms.store.tables import sender_pacing

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


async def admit(
    db: Database, number_id: str, slot: float, at: float, max_push: float = 10.0
) -> bool:
    async with db.write() as conn:
        return await pacing.admit_late(
            conn,
            number_id,
            slot=slot,
            at=at,
            interval=INTERVAL,
            per_second=RATE,
            max_push=max_push,
        )


async def next_free(db: Database, number_id: str) -> float | None:
    async with db.read() as conn:
        return await pacing.next_free_slot(conn, number_id)


async def test_a_late_send_with_room_goes_and_pushes_the_next_slots(backend_url: str) -> None:
    db = Database(backend_url)
    number_id = f"num_{ULID()}"
    try:
        start = time.time() + 100
        held = await reserve(db, number_id, 3, start)
        assert held == [start + i * INTERVAL for i in range(3)]
        # The first slot's send woke up half a second late; two slots after it are taken.
        late_at = start + 0.5
        assert await admit(db, number_id, held[0], late_at)
        later = await reserve(db, number_id, 30, start)
        assert later[0] > held[-1] + INTERVAL  # the schedule made room
        # Each send at the latest it may go: the late one at its admission, the rest at
        # their slots (or the slack after them, whichever is worse for the window).
        for lag in (0.0, 0.02):
            sends = [late_at, *(s + lag for s in held[1:]), *(s + lag for s in later)]
            assert most_in_a_second(sends) <= RATE
        # Without the push the same sends would put 11 in the second from the late one.
        unpushed = [late_at, *held[1:], *(held[-1] + INTERVAL * (i + 1) for i in range(30))]
        assert most_in_a_second(unpushed) > RATE
    finally:
        async with db.write() as conn:
            await conn.execute(delete(sender_pacing).where(sender_pacing.c.number_id == number_id))
        await db.dispose()


async def test_a_late_send_without_room_is_refused_and_changes_nothing(
    backend_url: str,
) -> None:
    db = Database(backend_url)
    number_id = f"num_{ULID()}"
    try:
        start = time.time() + 100
        held = await reserve(db, number_id, RATE + 1, start)
        before = await next_free(db, number_id)
        # Ten slots after the first are taken: a late first send would be the eleventh.
        assert not await admit(db, number_id, held[0], start + 0.5)
        assert await next_free(db, number_id) == before
        # The second slot has nine after it: room, once the schedule moves 0.38 s, which
        # is refused when a push may be at most 0.1 s.
        assert not await admit(db, number_id, held[1], start + 0.5, max_push=0.1)
        assert await next_free(db, number_id) == before
        assert await admit(db, number_id, held[1], start + 0.5)
        moved = await next_free(db, number_id)
        assert before is not None
        assert moved is not None
        assert moved > before
        assert not await admit(db, f"num_{ULID()}", start, start + 0.5)  # unknown number
    finally:
        async with db.write() as conn:
            await conn.execute(delete(sender_pacing).where(sender_pacing.c.number_id == number_id))
        await db.dispose()


async def test_late_sends_admitted_together_get_the_answers_one_by_one_would(
    backend_url: str,
) -> None:
    """``admit_late_many`` (one read, one write of the row) answers each late send as
    ``admit_late`` called for them in turn would, and leaves the row where they would."""
    db = Database(backend_url)
    one_by_one, together = f"num_{ULID()}", f"num_{ULID()}"
    try:
        start = time.time() + 100
        for number_id in (one_by_one, together):
            held = await reserve(db, number_id, 8, start)
        late_at = start + 0.35
        answers = [await admit(db, one_by_one, slot, late_at, max_push=0.3) for slot in held]
        async with db.write() as conn:
            batched = await pacing.admit_late_many(
                conn,
                together,
                slots=held,
                at=late_at,
                interval=INTERVAL,
                per_second=RATE,
                max_push=0.3,
            )
        assert batched == answers
        assert True in answers  # both kinds of answer were exercised
        assert False in answers
        assert await next_free(db, together) == await next_free(db, one_by_one)
    finally:
        async with db.write() as conn:
            await conn.execute(
                delete(sender_pacing).where(sender_pacing.c.number_id.in_([one_by_one, together]))
            )
        await db.dispose()


async def test_catch_up_answers_and_reslots_as_admitting_then_reserving_would(
    backend_url: str,
) -> None:
    """``catch_up`` (one read, one write of the row) gives the late sends the answers of
    ``admit_late_many``, and the refused ones (and the extra ones asked for) the slots
    ``reserve_slots`` would then give, leaving the row where those two calls would."""
    db = Database(backend_url)
    apart, together, unknown = f"num_{ULID()}", f"num_{ULID()}", f"num_{ULID()}"
    try:
        start = time.time() + 100
        for number_id in (apart, together):
            held = await reserve(db, number_id, 8, start)
        late_at, now = start + 0.35, start + 0.4
        async with db.write() as conn:
            answers = await pacing.admit_late_many(
                conn,
                apart,
                slots=held,
                at=late_at,
                interval=INTERVAL,
                per_second=RATE,
                max_push=0.3,
            )
        refused = answers.count(False)
        expected = await reserve(db, apart, refused + 2, now)
        async with db.write() as conn:
            batched, fresh = await pacing.catch_up(
                conn,
                together,
                slots=held,
                also_fresh=2,
                at=late_at,
                interval=INTERVAL,
                per_second=RATE,
                max_push=0.3,
                now=now,
            )
        assert batched == answers
        assert True in answers  # both kinds of answer were exercised
        assert False in answers
        assert fresh == expected
        assert await next_free(db, together) == await next_free(db, apart)
        # A number without a schedule yet: fresh slots for every one, from ``now``.
        async with db.write() as conn:
            none_admitted, first = await pacing.catch_up(
                conn,
                unknown,
                slots=[start],
                also_fresh=1,
                at=late_at,
                interval=INTERVAL,
                per_second=RATE,
                max_push=0.3,
                now=now,
            )
        assert none_admitted == [False]
        assert first == [now, now + INTERVAL]
    finally:
        async with db.write() as conn:
            await conn.execute(
                delete(sender_pacing).where(
                    sender_pacing.c.number_id.in_([apart, together, unknown])
                )
            )
        await db.dispose()
