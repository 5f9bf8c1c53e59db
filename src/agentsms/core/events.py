"""Following a project's message events as they are committed (for live streams)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.db import Database
from agentsms.store.repositories import Row
from agentsms.store.repositories import events as repo
from agentsms.store.types import utcnow

SETTLE = timedelta(seconds=2)
POLL_SECONDS = 0.25


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


async def last_seq(conn: AsyncConnection, project_id: str) -> int:
    """The newest event's seq (0 when none): where a live view rendered now resumes."""
    return await repo.last_seq(conn, project_id)


async def follow(
    db: Database, project_id: str, after: int | None, *, poll_seconds: float = POLL_SECONDS
) -> AsyncIterator[list[Row]]:
    """Forever: each new group of the project's events after seq ``after`` (now when None),
    in seq order, never the same event twice. An empty list means nothing new this poll."""
    if after is None:
        async with db.read() as conn:
            after = await last_seq(conn, project_id)
    window = SettleWindow(after)
    while True:
        async with db.read() as conn:
            rows = await repo.events_after(conn, project_id, window.floor, limit=2000)
        fresh = window.take(rows, utcnow())
        yield fresh
        if not fresh:
            await asyncio.sleep(poll_seconds)
