"""The webhook log as the dashboard shows it: the deliveries about one message."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, many
from agentsms.store.tables import webhook_deliveries, webhook_events

SCAN_LIMIT = 2000


async def events_about_message(
    conn: AsyncConnection, project_id: str, message_id: str
) -> Sequence[Row]:
    """The project's ``message.*`` events about ``message_id``, oldest first.

    Event and message ids are both time-ordered ULIDs behind their prefixes and an event is
    never older than its message, so the scan starts at the message's own millisecond (the
    first 10 characters of a ULID; the rest is random).
    """
    e = webhook_events.c
    start = "evt_" + message_id.partition("_")[2][:10]
    query = (
        select(webhook_events)
        .where(e.project_id == project_id, e.id >= start, e.type.like("message.%"))
        .order_by(e.id)
        .limit(SCAN_LIMIT)
    )
    rows = many((await conn.execute(query)).mappings().all())
    return [
        row
        for row in rows
        if ((row["payload"].get("data") or {}).get("message") or {}).get("id") == message_id
    ]


async def deliveries_of_events(conn: AsyncConnection, event_ids: Sequence[str]) -> Sequence[Row]:
    """Every delivery attempt of these events, newest first."""
    if not event_ids:
        return []
    d = webhook_deliveries.c
    query = (
        select(webhook_deliveries)
        .where(d.event_id.in_(list(event_ids)))
        .order_by(d.id.desc())
        .limit(500)
    )
    return many((await conn.execute(query)).mappings().all())
