"""The gateway's side of the built-in carrier simulator (``providers.simulator``).

A real carrier keeps its send log and the delivery reports it owes on its own servers, and
calls back later. The simulator has no servers: :class:`StoredSimulatorLedger` keeps its
records in the database (the send log, the repeats, one ``simulator.report`` job per group
of reports owed, due when they are, and one ``simulator.person_reply`` job per scripted
person a text reached), and :class:`ReportHandler` makes the calls back: its reports go
through ``core.provider_events.apply_carrier_receipts``, the path of every carrier's
delivery receipts (the scripted people's answers go through the inbound path of every
carrier's texts: ``core.simulated_people``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from agentsms.config import DEFAULT_JOB_MAX_ATTEMPTS
from agentsms.core.provider_events import SIMULATOR, apply_carrier_receipts
from agentsms.jobs import queue
from agentsms.jobs.queue import Job, NewJob
from agentsms.providers.base import Receipt
from agentsms.providers.simulator import Carried
from agentsms.store.db import Database
from agentsms.store.repositories import simulator as log_repo

REPORT_JOB = "simulator.report"
# A simulated person's scripted answer (see ``core.simulated_people``).
PERSON_REPLY_JOB = "simulator.person_reply"
RECEIPTS_PER_TRANSACTION = 100
"""Reports applied per transaction: a hundred take ~20 ms of CPU (their messages, events
and webhook payloads), so neither the write lock nor the event loop is held for long."""


class StoredSimulatorLedger:
    """The :class:`agentsms.providers.simulator.SimulatorLedger` of this gateway: the
    simulator's records in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def carry(
        self, references: Sequence[str], plan: Callable[[Mapping[str, str]], Carried]
    ) -> Carried:
        """Run ``plan`` on what the log holds of ``references`` and keep what it carried, all
        or nothing: on PostgreSQL in one statement when none of them was logged before (the
        usual case: ``plan`` runs on an empty log, then the statement writes only if it
        was), else in one transaction that reads the log first."""
        # The moment the carrier took the sends, not the moment the write lock was ours.
        now = time.time()
        if not self.db.is_sqlite:
            # Nearly always none of them was sent before: all of it in one statement that
            # writes only if so (on SQLite, statements in a transaction cost little more).
            try:
                async with self.db.write_statement() as conn:
                    carried = plan({})
                    if await log_repo.carry_unseen(
                        conn,
                        references,
                        _send_rows(carried, now),
                        carried.texted,
                        _report_jobs(carried, now),
                        now=now,
                        report_kind=REPORT_JOB,
                        reply_kind=PERSON_REPLY_JOB,
                        max_attempts=DEFAULT_JOB_MAX_ATTEMPTS,
                    ):
                        return carried
            except IntegrityError:
                pass  # another send of one of them was logged meanwhile: read it below
        async with self.db.write() as conn:
            seen = await log_repo.existing_by_reference(conn, references)
            carried = plan({ref: row["provider_message_id"] for ref, row in seen.items()})
            await log_repo.insert_sends(conn, _send_rows(carried, now))
            await log_repo.count_repeats(conn, carried.repeats)
            people = []
            for found in await log_repo.scripted_recipients(conn, carried.texted):
                project_id, person, _, _ = found
                # One answer per burst, also when sends to the person run side by side.
                if await log_repo.claim_reply(conn, project_id, person):
                    people.append(found)
            await queue.enqueue_many(
                conn,
                [
                    NewJob(
                        kind=PERSON_REPLY_JOB,
                        payload={"project_id": project_id, "number": person, "to": ours},
                        run_at=now + wait,
                    )
                    for project_id, person, ours, wait in people
                ],
            )
            await queue.enqueue_many(
                conn,
                [
                    NewJob(kind=REPORT_JOB, payload=payload, run_at=run_at)
                    for payload, run_at in _report_jobs(carried, now)
                ],
            )
        return carried

    async def logged(self, reference: str) -> str | None:
        """The provider message id the log holds for ``reference``."""
        async with self.db.read() as conn:
            found = await log_repo.existing_by_reference(conn, [reference])
        row = found.get(reference)
        return None if row is None else str(row["provider_message_id"])


class ReportHandler:
    """Runs ``simulator.report`` jobs: the simulator's delivery reports, applied like any
    carrier's receipts (matched to our messages, forward only, unmatched ones parked)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def handle(self, jobs: Sequence[Job]) -> None:
        """Apply the reports of ``jobs`` at most ``RECEIPTS_PER_TRANSACTION`` at a time, each
        slice in a transaction of its own, and finish each job with its last slice.

        A claim can carry thousands of reports (a batch's fan-out), and with SQLite on the
        event loop a transaction holds both the write lock (every other writer, the API's
        intake included, waits) and the loop for as long as it runs. A job split across
        slices and then retried (its worker died between them) applies its first slices
        again, which changes nothing: receipts only move messages forward.
        """
        pending: list[Receipt] = []
        done: list[Job] = []
        for job in jobs:
            receipts = [_load(item) for item in job.payload.get("receipts", [])]
            while len(pending) + len(receipts) > RECEIPTS_PER_TRANSACTION:
                room = RECEIPTS_PER_TRANSACTION - len(pending)
                pending += receipts[:room]
                receipts = receipts[room:]
                await self._apply(pending, done)
                pending, done = [], []
            pending += receipts
            done.append(job)
        if done:
            await self._apply(pending, done)

    async def _apply(self, receipts: Sequence[Receipt], finished: Sequence[Job]) -> None:
        async with self.db.write() as conn:
            await apply_carrier_receipts(conn, SIMULATOR, receipts)
            await queue.finish(conn, finished)
        # Let the rest of the process (and its timers) run between slices.
        await asyncio.sleep(0)


def _send_rows(carried: Carried, now: float) -> list[dict[str, Any]]:
    """The send log's rows of the first sends ``carried`` logged."""
    return [
        {
            "reference": send.reference,
            "provider_message_id": send.provider_message_id,
            "from_number": send.from_number,
            "to_number": send.to_number,
            "channel": send.channel,
            "body": send.body,
            "media_urls": list(send.media_urls),
            "outcome": send.outcome,
            "error_code": send.error_code,
            "repeat_count": 0,
            "created_at": now,
        }
        for send in carried.logged
    ]


def _report_jobs(carried: Carried, now: float) -> list[tuple[dict[str, Any], float]]:
    """(payload, run_at) of the ``simulator.report`` job of each group of reports owed."""
    return [
        ({"receipts": [_dump(r) for r in receipts]}, now + delay)
        for delay, receipts in carried.reports.items()
    ]


def _dump(receipt: Receipt) -> dict[str, Any]:
    item: dict[str, Any] = {
        "reference": receipt.reference,
        "provider_message_id": receipt.provider_message_id,
        "status": receipt.status,
        "error_code": receipt.error_code,
    }
    if receipt.error_message is not None:
        item["error_message"] = receipt.error_message
    return item


def _load(item: Mapping[str, Any]) -> Receipt:
    return Receipt(
        provider_message_id=item["provider_message_id"],
        reference=item["reference"],
        status=item["status"],
        error_code=item.get("error_code"),
        error_message=item.get("error_message"),
    )
