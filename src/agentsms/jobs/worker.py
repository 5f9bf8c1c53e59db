"""The worker loop: claim due jobs in batches, run their handlers, heartbeat, recover.

SIGTERM (or ``Worker.stop()``) stops claiming; jobs already claimed are finished, every
job the worker still holds then (of any kind: a webhook attempt still waiting on a slow
endpoint) is released, due at once, and ``run()`` returns. A worker killed outright loses
nothing: its leases run out and any other worker's recovery pass puts its jobs back in
the queue.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress

import structlog
from ulid import ULID

from agentsms.config import Settings
from agentsms.jobs import queue
from agentsms.jobs.backoff import Backoff, log_failure, retry_delay
from agentsms.jobs.queue import Job
from agentsms.store.db import Database

Handler = Callable[[Sequence[Job]], Awaitable[None]]
"""Runs a group of claimed jobs of one kind and finishes, retries or fails each of them."""

JobObserver = Callable[[str, float], None]

log = structlog.get_logger("agentsms.worker")

CLAIM_BACKOFF_CAP_SECONDS = 30.0
"""The longest a claim loop waits between tries while the database is unavailable."""

_claim_loop_free: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "agentsms_claim_loop_free", default=None
)


def free_claim_loop() -> None:
    """Let the claim loop running the calling handler claim again before the handler ends.

    For a handler that is only waiting now (sends waiting for their pacing slots, up to a
    pacing horizon ahead): its loop claims the next batch meanwhile, so that the next
    slots are taken before they come rather than once the wait is over. A loop keeps at
    most one such handler running beside the one it waits for, and waits for both before
    it stops (the jobs they hold are released only then). Outside a claim loop (``run_once``,
    tests calling a handler) it does nothing.
    """
    event = _claim_loop_free.get()
    if event is not None:
        event.set()


class Worker:
    """Claims and runs jobs with ``concurrency`` loops in this process."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        handlers: dict[str, Handler],
        *,
        concurrency: int | None = None,
        observe_latency: JobObserver | None = None,
        periodic: Sequence[tuple[float, Callable[[], Awaitable[object]]]] = (),
    ) -> None:
        self.db = db
        self.settings = settings
        self.handlers = handlers
        self.concurrency = concurrency or settings.worker_concurrency
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{ULID()}"
        self._stopping = asyncio.Event()
        self._observe = observe_latency
        self._periodic = list(periodic)

    def stop(self) -> None:
        """Stop claiming; ``run()`` returns once the jobs in hand are done."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Work until stopped."""
        log.info("worker.started", owner=self.owner, concurrency=self.concurrency)
        support = [
            asyncio.create_task(self._heartbeat_loop()),
            asyncio.create_task(self._recovery_loop()),
            *(asyncio.create_task(self._every(s, task)) for s, task in self._periodic),
        ]
        try:
            await asyncio.gather(*(self._claim_loop() for _ in range(self.concurrency)))
        finally:
            for task in support:
                task.cancel()
            await asyncio.gather(*support, return_exceptions=True)
            await self._release_held()
            log.info("worker.stopped", owner=self.owner)

    async def _release_held(self) -> None:
        """What is still leased to this worker goes back to the queue, due now, rather than
        waiting for its lease to run out."""
        try:
            async with self.db.write_statement() as conn:
                released = await queue.release_owned(conn, self.owner)
        except Exception:
            log.exception("worker.release_failed")
            return
        if released:
            log.info("worker.released_jobs", count=released)

    async def run_once(self) -> int:
        """Claim one batch of due jobs and run it; returns how many jobs ran."""
        claimed = await self._claim()
        if claimed:
            await self._run_claimed(claimed)
        return len(claimed)

    async def _claim(self) -> list[Job]:
        # One statement: on PostgreSQL it needs no BEGIN and COMMIT round trips.
        async with self.db.write_statement() as conn:
            return await queue.claim(
                conn,
                owner=self.owner,
                limit=self.settings.worker_claim_batch,
                lease_seconds=self.settings.job_lease_seconds,
                kinds=list(self.handlers),
            )

    async def _claim_loop(self) -> None:
        backoff = Backoff(first=self.settings.worker_poll_interval, cap=CLAIM_BACKOFF_CAP_SECONDS)
        # A claim whose handler freed this loop (``free_claim_loop``) and still runs.
        earlier: asyncio.Task[None] | None = None
        try:
            while not self._stopping.is_set():
                pause = self.settings.worker_poll_interval
                try:
                    claimed = await self._claim()
                    backoff.reset()
                    running = await self._run_until_free(claimed) if claimed else None
                    if running is not None:
                        # Two claims in hand at most: the older one ends before the next.
                        waited, earlier = earlier, running
                        if waited is not None:
                            await waited
                except Exception as error:
                    pause = backoff.next_delay()
                    log_failure("worker.claim_failed", error, retry_in=round(pause, 2))
                    claimed = []
                if not claimed:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=pause)
        finally:
            if earlier is not None:
                try:
                    await earlier
                except Exception as error:
                    log_failure("worker.claim_failed", error)

    async def _run_until_free(self, claimed: Sequence[Job]) -> asyncio.Task[None] | None:
        """Run a claim until it ends (``None``) or its handler frees the loop (the task
        still running it)."""
        free = asyncio.Event()
        token = _claim_loop_free.set(free)
        try:
            running = asyncio.create_task(self._run_claimed(claimed))
        finally:
            _claim_loop_free.reset(token)
        freed = asyncio.create_task(free.wait())
        try:
            await asyncio.wait((running, freed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            freed.cancel()
            if not running.done() and not free.is_set():  # cancelled meanwhile
                running.cancel()
        if running.done():
            running.result()
            return None
        return running

    async def _run_claimed(self, claimed: Sequence[Job]) -> None:
        """Run each kind's group of a claim, side by side: a group waiting (sends for their
        pacing slots, for seconds under a backlog) holds the claim's other kinds back no
        longer than it holds the claim."""
        now = time.time()
        groups: dict[str, list[Job]] = defaultdict(list)
        for job in claimed:
            groups[job.kind].append(job)
            if self._observe is not None:
                self._observe(job.kind, max(0.0, now - job.run_at))
        outcomes = await asyncio.gather(
            *(self._run_group(kind, group) for kind, group in groups.items()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _run_group(self, kind: str, group: Sequence[Job]) -> None:
        try:
            await self.handlers[kind](group)
        except Exception as error:
            log.exception("worker.handler_failed", kind=kind, jobs=len(group))
            await self._retry_or_fail(group, repr(error))

    async def _retry_or_fail(self, group: Sequence[Job], error: str) -> None:
        """A failed handler's jobs: each retried after its backoff, or failed once out of
        attempts, in one statement (a big group is one round trip, not one per job)."""
        now = time.time()
        settled: list[tuple[Job, float | None]] = []
        for job in group:
            if job.attempts >= job.max_attempts:
                settled.append((job, None))
            else:
                delay = retry_delay(
                    job.attempts,
                    base=self.settings.retry_base_seconds,
                    cap=self.settings.retry_max_seconds,
                )
                settled.append((job, now + delay))
        async with self.db.write_statement() as conn:
            await queue.retry_or_fail(conn, settled, error)

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.job_lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.db.write_statement() as conn:
                    await queue.heartbeat(
                        conn, owner=self.owner, lease_seconds=self.settings.job_lease_seconds
                    )
            except Exception as error:
                log_failure("worker.heartbeat_failed", error)

    async def _recovery_loop(self) -> None:
        interval = max(1.0, self.settings.job_lease_seconds / 6)
        while True:
            try:
                async with self.db.write_statement() as conn:
                    recovered = await queue.recover_stalled(conn)
                if recovered:
                    log.warning("worker.recovered_stalled_jobs", count=recovered)
            except Exception as error:
                log_failure("worker.recovery_failed", error)
            await asyncio.sleep(interval)

    async def _every(self, seconds: float, task: Callable[[], Awaitable[object]]) -> None:
        """Housekeeping (e.g. purging expired idempotency keys) every ``seconds``."""
        while True:
            try:
                await task()
            except Exception as error:
                log_failure("worker.periodic_failed", error, task=getattr(task, "__name__", "?"))
            await asyncio.sleep(seconds)
