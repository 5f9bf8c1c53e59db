"""``/v1/events/stream``: message events as server-sent events, for ``agentsms tail``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from agentsms.api import render
from agentsms.api.deps import CurrentProject, State
from agentsms.store.repositories import Row
from agentsms.store.repositories import events as repo
from agentsms.store.types import utcnow

router = APIRouter(prefix="/v1/events", tags=["events"])

SETTLE = timedelta(seconds=2)


class SettleWindow:
    """Which events to send next, when sequence numbers can commit out of order.

    On PostgreSQL an event can take seq 7 and commit after seq 8 has been read, so a plain
    "after the last seq sent" cursor would skip it for good. The window re-reads everything
    above ``floor`` and remembers what it sent; the floor only moves past events older than
    ``SETTLE`` (every write transaction commits well within that).
    """

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.sent: set[int] = set()

    def take(self, rows: Sequence[Row], now: datetime) -> list[Row]:
        """Rows (ordered by seq, all above ``floor``) not sent yet; advances the floor."""
        fresh = [row for row in rows if row["seq"] not in self.sent]
        self.sent.update(row["seq"] for row in fresh)
        for row in rows:
            if row["created_at"] > now - SETTLE:
                break
            self.floor = row["seq"]
        self.sent = {seq for seq in self.sent if seq > self.floor}
        return fresh


@router.get("/stream", summary="Live message events (server-sent events)")
async def stream(
    project: CurrentProject,
    state: State,
    after: int | None = Query(default=None, description="Start after this event seq"),
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> EventSourceResponse:
    """Each event's SSE id is its ``seq``; reconnecting with ``Last-Event-ID`` resumes."""
    if after is None and last_event_id and last_event_id.isdigit():
        after = int(last_event_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        start = after
        if start is None:
            async with state.db.read() as conn:
                start = await repo.last_seq(conn, project.id)
        window = SettleWindow(start)
        while True:
            async with state.db.read() as conn:
                rows = await repo.events_after(conn, project.id, window.floor, limit=2000)
            fresh = window.take(rows, utcnow())
            for row in fresh:
                yield ServerSentEvent(
                    data=render.event(row).model_dump_json(), event=row["type"], id=str(row["seq"])
                )
            if not fresh:
                await asyncio.sleep(0.25)

    return EventSourceResponse(events(), ping=15)
