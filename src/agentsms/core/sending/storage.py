"""Storage of accepted sends: the message rows, their send jobs (or the agent turns that
write openings), and the acceptance events webhooks hear."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import conversations, message_events
from agentsms.core.sending.specs import SEND_JOB
from agentsms.jobs import queue
from agentsms.jobs.queue import NewJob
from agentsms.store.repositories import messages as repo
from agentsms.store.repositories import projects as projects_repo


def due_time(row: Mapping[str, Any]) -> float | None:
    """When a new message's send job runs: its send time, or the end of its validity if
    that comes first (quiet hours deferred it past it), when it is marked expired."""
    send_at, expires_at = row["send_at"], row.get("expires_at")
    if send_at is None:
        return None
    due: datetime = min(send_at, expires_at or send_at)
    return due.timestamp()


async def store(
    conn: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    max_attempts: int,
    openings: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Insert ``rows`` and queue their send jobs (``max_attempts`` tries each); the rows in
    ``openings`` get an agent turn instead, which writes them and then queues the send."""
    # No event row at intake: the message row itself records its creation, and timelines
    # start from it (see ``timeline``). This halves the writes of a 10,000-recipient batch.
    await repo.insert_messages(conn, rows)
    await queue.enqueue_refs(
        conn,
        SEND_JOB,
        [(row["id"], due_time(row)) for row in rows if row["id"] not in openings],
        max_attempts=max_attempts,
    )
    if openings:
        # The agent writes these first; its turn enqueues the send.
        await queue.enqueue_many(
            conn,
            [
                NewJob(
                    kind=conversations.TURN_JOB,
                    ref=row["conversation_id"],
                    payload={"opening_message_id": row["id"]},
                    run_at=row["send_at"].timestamp() if row["send_at"] else None,
                )
                for row in rows
                if row["id"] in openings
            ],
        )
    await message_events.on_accepted(conn, rows)


async def queue_send(conn: AsyncConnection, message_id: str, max_attempts: int) -> None:
    """Queue the send job of a stored message (an opening its agent has now written)."""
    await queue.enqueue(conn, NewJob(kind=SEND_JOB, ref=message_id, max_attempts=max_attempts))


async def project_settings(
    conn: AsyncConnection, project_id: str, given: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    """The project's settings: ``given`` when the caller has them, else read."""
    if given is not None:
        return given
    row = await projects_repo.get_project(conn, project_id)
    return {} if row is None else dict(row["settings"] or {})
