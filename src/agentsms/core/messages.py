"""Messages once accepted: reading them and their batches, canceling, and the events of
their status changes. Accepting a message is ``core.sending``'s job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import message_events, statuses
from agentsms.core.message_events import Change
from agentsms.core.sending.specs import SEND_JOB
from agentsms.errors import Conflict, NotFound
from agentsms.ids import new_ids
from agentsms.jobs import queue
from agentsms.store.records import MessageRecord
from agentsms.store.repositories import Row
from agentsms.store.repositories import events as events_repo
from agentsms.store.repositories import messages as repo

# Part of this module's interface (``list_messages`` takes one), for the edges.
from agentsms.store.repositories.messages import MessageFilter as MessageFilter
from agentsms.store.types import utcnow


async def get_message(conn: AsyncConnection, project_id: str, message_id: str) -> MessageRecord:
    row = await repo.get_message(conn, project_id, message_id)
    if row is None:
        raise NotFound(f"message {message_id} not found")
    return row


async def list_messages(
    conn: AsyncConnection, where: MessageFilter, limit: int, offset: int = 0
) -> list[MessageRecord]:
    """The messages ``where`` selects, newest first, skipping ``offset`` of them."""
    return await repo.list_messages(conn, where, limit, offset)


async def get_batch(
    conn: AsyncConnection, project_id: str, batch_id: str
) -> tuple[Row, dict[str, int]]:
    row = await repo.get_batch(conn, project_id, batch_id)
    if row is None:
        raise NotFound(f"batch {batch_id} not found")
    return row, await repo.batch_status_counts(conn, batch_id)


async def cancel_message(conn: AsyncConnection, project_id: str, message_id: str) -> MessageRecord:
    """Cancel a message that has not started sending; ``Conflict`` once it has."""
    row = await get_message(conn, project_id, message_id)
    now = utcnow()
    changed = await repo.set_status_where(
        conn,
        [message_id],
        from_statuses=statuses.CANCELABLE,
        values={"status": statuses.CANCELED, "updated_at": now},
    )
    if not changed:
        raise Conflict(
            f"message is {row.status}; only scheduled or queued messages can be canceled",
            code="not_cancelable",
        )
    await queue.cancel_by_ref(conn, SEND_JOB, message_id)
    await record_events(conn, [(row, statuses.CANCELED, {})], now)
    return await get_message(conn, project_id, message_id)


async def record_events(
    conn: AsyncConnection,
    changes: Sequence[Change],
    now: datetime,
) -> None:
    """Append ``message.<status>`` events for (message, new status, data) triples."""
    await events_repo.insert_events(
        conn,
        [
            {
                "id": event_id,
                "project_id": row.project_id,
                "message_id": row.id,
                "type": f"message.{status}",
                "status": status,
                "data": dict(data),
                "created_at": now,
            }
            for event_id, (row, status, data) in zip(
                new_ids("evt", len(changes)), changes, strict=True
            )
        ],
    )
    await message_events.on_status_changes(conn, changes)


async def timeline(conn: AsyncConnection, project_id: str, message_id: str) -> list[dict[str, Any]]:
    """A message's status changes, oldest first, starting with its acceptance."""
    first = acceptance_event(await get_message(conn, project_id, message_id))
    later = [dict(event) for event in await events_repo.events_for_message(conn, message_id)]
    return [first, *(event for event in later if event["status"] != first["status"])]


def acceptance_event(row: MessageRecord) -> dict[str, Any]:
    """A message's first event, made from its row (intake stores no event row for an
    outbound message): ``received``, ``scheduled`` or ``queued``, with ``seq`` 0."""
    accepted = (
        statuses.RECEIVED
        if row.direction == "inbound"
        else (
            statuses.SCHEDULED
            if row.send_at is not None and row.send_at > row.created_at
            else statuses.QUEUED
        )
    )
    return {
        "id": f"evt_{row.id.removeprefix('msg_')}",
        "seq": 0,
        "type": f"message.{accepted}",
        "message_id": row.id,
        "project_id": row.project_id,
        "status": accepted,
        "data": {},
        "created_at": row.created_at,
    }


async def list_batches(
    conn: AsyncConnection, project_id: str, *, before_id: str | None = None, limit: int = 50
) -> list[tuple[Row, dict[str, int]]]:
    """The project's batches, newest first, each with its counts per status."""
    rows = await repo.list_batches(conn, project_id, before_id=before_id, limit=limit)
    counts = await repo.batches_status_counts(conn, [row["id"] for row in rows])
    return [(row, counts[row["id"]]) for row in rows]


async def batches_by_ids(
    conn: AsyncConnection, project_id: str, batch_ids: Sequence[str]
) -> list[tuple[Row, dict[str, int]]]:
    """The project's batches among ``batch_ids``, each with its counts per status."""
    rows = await repo.get_batches(conn, project_id, batch_ids)
    counts = await repo.batches_status_counts(conn, [row["id"] for row in rows])
    return [(row, counts[row["id"]]) for row in rows]


async def cancel_batch(conn: AsyncConnection, project_id: str, batch_id: str) -> int:
    """Cancel every message of the batch that has not started sending; how many were."""
    await get_batch(conn, project_id, batch_id)
    pending = await repo.batch_ids_with_status(conn, batch_id, statuses.CANCELABLE)
    now = utcnow()
    changed = await repo.set_status_where(
        conn,
        pending,
        from_statuses=statuses.CANCELABLE,
        values={"status": statuses.CANCELED, "updated_at": now},
    )
    for message_id in changed:
        await queue.cancel_by_ref(conn, SEND_JOB, message_id)
    rows = await repo.messages_by_ids(conn, changed)
    await record_events(conn, [(rows[i], statuses.CANCELED, {}) for i in changed], now)
    return len(changed)


async def get_messages(
    conn: AsyncConnection, project_id: str, message_ids: Sequence[str]
) -> dict[str, MessageRecord]:
    """The project's messages among ``message_ids`` (others are left out), by id."""
    found = await repo.messages_by_ids(conn, message_ids)
    return {i: row for i, row in found.items() if row.project_id == project_id}
