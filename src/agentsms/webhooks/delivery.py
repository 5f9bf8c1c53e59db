"""Delivering webhook events: one signed POST per attempt, logged, retried on a schedule.

Each ``webhook.deliver`` job is one (event, endpoint) pair. Right before each attempt the
endpoint is read as it is now: a deleted or disabled one gets nothing more (its job is
dropped), and a changed URL or secret applies at once. An attempt writes the stored
event in the endpoint's payload format (``webhooks.formats``) and signs it with the
endpoint's secret(s) in its signing scheme (``webhooks.signing``; by default Standard
Webhooks: ``webhook-id`` is the event id on every attempt, timestamp and signature are
fresh), POSTs it through the SSRF-safe transport
without following redirects, and logs a delivery row. 2xx is success; 410 disables the
endpoint; anything else (3xx included, timeouts, refused addresses) is retried after
``Settings.webhook_retry_schedule`` with jitter (by default the Standard Webhooks
schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), up to
``Settings.webhook_max_attempts``, and never sooner than the ``Retry-After`` of a 429 or
503 answer (at most ``MAX_RETRY_AFTER`` seconds).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from agentsms.config import Settings
from agentsms.jobs import queue
from agentsms.jobs.backoff import retry_after_seconds
from agentsms.jobs.queue import Job
from agentsms.store import purge
from agentsms.store.db import Database
from agentsms.store.repositories import Row
from agentsms.store.repositories import webhooks as repo
from agentsms.store.types import utcnow
from agentsms.version import __version__
from agentsms.webhooks import formats, signing
from agentsms.webhooks.events import cancel_deliveries, delivery_id_new
from agentsms.webhooks.fresh_reads import FreshReads
from agentsms.webhooks.origin_limits import OriginLimits
from agentsms.webhooks.ssrf import SafeTransport, guarded_transport

log = structlog.get_logger("agentsms.webhooks")

MAX_LOGGED_BODY = 1000
CONCURRENCY = 50
"""Attempts at a time, all endpoints together (and the pooled client's connections)."""
PER_ORIGIN = 20
"""Attempts at a time to one origin (scheme, host, port): one slow receiver cannot take
every pooled connection."""
JITTER = 0.2
INLINE_WAIT = 2.0
FRESH_FOR = 0.25
"""Seconds an endpoint read stays good for an attempt: one that starts later (it waited
for its turn) reads its endpoint again."""
MAX_RETRY_AFTER = 3600.0
"""An endpoint's ``Retry-After`` is honoured up to an hour."""
RETRY_AFTER_STATUSES = frozenset({429, 503})
USER_AGENT = f"agentsms-webhooks/{__version__}".encode()


def retry_delay(attempt: int, schedule: Sequence[float]) -> float:
    """Seconds before the attempt after ``attempt`` (1-based): the schedule, +-20 % jitter."""
    if not schedule:
        return 0.0
    base = schedule[min(attempt, len(schedule)) - 1]
    return max(0.0, base * random.uniform(1 - JITTER, 1 + JITTER))


def signing_keys(secret_row: Mapping[str, Any], now: datetime) -> list[str]:
    """The current secret, plus the previous one while its grace period lasts."""
    keys = [str(secret_row["secret"])]
    previous = secret_row["previous_secret"]
    expires = secret_row["previous_secret_expires_at"]
    if previous and expires is not None and expires > now:
        keys.append(str(previous))
    return keys


def encode(payload: Mapping[str, Any]) -> str:
    """The exact body that is signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


@dataclass(frozen=True, slots=True)
class _Plan:
    job: Job
    endpoint_id: str
    event: Row | None
    attempt: int


@dataclass(frozen=True, slots=True)
class _Target:
    """The endpoint as it is right before an attempt, and the keys that sign it."""

    endpoint: Row
    keys: list[str]
    read_at: float
    """``time.monotonic()`` when the read that found it began."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    plan: _Plan
    succeeded: bool
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    gone: bool
    retry_after: float | None = None
    """Seconds the endpoint asked us to wait (``Retry-After`` on 429 / 503), capped."""


class DeliveryHandler:
    """Runs ``webhook.deliver`` jobs. ``transport`` (the SSRF-safe one by default) posts
    the attempts, straight through its pool (``SafeTransport.post``)."""

    def __init__(
        self, db: Database, settings: Settings, transport: SafeTransport | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.transport = transport or guarded_transport(
            settings, total_seconds=settings.webhook_timeout_seconds, max_connections=CONCURRENCY
        )
        self._fresh: FreshReads[str, _Target] = FreshReads(self._targets)
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._origins = OriginLimits(PER_ORIGIN)
        self._background: set[asyncio.Task[None]] = set()
        self._finished: list[tuple[_Plan, _Outcome | None]] = []
        self._flushing = False

    async def handle(self, jobs: Sequence[Job]) -> None:
        """Attempt each job; results within ``INLINE_WAIT`` s are recorded in one transaction.

        Attempts still running then (a slow endpoint) finish in the background, so one slow
        customer endpoint does not hold up the worker's other jobs (sends, receipts) for the
        15 s timeout; those that finish while a record of them is being written go together
        in the next transaction (``_record_later``). Their jobs stay leased (the worker keeps
        heartbeating them); if the process dies, the lease runs out and the job is retried.
        """
        plans = await self._plan(jobs)
        if not plans:
            return
        # The endpoints as they are right now, read once for the whole group; an attempt
        # that has to wait for its turn reads its endpoint again when its turn comes.
        targets = await self._targets([plan.endpoint_id for plan in plans])
        tasks = [
            asyncio.create_task(self._attempt_safely(plan, targets.get(plan.endpoint_id)))
            for plan in plans
        ]
        done, _ = await asyncio.wait(tasks, timeout=INLINE_WAIT)
        await self._record(
            [(p, t.result()) for p, t in zip(plans, tasks, strict=True) if t in done]
        )
        for plan, task in zip(plans, tasks, strict=True):
            if task not in done:
                later = asyncio.create_task(self._record_later(plan, task))
                self._background.add(later)
                later.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.transport.aclose()

    async def idle(self) -> None:
        """Wait until attempts that went on in the background are recorded."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _record_later(self, plan: _Plan, task: asyncio.Task[_Outcome | None]) -> None:
        """Record one background attempt's outcome, batched with those finishing meanwhile.

        One write at a time: an outcome that arrives while a record is being written waits
        for it and goes into the next transaction with every other outcome waiting by then,
        so a slow endpoint's many attempts take a few write turns, not one each (a queue of
        single-row writes would keep the worker's claims from their turn).
        """
        outcome = await task  # before looking up the list: a flush may swap it meanwhile
        self._finished.append((plan, outcome))
        if self._flushing:
            return  # the write under way takes this one next
        self._flushing = True
        try:
            while self._finished:
                batch, self._finished = self._finished, []
                try:
                    await self._record(batch)
                except Exception:
                    # The jobs stay leased; their leases run out and they are retried.
                    log.exception("webhook.record_failed", job_ids=[p.job.id for p, _ in batch])
        finally:
            self._flushing = False

    async def _attempt_safely(self, plan: _Plan, target: _Target | None) -> _Outcome | None:
        try:
            return await self._attempt(plan, target)
        except Exception as error:  # a bug must not leave the job leased forever
            log.exception("webhook.attempt_crashed", job_id=plan.job.id)
            return _Outcome(plan, False, None, repr(error), None, 0, gone=False)

    async def _plan(self, jobs: Sequence[Job]) -> list[_Plan]:
        async with self.db.read() as conn:
            pairs = [(job.payload["event_id"], job.payload["endpoint_id"]) for job in jobs]
            counts = await repo.attempts_so_far(conn, pairs)
            events = await repo.events_by_ids(conn, [event_id for event_id, _ in pairs])
        return [
            _Plan(job, endpoint_id, events.get(event_id), counts[(event_id, endpoint_id)] + 1)
            for job, (event_id, endpoint_id) in zip(jobs, pairs, strict=True)
        ]

    async def _targets(self, endpoint_ids: Sequence[str]) -> dict[str, _Target]:
        """The endpoints as they are now, with their signing keys, in one read; those gone,
        deleted or disabled (or without a secret) are left out."""
        read_at = time.monotonic()
        async with self.db.read() as conn:
            endpoints = await repo.endpoints_by_ids(conn, endpoint_ids)
            live = [
                endpoint
                for endpoint in endpoints.values()
                if endpoint["deleted_at"] is None and endpoint["disabled_at"] is None
            ]
            secrets = await repo.project_secrets_by_ids(
                conn, [str(e["project_id"]) for e in live if e["kind"] == repo.OVERRIDE]
            )
        now = utcnow()
        targets: dict[str, _Target] = {}
        for endpoint in live:
            source = (
                secrets.get(str(endpoint["project_id"]))
                if endpoint["kind"] == repo.OVERRIDE
                else endpoint
            )
            keys = signing_keys(source, now) if source is not None else []
            if keys:
                targets[str(endpoint["id"])] = _Target(endpoint, keys, read_at)
        return targets

    async def _target(self, endpoint_id: str) -> _Target | None:
        """``_targets`` of one endpoint, read after this call (the attempts asking at the same
        time share one read)."""
        return await self._fresh.get(endpoint_id)

    async def _attempt(self, plan: _Plan, target: _Target | None) -> _Outcome | None:
        """One POST to ``target`` (the endpoint as read for the group, None when it is
        gone), once this attempt's turn comes (a global and a per-origin bound)."""
        event = plan.event
        if event is None or target is None:
            return None
        # The origin's slot first, then one of all origins': attempts queued behind a busy
        # origin hold none of the slots the other endpoints' attempts need.
        async with self._origins.hold(str(target.endpoint["url"])), self._limit:
            # Read again after a wait, not only when the job was claimed: deleting or
            # disabling the endpoint stops the attempts still waiting, and a new URL or
            # secret applies. A read begun less than ``FRESH_FOR`` ago stands (in a
            # burst, attempts wait turns of milliseconds: a read each cost as much as
            # their POSTs).
            if time.monotonic() - target.read_at > FRESH_FOR:
                target = await self._target(plan.endpoint_id)
            if target is None:
                return None
            return await self._post(plan, event, target)

    async def _post(self, plan: _Plan, event: Row, target: _Target) -> _Outcome | None:
        """Render, sign and POST ``event`` to ``target``; the outcome to record."""
        endpoint = target.endpoint
        formatted = formats.render(
            endpoint.get("payload_format"), event["payload"], endpoint.get("options")
        )
        if formatted is None:
            return None  # the endpoint's format has no use for this event
        body = encode(formatted)
        sign = signing.scheme(endpoint.get("signing_scheme"))
        timeout = endpoint.get("timeout_seconds")
        stamp = utcnow()
        headers = [
            (b"Content-Type", b"application/json"),
            (b"User-Agent", USER_AGENT),
            (b"Accept", b"*/*"),
            *(
                (name.encode(), value.encode())
                for name, value in sign(str(event["id"]), stamp, body, target.keys).items()
            ),
        ]
        started = time.monotonic()
        try:
            answer = await self.transport.post(
                str(endpoint["url"]),
                headers,
                body.encode(),
                timeout=None if timeout is None else float(timeout),
                keep=MAX_LOGGED_BODY * 4,
            )
        except httpx.HTTPError as error:
            return _Outcome(plan, False, None, _describe(error), None, _ms(started), gone=False)
        code = answer.status
        location = answer.header(b"location") or ""
        wait = answer.header(b"retry-after")
        text = answer.body.decode("utf-8", errors="replace")[:MAX_LOGGED_BODY] or None
        if 200 <= code < 300:
            return _Outcome(plan, True, code, None, text, _ms(started), gone=False)
        retry_after = None
        if 300 <= code < 400:
            reason = f"redirects are not followed ({code} to {location or 'nowhere'})"
        elif code == 410:
            reason = "410 Gone: the endpoint is disabled"
        else:
            reason = f"answered {code}"
            if code in RETRY_AFTER_STATUSES:
                retry_after = retry_after_seconds(wait, cap=MAX_RETRY_AFTER)
        return _Outcome(
            plan, False, code, reason, text, _ms(started), gone=code == 410, retry_after=retry_after
        )

    async def _record(self, results: Sequence[tuple[_Plan, _Outcome | None]]) -> None:
        if not results:
            return
        now = utcnow()
        rows: list[dict[str, Any]] = []
        async with self.db.write() as conn:
            done: list[Job] = []
            for plan, outcome in results:
                if outcome is None:
                    # Endpoint deleted or disabled, or event gone: nothing to deliver.
                    done.append(plan.job)
                    continue
                assert plan.event is not None
                retry_at: datetime | None = None
                if outcome.gone:
                    await repo.update_endpoint(
                        conn,
                        plan.endpoint_id,
                        {
                            "disabled_at": now,
                            "disabled_reason": "the endpoint answered 410 Gone",
                            "updated_at": now,
                        },
                    )
                    await cancel_deliveries(conn, plan.endpoint_id)
                elif (
                    not outcome.succeeded
                    and not plan.job.payload.get("resend")
                    and plan.attempt < self.settings.webhook_max_attempts
                ):
                    delay = retry_delay(plan.attempt, self.settings.webhook_retry_schedule)
                    delay = max(delay, outcome.retry_after or 0.0)
                    retry_at = now + timedelta(seconds=delay)
                rows.append(
                    {
                        "id": delivery_id_new(),
                        "project_id": plan.event["project_id"],
                        "endpoint_id": plan.endpoint_id,
                        "event_id": plan.event["id"],
                        "event_type": plan.event["type"],
                        "attempt": plan.attempt,
                        "status": "succeeded" if outcome.succeeded else "failed",
                        "status_code": outcome.status_code,
                        "error": outcome.error,
                        "response_body": outcome.response_body,
                        "duration_ms": outcome.duration_ms,
                        "next_retry_at": retry_at,
                        "created_at": now,
                    }
                )
                if retry_at is not None:
                    await queue.retry(
                        conn, plan.job, run_at=retry_at.timestamp(), error=outcome.error
                    )
                else:
                    done.append(plan.job)
                    if not outcome.succeeded:
                        log.warning(
                            "webhook.gave_up",
                            endpoint_id=plan.endpoint_id,
                            event_id=plan.event["id"],
                            attempts=plan.attempt,
                            error=outcome.error,
                        )
            await repo.insert_deliveries(conn, rows)
            await queue.finish(conn, done)


async def purge_old(db: Database, settings: Settings) -> None:
    """Forget events and delivery logs older than ``Settings.webhook_retention_days``."""
    before = utcnow() - timedelta(days=settings.webhook_retention_days)
    await purge.in_chunks(db, lambda conn, limit: repo.purge_deliveries_before(conn, before, limit))
    await purge.in_chunks(db, lambda conn, limit: repo.purge_events_before(conn, before, limit))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _describe(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
