"""The message counts by status that ``/metrics`` reports, counted at most so often.

Counting messages by status reads the whole messages table (there is deliberately no
index on the status, which changes on every send). On a large database that takes
seconds, so the count runs through ``Database.scan`` (on SQLite: on a thread, not the
event loop), at most once per ``Settings.metrics_counts_max_age_seconds``, and scrapes
arriving while it runs share it.
"""

from __future__ import annotations

import asyncio
import time

from agentsms.store.db import Database
from agentsms.store.repositories import messages as messages_repo


class ScrapedCounts:
    """Messages by status as of at most ``max_age`` seconds ago."""

    def __init__(self, db: Database, max_age: float) -> None:
        self.db = db
        self.max_age = max_age
        self.counted_at: float | None = None
        """``time.monotonic()`` of the last count, None before the first."""
        self._counts: dict[str, int] = {}
        self._counting: asyncio.Task[dict[str, int]] | None = None

    async def by_status(self) -> dict[str, int]:
        """The counts: the last ones while younger than ``max_age``, else a new count
        (one at a time; concurrent callers wait for the same one)."""
        if self.counted_at is not None and time.monotonic() - self.counted_at < self.max_age:
            return self._counts
        if self._counting is None:
            self._counting = asyncio.create_task(self._count())
            self._counting.add_done_callback(self._counted)
        return await asyncio.shield(self._counting)

    async def _count(self) -> dict[str, int]:
        async with self.db.scan() as conn:
            counts = await messages_repo.status_counts(conn)
        self._counts = counts
        self.counted_at = time.monotonic()
        return counts

    def _counted(self, task: asyncio.Task[dict[str, int]]) -> None:
        self._counting = None
        if not task.cancelled():
            task.exception()  # retrieved here; the awaiting scrapes raise it
