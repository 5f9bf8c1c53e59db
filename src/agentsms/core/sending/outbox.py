"""The ``Outbox``: the one way a message is accepted for sending.

Every send validates everything first and raises one ``ValidationFailed`` listing every
bad field; only a fully valid request writes anything. The messages, their events and
their send jobs are written on the caller's connection, never committed: the edge
(request or job) owns the transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import spend, templates
from agentsms.core.sending.attachment import converse, givens, resolve_replies
from agentsms.core.sending.policy import SendPolicy
from agentsms.core.sending.senders import sender_pool
from agentsms.core.sending.specs import LATEST_SEND_AT, BatchResult, BatchSpec, OutboundSpec
from agentsms.core.sending.storage import project_settings as load_settings
from agentsms.core.sending.storage import queue_send, store
from agentsms.core.sending.validation import Intake, failure, raise_failure
from agentsms.core.storable import metadata_problem
from agentsms.errors import AgentsmsError, FieldError, ValidationFailed, invalid
from agentsms.ids import new_id
from agentsms.numeric import MAX_SPACING_SECONDS
from agentsms.store.bulk import plan_for_actual_values
from agentsms.store.records import MessageRecord
from agentsms.store.repositories import Row
from agentsms.store.repositories import messages as repo
from agentsms.store.types import utcnow

RECIPIENTS = "recipients"
"""The field a batch's recipients are named by (compat modules rename it)."""


@dataclass(frozen=True, slots=True)
class Checked:
    """What ``Outbox.check`` found for one spec: the message it would send, or why not."""

    message: Row | None
    errors: list[FieldError]


class _Separate(Exception):
    """A group of sends must be taken one by one to tell whose errors are whose."""


class Outbox:
    """Accepts outbound messages under one ``SendPolicy``.

    ``project_settings`` (every method) saves a read when the caller has the project's
    settings at hand (the API's cached project); they are read otherwise.
    """

    def __init__(self, policy: SendPolicy) -> None:
        self.policy = policy

    def check_batch_size(self, count: int) -> None:
        """Refuse a batch of more than ``policy.max_batch_items`` recipients."""
        limit = self.policy.max_batch_items
        if count > limit:
            raise ValidationFailed(
                f"{RECIPIENTS}: at most {limit} per request",
                errors=[FieldError(RECIPIENTS, f"at most {limit} per request, got {count}")],
            )

    async def queue_opening(self, conn: AsyncConnection, message_id: str) -> None:
        """Queue the send of an opening (stored body-less) that its agent has now written."""
        await queue_send(conn, message_id, self.policy.max_attempts)

    async def send(
        self,
        conn: AsyncConnection,
        project_id: str,
        spec: OutboundSpec,
        *,
        project_settings: Mapping[str, Any] | None = None,
    ) -> MessageRecord:
        """Accept one outbound message: validated, priced, stored and queued."""
        (spec,), problems = await templates.resolve(conn, project_id, [spec], [""])
        if problems:
            raise_failure(problems)
        settings = await load_settings(conn, project_id, project_settings)
        pool = await sender_pool(conn, project_id, [spec])
        intake = Intake(
            project_id,
            pool,
            utcnow(),
            project_settings=settings,
            url_problem=self.policy.url_problem,
        )
        row = intake.build(spec, "")
        if row is None:
            raise_failure(intake.errors)
        await converse(conn, project_id, settings, intake, [row], givens([spec]))
        if intake.errors:
            raise_failure(intake.errors)
        await spend.charge_intake(conn, project_id, settings, [row], intake.now)
        await resolve_replies(conn, project_id, [row])
        await store(conn, [row], self.policy.max_attempts, intake.openings)
        return MessageRecord.from_mapping(row)

    async def send_many(
        self,
        conn: AsyncConnection,
        project_id: str,
        specs: Sequence[OutboundSpec],
        *,
        project_settings: Mapping[str, Any] | None = None,
    ) -> list[MessageRecord | AgentsmsError]:
        """Accept independent single sends together, in spec order.

        Each spec is accepted or refused on its own, exactly as ``send`` would take it
        alone, but the accepted ones are written with a handful of statements in all (the
        intake of many concurrent API requests that share one transaction). A spec that
        fails validation gets its ``ValidationFailed`` (past the daily cap:
        ``SpendCapReached``) in its place and writes nothing.
        """
        outcomes: list[MessageRecord | AgentsmsError | None] = [None] * len(specs)
        resolved: list[OutboundSpec] = []
        for index, spec in enumerate(specs):
            if spec.template_id is not None:
                (spec,), problems = await templates.resolve(conn, project_id, [spec], [""])
                if problems:
                    outcomes[index] = failure(problems)
            resolved.append(spec)
        settings = await load_settings(conn, project_id, project_settings)
        pool = await sender_pool(conn, project_id, resolved)
        intake = Intake(
            project_id,
            pool,
            utcnow(),
            expected=len(resolved),
            project_settings=settings,
            url_problem=self.policy.url_problem,
        )
        rows: list[dict[str, Any]] = []
        owners: list[int] = []
        for index, spec in enumerate(resolved):
            if outcomes[index] is not None:
                continue
            row = intake.build(spec, "")
            if row is None:
                outcomes[index] = failure(intake.errors)
                intake.errors.clear()
                continue
            rows.append(row)
            owners.append(index)
        if rows:
            shared = [
                (given, "conversation.") for given, _ in givens([resolved[i] for i in owners])
            ]
            try:
                async with conn.begin_nested():
                    await converse(conn, project_id, settings, intake, rows, shared)
                    if intake.errors:
                        raise _Separate
                    try:
                        await spend.charge_intake(conn, project_id, settings, rows, intake.now)
                    except spend.SpendCapReached:
                        # Not all fit under the cap: which do, the sends taken in order say.
                        raise _Separate from None
                    await resolve_replies(conn, project_id, rows)
                    await store(conn, rows, self.policy.max_attempts, intake.openings)
                for index, row in zip(owners, rows, strict=True):
                    outcomes[index] = MessageRecord.from_mapping(row)
            except _Separate:
                # Some conversation-side check or the daily cap failed: whose it is, only a
                # send alone can say. Each goes as it was asked (``send`` resolves its
                # template itself).
                for index in owners:
                    try:
                        async with conn.begin_nested():
                            outcomes[index] = await self.send(
                                conn, project_id, specs[index], project_settings=settings
                            )
                    except (ValidationFailed, spend.SpendCapReached) as failed:
                        outcomes[index] = failed
        accepted: list[MessageRecord | AgentsmsError] = []
        for outcome in outcomes:
            assert outcome is not None, "every spec has an outcome"
            accepted.append(outcome)
        return accepted

    async def send_batch(
        self,
        conn: AsyncConnection,
        project_id: str,
        spec: BatchSpec,
        *,
        project_settings: Mapping[str, Any] | None = None,
    ) -> BatchResult:
        """Accept many outbound messages at once; any invalid item rejects the whole batch."""
        if not spec.items:
            raise ValidationFailed(
                f"{RECIPIENTS}: must not be empty",
                errors=[FieldError(RECIPIENTS, "must not be empty")],
            )
        self.check_batch_size(len(spec.items))
        if spec.spacing_seconds is not None and not (
            0 <= spec.spacing_seconds <= MAX_SPACING_SECONDS
        ):
            raise invalid("spacing_seconds", f"must be from 0 to {MAX_SPACING_SECONDS}")
        if (problem := metadata_problem(spec.metadata)) is not None:
            raise invalid("metadata", problem)
        await plan_for_actual_values(conn)
        if any(item.template_id is not None for item in spec.items):
            items, problems = await templates.resolve(
                conn,
                project_id,
                spec.items,
                [f"{RECIPIENTS}[{i}]." for i in range(len(spec.items))],
            )
            if problems:
                raise_failure(problems)
            spec = replace(spec, items=items)
        now = utcnow()
        settings = await load_settings(conn, project_id, project_settings)
        pool = await sender_pool(conn, project_id, spec.items)
        intake = Intake(
            project_id,
            pool,
            now,
            expected=len(spec.items),
            project_settings=settings,
            url_problem=self.policy.url_problem,
        )
        batch_id = new_id("batch")
        rows: list[dict[str, Any]] = []
        spacing = spec.spacing_seconds or 0.0
        build = intake.build
        for index, item in enumerate(spec.items):
            base = item.send_at
            if spacing and (base is None or base <= LATEST_SEND_AT):
                base = (base or now) + timedelta(seconds=spacing * index)
            row = build(item, f"{RECIPIENTS}[{index}].", batch_id, base, spec.metadata)
            if row is not None:
                rows.append(row)
        if not intake.errors:
            await converse(conn, project_id, settings, intake, rows, givens(spec.items))
        if intake.errors:
            bad = sorted(
                {_index(e.field) for e in intake.errors if e.field.startswith(f"{RECIPIENTS}[")}
            )
            raise_failure(
                intake.errors,
                f"{len(bad)} of {len(spec.items)} recipients are invalid: indexes "
                + ", ".join(str(i) for i in bad[:50])
                + (" …" if len(bad) > 50 else "")
                if bad
                else None,
            )
        await spend.charge_intake(conn, project_id, settings, rows, now)
        batch = {
            "id": batch_id,
            "project_id": project_id,
            "total": len(rows),
            "metadata": dict(spec.metadata),
            "created_at": now,
        }
        await repo.insert_batch(conn, batch)
        await resolve_replies(conn, project_id, rows)
        await store(conn, rows, self.policy.max_attempts, intake.openings)
        counts = dict(Counter(map(itemgetter("status"), rows)))
        return BatchResult(batch=batch, message_ids=[row["id"] for row in rows], counts=counts)

    async def check(
        self,
        conn: AsyncConnection,
        project_id: str,
        specs: Sequence[OutboundSpec],
        *,
        project_settings: Mapping[str, Any] | None = None,
    ) -> list[Checked]:
        """Validate, fill and price each spec exactly as a send would, writing nothing.

        Field names in each ``errors`` are the spec's own (``to``, ``body``, ...). A sender
        chosen from the pool here may differ from the one a real send picks when several
        qualify.
        """
        settings = await load_settings(conn, project_id, project_settings)
        pool = await sender_pool(conn, project_id, specs)
        intake = Intake(
            project_id,
            pool,
            utcnow(),
            expected=len(specs),
            project_settings=settings,
            url_problem=self.policy.url_problem,
        )
        found: list[Checked] = []
        for spec in specs:
            before = len(intake.errors)
            row = intake.build(spec, "")
            found.append(Checked(row, intake.errors[before:]))
        return found


def _index(field_path: str) -> int:
    return int(field_path.split("]", 1)[0].removeprefix(f"{RECIPIENTS}["))
