"""Sending queued messages: pacing, the provider call, retries and crash recovery.

A claimed batch of ``message.send`` jobs goes through three short transactions, two
before the provider call and one after. The first reads the messages and reserves pacing
slots; the second renews the claims' leases (the fence below) and marks the messages
``sending`` and *in flight*; the third records the provider's answers and finishes the
jobs. (A send no pacing window had room for once its slot passed waits for the room the
windows soon get back; if none comes back soon it, like a claim held past its known
lease, costs one more before the call: a new slot, a renewed lease.) A worker
that dies after the second leaves the message in flight: whoever next claims the job asks
the provider by the message's reference before sending again (``uncertain_send_policy``
decides what happens when the provider cannot say).

A send is handed to the provider at most once per claim, and only by a claim that holds
its job: the transaction marking messages in flight first renews the claims' leases by
their lease tokens (``jobs.queue.renew``) and drops the jobs it no longer holds, and right
before the call a claim held longer than its known lease (its worker paused past it, or
waited long for its slot) is renewed again, its send dropped unsent if the job was taken.
The adapter itself still awaits before its carrier receives anything (a pooled
connection, an SMPP window slot), so the call runs under a deadline that the adapter
checks at the moment the bytes would leave (``providers.handoff``): a send refused there
reached nobody, and goes back to the renewal.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import metrics
from agentsms.config import Settings
from agentsms.core import compliance, conversations, spend, statuses, zones
from agentsms.core.clock import from_epoch
from agentsms.core.messages import record_events
from agentsms.core.pacing import Ledger
from agentsms.core.sending import SEND_JOB
from agentsms.jobs import queue
from agentsms.jobs.backoff import retry_delay
from agentsms.jobs.queue import Job
from agentsms.jobs.worker import free_claim_loop
from agentsms.providers.base import (
    Channel,
    Provider,
    SendError,
    SendOutcome,
    SendRequest,
    SendResult,
)
from agentsms.providers.handoff import handoff_deadline, is_lapsed, lapsed
from agentsms.providers.registry import ProviderRegistry
from agentsms.store.db import Database
from agentsms.store.records import DispatchMessage
from agentsms.store.repositories import conversations as conversations_repo
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.repositories import numbers as numbers_repo
from agentsms.store.repositories import optouts as optouts_repo
from agentsms.store.repositories import pacing as pacing_repo
from agentsms.store.repositories import projects as projects_repo

log = structlog.get_logger("agentsms.dispatch")
Row = Mapping[str, Any]
# Sends whose slots are this close go together, at the latest of them, in one provider
# call (for the simulator, one transaction): at 500/s about six a call, and the earliest
# still within the slack of its slot when the call is on time.
_SLOT_GROUP_SECONDS = 0.012
# A number's slots are (1 + _PACING_SLACK) / rate apart, and a send leaves no more than
# _PACING_SLACK seconds after its slot, so every one-second window, sliding or calendar,
# holds at most ``rate`` sends of the number whatever the workers, processes and delays:
# the sends in [t, t + 1) have slots in [t - slack, t + 1), and slots that far apart number
# ``rate``. A send that wakes up later (a busy event loop or CPU) goes if the windows of
# its process's own slots still hold it (``core.pacing``), else it takes a fresh slot.
# Costs 2 % of the nominal throughput.
_PACING_SLACK = 0.02
# What the check before the provider call keeps for the call itself to start.
_CALL_MARGIN = 0.002
# A send goes only while its claim surely holds the job this share of the lease longer (by
# the worker's clock: room for the call to start and for other hosts' clocks to differ).
_LEASE_MARGIN = 0.2
# Renew-and-send rounds for sends the handoff fence refused (``providers.handoff``).
_HANDOFF_ROUNDS = 3
# Above this rate a late send keeps its slot ("pacing off"): only a pool sending more than
# that from one number could put a window over it, and fresh slots would cost a transaction
# per late claim.
_STRICT_MAX_MPS = 10_000.0
# A fresh run of slots starts this far ahead (at most one interval), so that committing the
# claim does not make its first send late.
_SLOT_LEAD_SECONDS = 0.05

# A send refused past its slot waits for its windows' room to come back (a send made off
# its slot a second before stops counting) when that is at most this long after its slot;
# beyond, it takes a fresh slot at the end of its number's schedule. Its own slot is then
# lost: no send goes with it, the number's second falls short by one.
_LATE_WAIT_SECONDS = 0.25
# A claim whose sends wait longer than this for their slots frees its claim loop.
_FREE_LOOP_WAIT_SECONDS = 0.1


@dataclass(slots=True)
class _Work:
    job: Job
    message: DispatchMessage
    number: Row | None
    slot: float
    uncertain: bool
    # When it was handed to the carrier: its ``sent_at`` (the batch is recorded later).
    handed_at: float | None = None


class Dispatcher:
    """The ``message.send`` job handler."""

    def __init__(self, db: Database, providers: ProviderRegistry, settings: Settings) -> None:
        self.db = db
        self.providers = providers
        self.settings = settings
        # Late sends waiting for new slots, and whether a task is taking them (_catch_up).
        self._late: list[tuple[Sequence[_Work], asyncio.Future[None]]] = []
        self._catching_up = False
        # Per paced number: the slots this process holds and the sends it made with them.
        self._ledgers: dict[str, Ledger] = {}

    async def handle(self, jobs: Sequence[Job]) -> None:
        work = await self._prepare(jobs)
        if not work:
            return
        if (
            not self.db.is_sqlite
            and max(item.slot for item in work) > time.time() + _FREE_LOOP_WAIT_SECONDS
        ):
            # The rest is mostly waiting for slots: the next claim takes the next slots
            # meanwhile, before they come (not once these are sent, when they have). Not on
            # SQLite: its claims take the one write lock the sends' own transactions wait for.
            free_claim_loop()
        # Each group of slots has its own task, so a slow provider call or a late wake-up
        # never holds the next slot back (nor bunches it up with the next ones).
        sends = [asyncio.create_task(self._send_paced(group)) for group in _slot_groups(work)]
        results = await asyncio.gather(*sends, return_exceptions=True)
        outcomes: list[tuple[_Work, SendOutcome]] = []
        errors: list[BaseException] = []
        for result in results:
            if isinstance(result, BaseException):
                errors.append(result)
            else:
                outcomes.extend(result)
        await self._record(outcomes)
        if errors:
            raise errors[0]

    async def _send_paced(self, group: list[_Work]) -> list[tuple[_Work, SendOutcome]]:
        """Send a group at its slots: never before one unless its process's windows have
        room for it (``core.pacing``), and late only while they do."""
        outcomes: list[tuple[_Work, SendOutcome]] = []
        waiting = sorted(group, key=lambda w: w.slot)
        # Refused past their slots, tried again at ``retry_at``.
        retry: list[_Work] = []
        retry_at = 0.0
        while waiting or retry:
            if retry and not (waiting and waiting[0].slot < retry_at):
                due, retry = retry, []
                while (delay := retry_at - time.time()) > 0:
                    await asyncio.sleep(delay)
            else:
                due, waiting = _due(waiting, time.time())
                # The latest slot of them: a message may leave a little late, never early.
                while (delay := due[-1].slot - time.time()) > 0:
                    await asyncio.sleep(delay)
            refused = await self._send(due, outcomes)
            now = time.time()
            late = [item for item in refused if item.slot <= now]
            if early := [item for item in refused if item.slot > now]:
                waiting = sorted([*waiting, *early], key=lambda w: w.slot)
            if not late:
                continue
            held, fresh, opens = self._await_room(late, now)
            if held:
                retry_at = min(retry_at, opens) if retry else opens
                retry += held
            if fresh:
                # Fresh slots: tried at once, the windows may already have room for them.
                retry += await self._catch_up(fresh)
                retry_at = 0.0
        return outcomes

    def _await_room(
        self, late: Sequence[_Work], now: float
    ) -> tuple[list[_Work], list[_Work], float]:
        """Of sends refused past their slots: those that keep their slots and wait for the
        room their windows soon get back (``Ledger.opening``), when to try them again, and
        those that need fresh slots (no room back within ``_LATE_WAIT_SECONDS`` of their
        slots)."""
        held: list[_Work] = []
        fresh: list[_Work] = []
        at = math.inf
        for item in late:
            ledger = self._ledgers.get(item.number["id"]) if item.number else None
            opens = ledger.opening(now) if ledger is not None else None
            if opens is not None and opens - item.slot <= _LATE_WAIT_SECONDS:
                held.append(item)
                at = min(at, opens)
            else:
                fresh.append(item)
        return held, fresh, at

    async def _catch_up(self, late: Sequence[_Work]) -> list[_Work]:
        """Sends no window had room for once their slot passed: each takes a fresh slot
        at the end of its number's schedule.

        Late sends of every group waiting meanwhile share one transaction (a busy event
        loop makes many groups late at once; one transaction each made it busier still).
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._late.append((late, waiter))
        if not self._catching_up:
            self._catching_up = True
            try:
                while self._late:
                    await self._catch_up_pending()
            except BaseException as error:
                for _, other in self._late:
                    _fail(other, error)
                self._late = []
                if waiter.done() and not waiter.cancelled():
                    waiter.exception()  # the leader raises it itself
                raise
            finally:
                self._catching_up = False
        await waiter
        return sorted(late, key=lambda w: w.slot)

    async def _catch_up_pending(self) -> None:
        """Slots for every late send waiting now, in one transaction."""
        batch: list[tuple[Sequence[_Work], asyncio.Future[None]]] = []
        try:
            async with self.db.write() as conn:
                # Taken once the write turn is ours: the sends that got late meanwhile too.
                batch, self._late = self._late, []
                held = await self._reslot(conn, [item for items, _ in batch for item in items])
            # Only once committed are the slots this process's.
            for number, slots in held:
                self._hold(number, slots)
        except BaseException as error:
            for _, waiter in batch:
                _fail(waiter, error)
            raise
        for _, waiter in batch:
            if not waiter.done():
                waiter.set_result(None)

    async def _reslot(
        self, conn: AsyncConnection, late: Sequence[_Work]
    ) -> list[tuple[Row, list[float]]]:
        """Fresh slots at the end of their numbers' schedules for sends no window had
        room for; returns the slots taken per number."""
        by_number: dict[str, list[_Work]] = defaultdict(list)
        for item in late:
            by_number[item.number["id"] if item.number else ""].append(item)
        held: list[tuple[Row, list[float]]] = []
        for number_id, items in sorted(by_number.items()):
            number = items[0].number
            assert number is not None  # only paced sends are ever late
            items.sort(key=lambda w: w.slot)
            slots = await pacing_repo.reserve_slots(
                conn,
                number_id,
                wanted=len(items),
                rate=1.0 / _interval(number),
                now=time.time() + min(_SLOT_LEAD_SECONDS, _interval(number)),
                horizon=math.inf,
            )
            for item, slot in zip(items, slots, strict=True):
                item.slot = slot
            held.append((number, slots))
        log.info("dispatch.pacing_late", reslotted=len(late))
        return held

    def _hold(self, number: Row, slots: Sequence[float]) -> None:
        """Count ``slots`` of ``number`` as this process's (taken from its schedule)."""
        if not slots or not _strict(number):
            return
        ledger = self._ledgers.get(number["id"])
        if ledger is None:
            now = time.time()
            for number_id in [k for k, v in self._ledgers.items() if v.idle(now)]:
                del self._ledgers[number_id]
            ledger = self._ledgers[number["id"]] = Ledger(_PACING_SLACK)
        ledger.hold(slots)

    def _pace(
        self, to_send: list[tuple[_Work, SendRequest]], now: float, refused: list[_Work]
    ) -> list[tuple[_Work, SendRequest]]:
        """The sends that may go at ``now`` by their numbers' pacing; the others are added
        to ``refused``. Each one let through is counted as sent at ``now``: nothing may
        yield between this and the provider call. One goes on its own slot when the call
        starts before the slack after it runs out (``_CALL_MARGIN``)."""
        going: list[tuple[_Work, SendRequest]] = []
        by_number: dict[str, list[tuple[_Work, SendRequest]]] = defaultdict(list)
        for pair in to_send:
            number = pair[0].number
            if number is None or not _strict(number):
                going.append(pair)
            else:
                by_number[number["id"]].append(pair)
        for number_id, pairs in by_number.items():
            ledger = self._ledgers.get(number_id)
            if ledger is None:  # dropped, every slot of it long past: a fresh one then
                refused.extend(item for item, _ in pairs)
                continue
            pairs.sort(key=lambda pair: pair[0].slot)
            on_time = [
                item.slot <= now and now + _CALL_MARGIN <= item.slot + _PACING_SLACK
                for item, _ in pairs
            ]
            if all(on_time) and ledger.regular(now):
                count = len(pairs)
            else:
                count = min(len(pairs), ledger.room(now))
            ledger.sent(now, count, irregular=not all(on_time[:count]))
            going.extend(pairs[:count])
            refused.extend(item for item, _ in pairs[count:])
        return going

    async def _prepare(self, jobs: Sequence[Job]) -> list[_Work]:
        """Read the jobs' messages, take pacing slots, then mark the slotted ones sending.

        Slots are taken in a transaction apart from the marking, so the pacing row of a busy
        number is locked for a few statements, not for the whole preparation: on PostgreSQL
        that is what lets several workers prepare at once. A worker that dies in between
        only wastes slots.
        """
        now = time.time()
        now_dt = from_epoch(now)
        finished: list[Job] = []
        expired: list[tuple[Job, DispatchMessage]] = []
        refused: list[tuple[Job, DispatchMessage]] = []
        deferred: list[tuple[Job, float]] = []
        work: list[_Work] = []
        later: list[tuple[str, list[Job], float, float]] = []
        reserved: list[tuple[Row, list[float]]] = []
        # The reads share the slots' transaction (one round of BEGIN/COMMIT less); the pacing
        # rows are locked only from reserve_slots on, as before.
        async with self.db.write() as conn:
            found = await messages_repo.dispatch_rows(conn, [j.ref for j in jobs if j.ref])
            numbers = await numbers_repo.numbers_by_ids(
                conn, [m.number_id for m in found.values() if m.number_id]
            )
            # Nobody is texted after opting out, whenever the message was queued; only the
            # compliance answers (the opt-out confirmation itself) still go.
            opted_out = await optouts_repo.opted_out_pairs(
                conn,
                [
                    (m.project_id, m.to_number)
                    for m in found.values()
                    if m.purpose != compliance.COMPLIANCE and not m.in_flight
                ],
            )
            quiet = await _QuietHours.read(conn, found.values(), numbers)
            candidates: dict[str, list[tuple[Job, DispatchMessage]]] = defaultdict(list)
            for job in jobs:
                message = found.get(job.ref or "")
                if message is None or message.status not in (*statuses.PENDING, "sending"):
                    finished.append(job)
                elif message.expires_at is not None and message.expires_at <= now_dt:
                    expired.append((job, message))
                elif (
                    (message.project_id, message.to_number) in opted_out
                    and not message.in_flight
                    and message.purpose != compliance.COMPLIANCE
                ):
                    refused.append((job, message))
                elif not message.in_flight and (until := quiet.until(message, now_dt)) is not None:
                    if message.expires_at is not None and message.expires_at <= until:
                        expired.append((job, message))  # its validity ends before they do
                    else:
                        deferred.append((job, until.timestamp()))
                else:
                    candidates[message.number_id or ""].append((job, message))
            # Pacing rows locked in one order by every worker (PostgreSQL): no deadlock.
            for number_id, items in sorted(candidates.items()):
                number = numbers.get(number_id)
                slots = await self._slots(
                    conn, number, len(items), horizon=self.settings.pacing_horizon_seconds
                )
                for (job, message), slot in zip(items, slots, strict=False):
                    work.append(_Work(job, message, number, slot, bool(message.in_flight)))
                if number is not None:
                    reserved.append((number, slots))
                if len(slots) < len(items):
                    # No slot within the horizon: back to the queue, each due half a horizon
                    # before its estimated slot, so that a claim holds the following slots
                    # before they come (no gap, no drift in the number's schedule) and a
                    # long backlog is not claimed and released again every second.
                    next_slot = await pacing_repo.next_free_slot(conn, number_id) or now
                    run_at = max(now, next_slot - self.settings.pacing_horizon_seconds / 2)
                    extra = [job for job, _ in items[len(slots) :]]
                    later.append((number_id, extra, run_at, _interval(number)))
        # Only once committed are the slots this process's.
        for number, slots in reserved:
            self._hold(number, slots)
        async with self.db.write() as conn:
            # The fence: only the claims that still hold their jobs go on. One that stalled
            # past its lease (its jobs recovered, maybe claimed again) drops them here.
            renewal = await queue.renew(conn, jobs, lease_seconds=self.settings.job_lease_seconds)
            if lost := renewal.lost():
                log.warning("dispatch.lease_lost", jobs=len(lost))
                held = renewal.held
                finished = [job for job in finished if job.id in held]
                expired = [(job, m) for job, m in expired if job.id in held]
                refused = [(job, m) for job, m in refused if job.id in held]
                deferred = [(job, at) for job, at in deferred if job.id in held]
                work = [w for w in work if w.job.id in held]
                later = [
                    (number_id, [job for job in claims if job.id in held], run_at, spacing)
                    for number_id, claims, run_at, spacing in later
                ]
            for number_id, claims, run_at, spacing in later:
                # The rest of its due backlog queues up behind these, instead of being
                # claimed and released again ahead of other numbers' work.
                await pacing_repo.defer_backlog(
                    conn,
                    number_id,
                    kind=SEND_JOB,
                    due_by=now,
                    run_at=run_at + len(claims) * spacing,
                    spacing=spacing,
                )
                await queue.release_many(conn, claims, run_at=run_at, spacing=spacing)
            await queue.finish(conn, finished)
            await self._expire(conn, expired, now_dt)
            for job, message in refused:
                await _mark_failed(
                    conn,
                    message,
                    SendError(
                        code=compliance.RECIPIENT_OPTED_OUT,
                        message="the recipient opted out before this message was sent",
                        retryable=False,
                    ),
                    now_dt,
                    attempts=job.attempts,
                )
            await queue.finish(conn, [job for job, _ in refused])
            for job, run_at in deferred:
                # Quiet hours began while it waited: it goes when they end, never dropped.
                await queue.release_many(conn, [job], run_at=run_at)
            work, capped = await _charge_scheduled(conn, work, now_dt)
            for item, refusal in capped:
                error = SendError(code=spend.CODE, message=refusal.detail, retryable=False)
                await _mark_failed(conn, item.message, error, now_dt, attempts=item.job.attempts)
            await queue.finish(conn, [item.job for item, _ in capped])
            fresh = [w.message.id for w in work if not w.uncertain]
            if fresh:
                # Guarded: a message canceled since it was read is not sent.
                moved = set(
                    await messages_repo.set_status_where(
                        conn,
                        fresh,
                        from_statuses=(*statuses.PENDING, statuses.SENDING),
                        values={
                            "status": statuses.SENDING,
                            "in_flight": True,
                            "updated_at": now_dt,
                        },
                    )
                )
                dropped = [w.job for w in work if not w.uncertain and w.message.id not in moved]
                await queue.finish(conn, dropped)
                work = [w for w in work if w.uncertain or w.message.id in moved]
                await record_events(
                    conn,
                    [
                        (w.message, statuses.SENDING, {})
                        for w in work
                        if not w.uncertain and w.message.status != statuses.SENDING
                    ],
                    now_dt,
                )
        renewal.apply()
        return work

    async def _slots(
        self, conn: AsyncConnection, number: Row | None, wanted: int, *, horizon: float
    ) -> list[float]:
        if number is None:
            return [time.time()] * wanted
        interval = _interval(number)
        # Measured here, inside the transaction: waiting for the write lock must not age it.
        start = time.time() + min(_SLOT_LEAD_SECONDS, interval)
        return await pacing_repo.reserve_slots(
            conn, number["id"], wanted=wanted, rate=1.0 / interval, now=start, horizon=horizon
        )

    async def _expire(
        self, conn: AsyncConnection, expired: Sequence[tuple[Job, DispatchMessage]], now: Any
    ) -> None:
        if not expired:
            return
        changed = set(
            await messages_repo.set_status_where(
                conn,
                [m.id for _, m in expired],
                from_statuses=(*statuses.PENDING, statuses.SENDING),
                values={
                    "status": statuses.EXPIRED,
                    "in_flight": False,
                    "error_code": "expired",
                    "error_message": "validity period ended before the message could be sent",
                    "updated_at": now,
                },
            )
        )
        await record_events(
            conn, [(m, statuses.EXPIRED, {}) for _, m in expired if m.id in changed], now
        )
        await queue.finish(conn, [job for job, _ in expired])

    async def _send(
        self, group: Sequence[_Work], results: list[tuple[_Work, SendOutcome]]
    ) -> list[_Work]:
        """Send ``group``, adding each outcome to ``results``; returns the sends that are
        refused by their numbers' pacing (not sent: they wait for their slot, or take a
        fresh one)."""
        by_provider: dict[tuple[str, str | None], list[_Work]] = defaultdict(list)
        for item in group:
            account_id = (item.number or {}).get("provider_account_id")
            by_provider[(item.message.provider, account_id)].append(item)
        late: list[_Work] = []
        for (name, account_id), items in by_provider.items():
            try:
                # A number with a provider account sends through that account's adapter.
                provider = await self.providers.resolve(name, account_id)
            except LookupError as error:
                results.extend(
                    (w, SendError(code="no_provider", message=str(error), retryable=False))
                    for w in items
                )
                continue
            except Exception as error:
                log.exception("dispatch.provider_unavailable", provider=name)
                results.extend(
                    (w, SendError(code="provider_error", message=repr(error), retryable=True))
                    for w in items
                )
                continue
            requests = [_request(w) for w in items]
            to_send: list[tuple[_Work, SendRequest]] = []
            for item, request in zip(items, requests, strict=True):
                if item.uncertain:
                    resolved = await self._resolve_uncertain(provider, request)
                    if resolved is not None:
                        results.append((item, resolved))
                        continue
                to_send.append((item, request))
            await self._hand_over(name, provider, to_send, results, late)
        return late

    async def _hand_over(
        self,
        name: str,
        provider: Provider,
        to_send: list[tuple[_Work, SendRequest]],
        results: list[tuple[_Work, SendOutcome]],
        late: list[_Work],
    ) -> None:
        """Hand ``to_send`` to ``provider`` while their claims surely hold their jobs: the
        adapter refuses, at the moment its carrier would receive a send, those whose
        deadline passed meanwhile (``providers.handoff``); they are checked again (a
        renewal) and sent only if still held."""
        margin = self.settings.job_lease_seconds * _LEASE_MARGIN
        for _ in range(_HANDOFF_ROUNDS):
            to_send = await self._still_held(to_send)
            # Checked right before the call, after any awaits: nothing yields in between
            # (neither after the lease check in ``_still_held``).
            to_send = self._pace(to_send, time.time(), late)
            if not to_send:
                return
            handed_at = time.time()
            for item, _ in to_send:
                item.handed_at = handed_at
            deadline = min(item.job.lease.until for item, _ in to_send) - margin
            started = time.perf_counter()
            try:
                with handoff_deadline(deadline):
                    outcomes = await provider.send_many([r for _, r in to_send])
            except Exception as error:
                log.exception("dispatch.provider_error", provider=name)
                outcomes = [
                    SendError(code="provider_error", message=repr(error), retryable=True)
                ] * len(to_send)
            metrics.provider_latency.labels(provider=name).observe(time.perf_counter() - started)
            again: list[tuple[_Work, SendRequest]] = []
            for (item, request), outcome in zip(to_send, outcomes, strict=True):
                if is_lapsed(outcome):
                    again.append((item, request))
                else:
                    results.append((item, outcome))
            if again:
                log.warning("dispatch.handoff_lapsed", sends=len(again), provider=name)
            to_send = again
        # Still lapsing after a renewal each time: the carrier is too slow to take them
        # within a lease; they are retried later like any retryable refusal.
        results.extend((item, lapsed()) for item, _ in to_send)

    async def _still_held(
        self, to_send: list[tuple[_Work, SendRequest]]
    ) -> list[tuple[_Work, SendRequest]]:
        """The sends whose claims surely still hold their jobs. A claim the worker cannot
        be sure of (held longer than its known lease: a pause, a long wait for its slot) is
        renewed first, and its send dropped, unsent, if its job was taken from it."""
        margin = self.settings.job_lease_seconds * _LEASE_MARGIN
        while lapsed := [item.job for item, _ in to_send if not item.job.lease.holds(margin)]:
            async with self.db.write() as conn:
                renewal = await queue.renew(
                    conn, lapsed, lease_seconds=self.settings.job_lease_seconds
                )
            renewal.apply()
            if lost := {job.id for job in renewal.lost()}:
                log.warning("dispatch.lease_lost", jobs=len(lost))
                to_send = [(item, request) for item, request in to_send if item.job.id not in lost]
        return to_send

    async def _resolve_uncertain(
        self, provider: Provider, request: SendRequest
    ) -> SendOutcome | None:
        """For a message that was in flight when its worker died: did the carrier get it?"""
        found = await provider.lookup(request)
        if found is not None and found.found and found.result is not None:
            log.info("dispatch.recovered_in_flight", message_id=request.reference, outcome="found")
            return found.result
        if found is None and self.settings.uncertain_send_policy == "fail":
            return SendError(
                code="uncertain_send",
                message="worker stopped mid-send and the provider cannot be asked; not re-sent",
                retryable=False,
            )
        log.info("dispatch.recovered_in_flight", message_id=request.reference, outcome="resend")
        return None

    async def _record(self, outcomes: Sequence[tuple[_Work, SendOutcome]]) -> None:
        """Transaction 3: the provider's answers, the status changes and the jobs' fate."""
        now = time.time()
        now_dt = from_epoch(now)
        sent_rows: list[tuple[str, str, Any, int, datetime]] = []
        sent_events: list[tuple[DispatchMessage, str, Mapping[str, Any]]] = []
        failed: list[tuple[_Work, SendError]] = []
        retries: list[tuple[_Work, SendError]] = []
        done_jobs: list[Job] = []
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for item, outcome in outcomes:
            name = item.message.provider
            if isinstance(outcome, SendResult):
                counts[(name, "accepted")] += 1
                sent_rows.append(
                    (
                        item.message.id,
                        outcome.provider_message_id,
                        outcome.price,
                        item.job.attempts,
                        from_epoch(item.handed_at or now),
                    )
                )
                sent_events.append((item.message, statuses.SENT, {}))
                done_jobs.append(item.job)
            elif outcome.retryable and item.job.attempts < item.job.max_attempts:
                counts[(name, "retry")] += 1
                retries.append((item, outcome))
            else:
                counts[(name, "failed")] += 1
                failed.append((item, outcome))
                done_jobs.append(item.job)
        for (name, kind), count in counts.items():
            metrics.provider_outcomes.labels(provider=name, outcome=kind).inc(count)
        async with self.db.write() as conn:
            if sent_rows:
                advanced = await messages_repo.mark_sent(
                    conn, sent_rows, now=now_dt, advance_from=statuses.before(statuses.SENT)
                )
                # A receipt that beat this record has already told of the send.
                await record_events(
                    conn, [event for event in sent_events if event[0].id in advanced], now_dt
                )
            for item, error in failed:
                await _mark_failed(conn, item.message, error, now_dt, attempts=item.job.attempts)
            for item, error in retries:
                await self._retry(conn, item, error, now)
            await queue.finish(conn, done_jobs)

    async def _retry(
        self, conn: AsyncConnection, item: _Work, error: SendError, now: float
    ) -> None:
        delay = retry_delay(
            item.job.attempts,
            base=self.settings.retry_base_seconds,
            cap=self.settings.retry_max_seconds,
            retry_after=error.retry_after,
        )
        expires = item.message.expires_at
        if expires is not None and expires.timestamp() <= now + delay:
            await _mark_failed(
                conn,
                item.message,
                error,
                from_epoch(now),
                attempts=item.job.attempts,
                status=statuses.EXPIRED,
            )
            await queue.finish(conn, [item.job])
            return
        await messages_repo.update_each(
            conn,
            [
                {
                    "b_id": item.message.id,
                    "in_flight": False,
                    "error_code": error.code,
                    "error_message": error.message,
                    "attempts": item.job.attempts,
                    "updated_at": from_epoch(now),
                }
            ],
            from_statuses=(statuses.SENDING,),
        )
        await queue.retry(
            conn, item.job, run_at=now + delay, error=f"{error.code}: {error.message}"
        )


async def _charge_scheduled(
    conn: AsyncConnection, work: list[_Work], now: datetime
) -> tuple[list[_Work], list[tuple[_Work, spend.SpendCapReached]]]:
    """Charge the daily caps with the messages that waited for a later time and go now
    (the others were charged at intake): the work that may go, and the refused sends."""
    by_project: dict[str, list[_Work]] = defaultdict(list)
    for item in work:
        if not item.uncertain and item.message.status == statuses.SCHEDULED:
            by_project[item.message.project_id].append(item)
    refused: list[tuple[_Work, spend.SpendCapReached]] = []
    # Usage rows locked in one order by every worker (PostgreSQL): no deadlock.
    for project_id, items in sorted(by_project.items()):
        project = await projects_repo.get_project(conn, project_id)
        settings = dict(project["settings"] or {}) if project is not None else {}
        if spend.caps_of(settings) is None:
            continue
        found = await messages_repo.messages_by_ids(conn, [w.message.id for w in items])
        rows = [found[w.message.id] for w in items]
        outcomes = await spend.charge(conn, project_id, settings, rows, now, all_or_nothing=False)
        refused += [(w, r) for w, r in zip(items, outcomes, strict=True) if r is not None]
    if not refused:
        return work, refused
    dropped = {id(w) for w, _ in refused}
    return [w for w in work if id(w) not in dropped], refused


async def _mark_failed(
    conn: AsyncConnection,
    message: DispatchMessage,
    error: SendError,
    now: Any,
    *,
    attempts: int,
    status: str = statuses.FAILED,
) -> None:
    changed = await messages_repo.set_status_where(
        conn,
        [message.id],
        from_statuses=(*statuses.PENDING, statuses.SENDING),
        values={
            "status": status,
            "in_flight": False,
            "error_code": error.code,
            "error_message": error.message,
            "attempts": attempts,
            "updated_at": now,
        },
    )
    if changed:
        await record_events(
            conn,
            [(message, status, {"error_code": error.code, "error_message": error.message})],
            now,
        )


def _fail(waiter: asyncio.Future[None], error: BaseException) -> None:
    """Tell a task waiting on ``waiter`` that the work it waited for failed with ``error``."""
    if waiter.done():
        return
    if isinstance(error, asyncio.CancelledError):
        waiter.cancel()
    else:
        waiter.set_exception(error)


def _request(item: _Work) -> SendRequest:
    message = item.message
    media = message.media_urls
    return SendRequest(
        reference=message.id,
        from_number=message.from_number,
        to_number=message.to_number,
        body=message.body,
        channel=cast(Channel, message.channel),
        media_urls=tuple(media) if media else (),
        number_settings=(item.number["settings"] or {}) if item.number else {},
    )


class _QuietHours:
    """Quiet hours of the claimed messages' projects; read only for projects that use them
    as a default (a send's own quiet hours were applied when it was accepted), with what is
    known of each person's time zone (their contact's, their conversation's)."""

    def __init__(
        self,
        projects: Mapping[str, Any],
        numbers: Mapping[str, Row],
        conversations_settings: Mapping[str, Any],
        conversations_metadata: Mapping[str, Any],
        contact_zones: Mapping[tuple[str, str], str],
    ) -> None:
        self.projects = projects
        self.numbers = numbers
        self.conversations = conversations_settings
        self.metadata = conversations_metadata
        self.contact_zones = contact_zones

    @classmethod
    async def read(
        cls,
        conn: AsyncConnection,
        messages: Iterable[DispatchMessage],
        numbers: Mapping[str, Row],
    ) -> _QuietHours:
        pending = [m for m in messages if m.status in statuses.PENDING]
        settings = await conversations_repo.project_settings_by_ids(
            conn, [m.project_id for m in pending]
        )
        quiet = {pid: s for pid, s in settings.items() if conversations.may_have_quiet_hours(s)}
        concerned = [m for m in pending if m.project_id in quiet]
        conversation_ids = [m.conversation_id for m in concerned if m.conversation_id]
        stored = await conversations_repo.settings_by_ids(conn, conversation_ids)
        metadata = await conversations_repo.metadata_by_ids(conn, conversation_ids)
        contact_zones = await zones.contact_zones(
            conn, [(m.project_id, m.to_number) for m in concerned]
        )
        return cls(quiet, numbers, stored, metadata, contact_zones)

    def until(self, message: DispatchMessage, now: datetime) -> datetime | None:
        project = self.projects.get(message.project_id)
        if project is None:
            return None
        number = self.numbers.get(message.number_id or "")
        conversation_id = message.conversation_id or ""
        return conversations.quiet_until(
            message,
            project,
            (number or {}).get("settings") or {},
            self.conversations.get(conversation_id, {}),
            now,
            contact_zone=self.contact_zones.get((message.project_id, message.to_number)),
            conversation_zone=zones.metadata_zone(self.metadata.get(conversation_id)),
        )


def _interval(number: Row | None) -> float:
    """Seconds between two sends of ``number`` (its rate, less the pacing slack)."""
    if number is None:
        return 0.0
    return (1 + _PACING_SLACK) / float(number["throughput_mps"])


def _strict(number: Row) -> bool:
    """Whether ``number`` is held to its slots (above ``_STRICT_MAX_MPS`` it is not)."""
    return float(number["throughput_mps"]) <= _STRICT_MAX_MPS


def _due(waiting: list[_Work], now: float) -> tuple[list[_Work], list[_Work]]:
    """The first of ``waiting`` (ordered by slot) to send: those within a slot group of
    the first, and any whose slot passed already; and the rest."""
    last = max(waiting[0].slot + _SLOT_GROUP_SECONDS, now)
    split = bisect.bisect_right([w.slot for w in waiting], last)
    return waiting[:split], waiting[split:]


def _slot_groups(work: Sequence[_Work]) -> list[list[_Work]]:
    ordered = sorted(work, key=lambda w: w.slot)
    groups: list[list[_Work]] = []
    for item in ordered:
        if groups and item.slot - groups[-1][0].slot <= _SLOT_GROUP_SECONDS:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
