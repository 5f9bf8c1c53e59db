"""Following a project's message events as they are committed (for live streams)."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.messages import acceptance_event
from agentsms.ids import id_before
from agentsms.store.db import Database
from agentsms.store.repositories import Row
from agentsms.store.repositories import events as repo
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.types import utcnow

SETTLE = timedelta(seconds=2)
POLL_SECONDS = 0.25
K = TypeVar("K", int, str)
R = TypeVar("R")


class SettleWindow(Generic[K]):
    """Which rows to send next, when their keys can commit out of order.

    On PostgreSQL an event can take seq 7 and commit after seq 8 has been read, so a plain
    "after the last seq sent" cursor would skip it for good (a message's id, made before
    its transaction, likewise). The window re-reads everything above ``floor`` and
    remembers what it sent; the floor only moves past rows older than ``SETTLE`` (every
    write transaction commits well within that).
    """

    def __init__(self, floor: K, key: str = "seq", *, records: bool = False) -> None:
        """Rows are read by column name (``key`` and ``created_at``); with ``records``, by
        attribute (store records)."""
        self.floor: K = floor
        read = attrgetter if records else itemgetter
        self._key: Callable[[Any], K] = read(key)
        self._created: Callable[[Any], datetime] = read("created_at")
        self.sent: set[K] = set()

    def take(self, rows: Sequence[R], now: datetime) -> list[R]:
        """Rows (ordered by key, all above ``floor``) not sent yet; advances the floor."""
        key = self._key
        fresh = [row for row in rows if key(row) not in self.sent]
        self.sent.update(key(row) for row in fresh)
        for row in rows:
            if self._created(row) > now - SETTLE:
                break
            self.floor = key(row)
        self.sent = {value for value in self.sent if value > self.floor}
        return fresh


async def last_seq(conn: AsyncConnection, project_id: str) -> int:
    """The newest event's seq (0 when none): where a live view rendered now resumes."""
    return await repo.last_seq(conn, project_id)


async def follow(
    db: Database,
    project_id: str,
    after: int | None,
    *,
    poll_seconds: float = POLL_SECONDS,
    acceptances: bool = False,
) -> AsyncIterator[list[Row]]:
    """Forever: each new group of the project's events after seq ``after`` (now when None),
    in seq order, never the same event twice. An empty list means nothing new this poll.

    With ``acceptances``, outbound messages' ``queued`` / ``scheduled`` events (``seq`` 0:
    intake stores no event row for them, see ``messages.acceptance_event``) come too, for
    the messages made since event ``after`` was, merged in by time.
    """
    since: datetime | None
    async with db.read() as conn:
        if after is None:
            since = utcnow()
            after = await last_seq(conn, project_id)
        else:
            since = await repo.event_time(conn, project_id, after) if after else None
    window = SettleWindow(after)
    accepted = SettleWindow(
        id_before("msg", since.timestamp() if since else 0), key="id", records=True
    )
    while True:
        async with db.read() as conn:
            rows = await repo.events_after(conn, project_id, window.floor, limit=2000)
            made = (
                await messages_repo.outbound_after(conn, project_id, accepted.floor, limit=2000)
                if acceptances
                else []
            )
        now = utcnow()
        fresh = window.take(rows, now)
        if made:
            firsts = [acceptance_event(row) for row in accepted.take(made, now)]
            fresh = list(heapq.merge(firsts, fresh, key=lambda row: row["created_at"]))
        yield fresh
        if not fresh:
            await asyncio.sleep(poll_seconds)
