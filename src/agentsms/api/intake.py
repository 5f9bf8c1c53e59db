"""Single sends of many concurrent requests, accepted together (group commit).

``POST /v1/messages`` hands each validated request to ``SendIntake.submit``. The requests
that arrive while one group's transaction runs form the next group: their idempotency
keys are checked, their messages accepted (``Outbox.send_many``) and their
responses stored with a few statements for the whole group. Each request still gets its
own answer, replay or error, exactly as if it had been sent alone, and only after the
group has committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.api import render
from agentsms.config import Settings
from agentsms.core import idempotency
from agentsms.core.projects import Project
from agentsms.core.sending import OutboundSpec, Outbox
from agentsms.errors import AgentsmsError
from agentsms.store.db import Database
from agentsms.store.group_commit import GroupCommit

ACCEPTED = 202


@dataclass(frozen=True, slots=True)
class PendingSend:
    """One request's send: its project, the message, and its idempotency key and digest."""

    project: Project
    spec: OutboundSpec
    key: str | None = None
    digest: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """The HTTP answer to one send: ``202`` with the message, or a stored replay."""

    status: int
    body: str
    replayed: bool = False


SendIntake = GroupCommit[PendingSend, Answer]


def send_intake(db: Database, settings: Settings, outbox: Outbox) -> SendIntake:
    """The group-commit intake of single sends for one API process."""
    return GroupCommit(
        db,
        partial(accept_sends, outbox=outbox),
        max_items=settings.intake_group_max,
        # SQLite has one writer at a time; PostgreSQL can run a few groups side by side.
        concurrency=1 if db.is_sqlite else settings.intake_group_concurrency,
        delay=settings.intake_group_delay_seconds,
    )


async def accept_sends(
    conn: AsyncConnection, items: Sequence[PendingSend], *, outbox: Outbox
) -> list[Answer | Exception]:
    """Accept ``items`` in the caller's transaction: each one's answer or own error."""
    outcomes: list[Answer | Exception | None] = [None] * len(items)
    by_project: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_project.setdefault(item.project.id, []).append(index)
    for project_id, indexes in by_project.items():
        project = items[indexes[0]].project
        keyed = [i for i in indexes if items[i].key is not None]
        if keyed:
            checks = await idempotency.check_many(
                conn, project_id, [(str(items[i].key), items[i].digest) for i in keyed]
            )
            for index, check in zip(keyed, checks, strict=True):
                if isinstance(check, AgentsmsError):
                    outcomes[index] = check
                elif check is not None:
                    outcomes[index] = Answer(check.status, check.body, replayed=True)
        todo = [i for i in indexes if outcomes[i] is None]
        if not todo:
            continue
        accepted = await outbox.send_many(
            conn, project_id, [items[i].spec for i in todo], project_settings=project.settings
        )
        responses: list[tuple[str, str, int, str]] = []
        for index, result in zip(todo, accepted, strict=True):
            if isinstance(result, Exception):
                outcomes[index] = result
                continue
            body = render.message(result).model_dump_json(by_alias=True)
            outcomes[index] = Answer(ACCEPTED, body)
            key = items[index].key
            if key is not None:
                responses.append((key, items[index].digest, ACCEPTED, body))
        if responses:
            await idempotency.record_many(conn, project_id, responses)
    answers: list[Answer | Exception] = []
    for outcome in outcomes:
        assert outcome is not None, "every send has an answer"
        answers.append(outcome)
    return answers
