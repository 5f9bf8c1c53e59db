"""Job leases on a real database: heartbeats extend them and never wait on a busy row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event, select, text

from agentsms.config import Settings
from agentsms.jobs import queue
from agentsms.jobs.queue import Job, NewJob
from agentsms.jobs.worker import Worker, free_claim_loop
from agentsms.store.db import Database
from agentsms.store.tables import jobs

KIND = "test.lease"


async def _leases(db: Database, owner: str) -> dict[int, float]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(jobs.c.id, jobs.c.lease_expires_at).where(jobs.c.lease_owner == owner)
        )
        return {int(row.id): float(row.lease_expires_at) for row in rows}


async def test_heartbeat_extends_only_the_owners_leases(backend_url: str) -> None:
    db = Database(backend_url)
    try:
        async with db.write() as conn:
            await queue.enqueue_many(conn, [NewJob(kind=KIND, ref=f"r{i}") for i in range(4)])
            mine = await queue.claim(conn, owner="me", limit=3, lease_seconds=5, kinds=[KIND])
            theirs = await queue.claim(conn, owner="them", limit=3, lease_seconds=5, kinds=[KIND])
        assert len(mine) == 3
        assert len(theirs) == 1
        before_mine, before_theirs = await _leases(db, "me"), await _leases(db, "them")
        async with db.write() as conn:
            extended = await queue.heartbeat(conn, owner="me", lease_seconds=60)
        assert extended == 3
        after_mine = await _leases(db, "me")
        assert set(after_mine) == {job.id for job in mine}
        assert all(after_mine[i] >= time.time() + 50 > before_mine[i] for i in after_mine)
        assert await _leases(db, "them") == before_theirs
    finally:
        async with db.write() as conn:
            await conn.execute(jobs.delete().where(jobs.c.kind == KIND))
        await db.dispose()


async def test_heartbeat_skips_a_row_another_transaction_holds(backend_url: str) -> None:
    """PostgreSQL: a handler finishing a job holds its row; the heartbeat must not wait for
    it (waiting on rows locked in a different order is how two transactions deadlock)."""
    db = Database(backend_url)
    if db.is_sqlite:
        await db.dispose()
        pytest.skip("SQLite write transactions are exclusive: there are no row locks")
    try:
        async with db.write() as conn:
            await queue.enqueue_many(conn, [NewJob(kind=KIND, ref=f"r{i}") for i in range(3)])
            claimed = await queue.claim(conn, owner="me", limit=3, lease_seconds=5, kinds=[KIND])
        busy = claimed[0].id
        async with db.engine.connect() as holder:
            await holder.begin()
            await holder.execute(
                text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": busy}
            )
            async with db.write() as conn:
                extended = await asyncio.wait_for(
                    queue.heartbeat(conn, owner="me", lease_seconds=60), timeout=5
                )
            assert extended == 2
            await holder.rollback()
        leases = await _leases(db, "me")
        assert leases[busy] < time.time() + 50
        assert all(leases[job.id] >= time.time() + 50 for job in claimed[1:])
    finally:
        async with db.write() as conn:
            await conn.execute(jobs.delete().where(jobs.c.kind == KIND))
        await db.dispose()


async def test_a_worker_that_lost_its_lease_cannot_put_the_job_back_or_fail_it(
    backend_url: str,
) -> None:
    """Worker A stalls past its lease; the job goes to B. A's late retry or failure must not
    touch it (re-queued, a third worker would run it beside B)."""
    db = Database(backend_url)
    try:
        async with db.write() as conn:
            await queue.enqueue_many(conn, [NewJob(kind=KIND, ref="contested")])
            [stale] = await queue.claim(conn, owner="a", limit=1, lease_seconds=5, kinds=[KIND])
            later = time.time() + 10  # past a's lease
            assert await queue.recover_stalled(conn, now=later) >= 1
            [taken] = await queue.claim(
                conn, owner="b", limit=1, lease_seconds=60, kinds=[KIND], now=later
            )
        assert (taken.id, stale.owner, taken.owner) == (stale.id, "a", "b")

        async with db.write() as conn:
            await queue.retry(conn, stale, run_at=time.time(), error="a was late")
            await queue.retry_or_fail(conn, [(stale, None)], "a gave up")
        async with db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == taken.id))).one()
        assert (row.status, row.lease_owner, row.last_error) == ("running", "b", None)

        async with db.write() as conn:
            await queue.retry(conn, taken, run_at=time.time() + 30, error="b will try later")
        async with db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == taken.id))).one()
        assert (row.status, row.lease_owner, row.last_error) == ("queued", None, "b will try later")
    finally:
        async with db.write() as conn:
            await conn.execute(jobs.delete().where(jobs.c.kind == KIND))
        await db.dispose()


async def _row(db: Database, job_id: int) -> tuple[str, str | None, int]:
    async with db.read() as conn:
        row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one()
    return (row.status, row.lease_owner, row.lease_token)


async def test_each_claim_takes_the_next_lease_token_and_only_it_holds_the_job(
    backend_url: str,
) -> None:
    """Worker a stalls past its lease; its two jobs are recovered. b claims one, and a
    itself (resumed) claims the other again. a's first claims change nothing of either:
    no finish, release, renewal, retry or failure; the new claims can do all of it."""
    db = Database(backend_url)
    try:
        async with db.write() as conn:
            await queue.enqueue_many(conn, [NewJob(kind=KIND, ref=f"t{i}") for i in range(2)])
            stale = await queue.claim(conn, owner="a", limit=2, lease_seconds=5, kinds=[KIND])
            later = time.time() + 10  # past a's lease
            assert await queue.recover_stalled(conn, now=later) >= 2
            [b_claim] = await queue.claim(
                conn, owner="b", limit=1, lease_seconds=60, kinds=[KIND], now=later
            )
            [a_again] = await queue.claim(
                conn, owner="a", limit=1, lease_seconds=60, kinds=[KIND], now=later
            )
        assert [job.token for job in stale] == [1, 1]
        assert (b_claim.token, a_again.token) == (2, 2)
        assert {b_claim.id, a_again.id} == {job.id for job in stale}
        expected = {b_claim.id: ("running", "b", 2), a_again.id: ("running", "a", 2)}

        known = [job.lease.until for job in stale]
        async with db.write() as conn:
            renewal = await queue.renew(conn, stale, lease_seconds=600)
            await queue.finish(conn, stale)
            await queue.release_many(conn, stale, run_at=0.0)
            for job in stale:
                await queue.retry(conn, job, run_at=0.0, error="a was late")
            await queue.retry_or_fail(conn, [(stale[0], 0.0), (stale[1], None)], "a gave up")
        renewal.apply()
        assert renewal.held == frozenset()
        assert renewal.lost() == stale
        assert [job.lease.until for job in stale] == known
        assert {job_id: await _row(db, job_id) for job_id in expected} == expected

        async with db.write() as conn:
            renewal = await queue.renew(conn, [b_claim, a_again], lease_seconds=600)
        renewal.apply()
        assert renewal.held == frozenset(expected)
        assert b_claim.lease.holds(500)
        assert a_again.lease.holds(500)
        async with db.write() as conn:
            await queue.finish(conn, [b_claim, a_again])
        async with db.read() as conn:
            left = (await conn.execute(select(jobs.c.id).where(jobs.c.kind == KIND))).all()
        assert left == []
    finally:
        async with db.write() as conn:
            await conn.execute(jobs.delete().where(jobs.c.kind == KIND))
        await db.dispose()


async def test_release_owned_gives_back_only_the_owners_running_jobs(backend_url: str) -> None:
    """A stopping worker's jobs go back to the queue, due now, their attempt not counted;
    another worker's, and queued ones, are untouched."""
    db = Database(backend_url)
    try:
        async with db.write() as conn:
            await queue.enqueue_many(conn, [NewJob(kind=KIND, ref=f"o{i}") for i in range(4)])
            mine = await queue.claim(conn, owner="me", limit=2, lease_seconds=60, kinds=[KIND])
            [theirs] = await queue.claim(
                conn, owner="them", limit=1, lease_seconds=60, kinds=[KIND]
            )
        async with db.write() as conn:
            assert await queue.release_owned(conn, "me") == 2
        async with db.read() as conn:
            rows = {
                row.id: row for row in await conn.execute(select(jobs).where(jobs.c.kind == KIND))
            }
        for job in mine:
            row = rows[job.id]
            assert (row.status, row.lease_owner, row.lease_expires_at) == ("queued", None, None)
            assert (row.attempts, row.run_at <= time.time()) == (0, True)
        assert (rows[theirs.id].status, rows[theirs.id].lease_owner) == ("running", "them")
        assert sum(row.status == "queued" for row in rows.values()) == 3
    finally:
        async with db.write() as conn:
            await conn.execute(jobs.delete().where(jobs.c.kind == KIND))
        await db.dispose()


async def test_a_failed_handlers_jobs_are_retried_or_failed_in_one_statement(
    backend_url: str,
) -> None:
    """A handler raises for a group of four: the two with attempts left go back to the
    queue after their backoff, the one out of attempts fails, each with the error; the one
    whose job another worker took meanwhile changes nothing. One UPDATE does it all."""
    db = Database(backend_url)
    settings = Settings.model_validate(
        {"database_url": backend_url, "retry_base_seconds": 50, "retry_max_seconds": 60}
    )
    try:
        async with db.write() as conn:
            await queue.enqueue_many(
                conn,
                [NewJob(kind=KIND, ref=f"f{i}", max_attempts=1 if i == 2 else 5) for i in range(4)],
            )
            claims = await queue.claim(conn, owner="w", limit=4, lease_seconds=60, kinds=[KIND])
            by_ref = {job.ref: job for job in claims}
            # f3's claim lost its job: recovered (a stale lease) and claimed by another.
            await conn.execute(
                jobs.update().where(jobs.c.id == by_ref["f3"].id).values(lease_token=9)
            )

        async def broken(group: Sequence[Job]) -> None:
            raise RuntimeError(f"broken for {len(group)}")

        statements: list[str] = []

        def seen(*args: Any) -> None:
            statements.append(str(args[2]))

        engines = [engine.sync_engine for engine in db.engines]
        for engine in engines:
            event.listen(engine, "before_cursor_execute", seen)
        before = time.time()
        try:
            await Worker(db, settings, {KIND: broken})._run_claimed(claims)
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", seen)
        assert sum(sql.lstrip().startswith("UPDATE jobs") for sql in statements) == 1

        async with db.read() as conn:
            rows = (await conn.execute(select(jobs).where(jobs.c.kind == KIND))).all()
        found = {row.ref: row for row in rows}
        error = "RuntimeError('broken for 4')"
        for ref in ("f0", "f1"):
            row = found[ref]
            assert (row.status, row.lease_owner, row.last_error) == ("queued", None, error)
            assert before + 25 <= row.run_at <= time.time() + 60  # its backoff, not now
        assert (found["f2"].status, found["f2"].last_error) == ("failed", error)
        assert found["f2"].run_at == by_ref["f2"].run_at
        assert (found["f3"].status, found["f3"].lease_owner, found["f3"].last_error) == (
            "running",
            "w",
            None,
        )
    finally:
        async with db.write() as conn:
            await conn.execute(jobs.delete().where(jobs.c.kind == KIND))
        await db.dispose()


async def test_a_claims_kinds_run_side_by_side(backend_url: str) -> None:
    """A kind's group that waits (sends for their pacing slots) does not hold back the
    claim's other kinds: the waiting one here finishes only once the other has run."""
    db = Database(backend_url)
    settings = Settings.model_validate({"database_url": backend_url})
    slow, quick = f"{KIND}.slow", f"{KIND}.quick"
    try:
        async with db.write() as conn:
            await queue.enqueue_many(conn, [NewJob(kind=slow), NewJob(kind=quick)])
            claims = await queue.claim(
                conn, owner="w", limit=2, lease_seconds=60, kinds=[slow, quick]
            )
        assert [job.kind for job in claims] == [slow, quick]
        other_ran = asyncio.Event()
        done: list[str] = []

        async def waits(group: Sequence[Job]) -> None:
            await asyncio.wait_for(other_ran.wait(), timeout=5)
            done.append(slow)

        async def runs(group: Sequence[Job]) -> None:
            other_ran.set()
            done.append(quick)

        worker = Worker(db, settings, {slow: waits, quick: runs})
        await asyncio.wait_for(worker._run_claimed(claims), timeout=10)
        assert done == [quick, slow]
    finally:
        async with db.write() as conn:
            await conn.execute(jobs.delete().where(jobs.c.kind.in_([slow, quick])))
        await db.dispose()


async def test_a_handler_that_frees_its_claim_loop_runs_beside_the_next_claim(
    backend_url: str,
) -> None:
    """A handler only waiting now (sends for their pacing slots) frees its claim loop: the
    one loop claims and runs the next due job meanwhile. Stopping waits for the freed
    handler too: its job is finished by it, not given back while it still runs."""
    db = Database(backend_url)
    settings = Settings.model_validate(
        {"database_url": backend_url, "worker_poll_interval": 0.02, "worker_concurrency": 1}
    )
    kind = f"{KIND}.frees"
    try:
        async with db.write() as conn:
            await queue.enqueue_many(
                conn, [NewJob(kind=kind, ref="first"), NewJob(kind=kind, ref="second")]
            )
            # The second comes due after the first is claimed, as a paced backlog's next
            # jobs do (half a pacing horizon before their slots).
            await conn.execute(
                jobs.update().where(jobs.c.ref == "second").values(run_at=time.time() + 0.3)
            )
        second_ran = asyncio.Event()
        proceed = asyncio.Event()
        events: list[str] = []

        async def handler(group: Sequence[Job]) -> None:
            (job,) = group
            events.append(f"start {job.ref}")
            if job.ref == "first":
                free_claim_loop()
                await asyncio.wait_for(proceed.wait(), timeout=10)
            else:
                second_ran.set()
            async with db.write() as conn:
                await queue.finish(conn, group)
            events.append(f"end {job.ref}")

        worker = Worker(db, settings, {kind: handler})
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(second_ran.wait(), timeout=10)
        worker.stop()
        await asyncio.sleep(0.3)
        # The freed handler still runs: the worker waits for it before it stops.
        assert not running.done()
        async with db.read() as conn:
            held = (
                await conn.execute(select(jobs.c.ref, jobs.c.status).where(jobs.c.kind == kind))
            ).all()
        assert [(row.ref, row.status) for row in held] == [("first", queue.RUNNING)]
        proceed.set()
        await asyncio.wait_for(running, timeout=10)
        assert events == ["start first", "start second", "end second", "end first"]
        async with db.read() as conn:
            left = (await conn.execute(select(jobs.c.id).where(jobs.c.kind == kind))).all()
        assert left == []  # both finished by their handlers, none given back
    finally:
        async with db.write() as conn:
            await conn.execute(jobs.delete().where(jobs.c.kind == kind))
        await db.dispose()
