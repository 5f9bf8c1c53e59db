"""Webhook events: the known types and ``emit``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.ids import new_id
from agentsms.jobs import queue
from agentsms.jobs.queue import NewJob
from agentsms.store.types import utcnow

DELIVER_JOB = "webhook.deliver"


async def emit(
    conn: AsyncConnection,
    *,
    project_id: str,
    event_type: str,
    data: Mapping[str, Any],
    webhook_url: str | None = None,
) -> None:
    """Record ``event_type`` for ``project_id`` and enqueue its deliveries (caller's tx).

    One delivery job per endpoint of the project subscribed to ``event_type``, plus one to
    ``webhook_url`` when given (a per-conversation override).
    """
    event_id = new_id("evt")
    event: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        "created_at": utcnow().isoformat().replace("+00:00", "Z"),
        "data": dict(data),
    }
    if webhook_url is not None:
        await queue.enqueue(
            conn,
            NewJob(
                kind=DELIVER_JOB,
                ref=event_id,
                payload={"project_id": project_id, "url": webhook_url, "event": event},
            ),
        )
