"""The worker loop: claim due jobs in batches, run their handlers, heartbeat, recover.

SIGTERM (or ``Worker.stop()``) stops claiming; jobs already claimed are finished, every
job the worker still holds then (of any kind: a webhook attempt still waiting on a slow
endpoint) is released, due at once, and ``run()`` returns. A worker killed outright loses
nothing: its leases run out and any other worker's recovery pass puts its jobs back in
the queue.
"""

from __future__ import annotations

import asyncio
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
        # One statement: on PostgreSQL it needs no BEGIN and COMMIT round trips.
        async with self.db.write_statement() as conn:
            claimed = await queue.claim(
                conn,
                owner=self.owner,
                limit=self.settings.worker_claim_batch,
                lease_seconds=self.settings.job_lease_seconds,
                kinds=list(self.handlers),
            )
        if claimed:
            await self._run_claimed(claimed)
        return len(claimed)

    async def _claim_loop(self) -> None:
        backoff = Backoff(first=self.settings.worker_poll_interval, cap=CLAIM_BACKOFF_CAP_SECONDS)
        while not self._stopping.is_set():
            pause = self.settings.worker_poll_interval
            try:
                ran = await self.run_once()
                backoff.reset()
            except Exception as error:
                pause = backoff.next_delay()
                log_failure("worker.claim_failed", error, retry_in=round(pause, 2))
                ran = 0
            if ran == 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=pause)

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
