"""Group commit: many concurrent requests' writes share one transaction.

A request hands its item to ``GroupCommit.submit`` and waits. Items that arrive while a
transaction is running wait for the next one, which takes all of them (up to
``max_items``) and runs the handler on them together, so under load the fixed costs of a
transaction (and, with a handler that writes in bulk, of each statement) are shared by
the whole group, while an item that arrives on an idle system goes at once. Every item
gets its result only after its group has committed, so a request still answers only for
committed work.

With ``concurrency`` above one (PostgreSQL), more transactions run side by side only while
items crowd up: every transaction pays its fixed cost, and split up small groups pay it more
often.

Under steady light traffic (requests a few milliseconds apart, each arriving while no
transaction runs) every group would carry one item and pay the whole fixed cost of a
transaction alone: most of a single send's CPU. So, as PostgreSQL's ``commit_delay`` does,
a group that would carry one item which came right after another (within ``delay``
seconds) waits until that item is ``delay`` seconds old before it begins, for the items
that follow. Items that queued up meanwhile go at once (under load nothing waits).

If a group's transaction fails as a whole (an error the handler did not assign to one
item, or the commit itself), each of its items is run again in a transaction of its own,
so one bad item cannot fail the others; when the database is unavailable (locked, busy,
unreachable) every item fails at once with ``DatabaseUnavailable`` instead.

A waiting item is bounded by the database's timeout: one that no transaction has taken up
by then is withdrawn (it will never be written) and its caller gets ``DatabaseUnavailable``;
one whose transaction is already writing it waits for that transaction's outcome (its
statements, too, must be done within the timeout, else it is rolled back). So an answer is
either the committed result or says that nothing was stored. An item whose caller was
cancelled before its transaction took it is dropped too.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.db import Database
from agentsms.store.faults import DatabaseUnavailable

CROWD = 32
"""With ``concurrency`` above one, a further transaction starts only while more than this many
items per running transaction wait: under moderate traffic one transaction at a time takes
everything that arrived meanwhile (on PostgreSQL four side by side split 200 sends a second
into groups of one or two, and the API spent 2.3 ms of CPU a send against 1.2 ms)."""

Item = TypeVar("Item")
Result = TypeVar("Result")

Handler = Callable[[AsyncConnection, Sequence[Item]], Awaitable[Sequence[Result | Exception]]]
"""Runs items inside the group's transaction: one result, or the item's own error, each."""


@dataclass(eq=False, slots=True)
class _Entry(Generic[Item, Result]):
    """One submitted item, its caller's future, and whether a transaction is writing it."""

    item: Item
    arrived: float
    following: bool
    """Whether it came within the group commit's ``delay`` of the item before it."""
    future: asyncio.Future[Result] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    taken: bool = False


class GroupCommit(Generic[Item, Result]):
    """Runs submitted items through ``handler`` in shared write transactions."""

    def __init__(
        self,
        db: Database,
        handler: Handler[Item, Result],
        *,
        max_items: int = 256,
        concurrency: int = 1,
        crowd: int = CROWD,
        delay: float = 0.0,
    ) -> None:
        self._db = db
        self._handler = handler
        self._max_items = max_items
        self._concurrency = concurrency
        self._crowd = crowd
        self._delay = delay
        self._last_arrival = -math.inf
        self._pending: list[_Entry[Item, Result]] = []
        # The loop keeps only weak references to tasks: a draining one is held here.
        self._drainers: set[asyncio.Task[None]] = set()
        self.groups = 0
        """Transactions that wrote items so far (retries of single items included)."""
        self.largest = 0
        """The most items one transaction has carried."""

    async def submit(self, item: Item) -> Result:
        """Run ``item`` in the next group; its result once that group has committed.

        ``DatabaseUnavailable`` if no transaction took it up within the database's timeout
        (it is then never written) or its transaction failed for an unavailable database.
        """
        now = time.monotonic()
        entry: _Entry[Item, Result] = _Entry(item, now, now - self._last_arrival < self._delay)
        self._last_arrival = now
        self._pending.append(entry)
        running = len(self._drainers)
        if not running or (
            running < self._concurrency and len(self._pending) > self._crowd * running
        ):
            self._drainers.add(asyncio.get_running_loop().create_task(self._drain()))
        try:
            async with asyncio.timeout(self._db.timeout):
                # Shielded: running out of time must not cancel a transaction writing it.
                return await asyncio.shield(entry.future)
        except TimeoutError:
            if entry.future.done() or entry.taken:
                return await entry.future  # its outcome (or a TimeoutError it raised)
            entry.future.cancel()  # withdrawn: no transaction will take it now
            raise self._db.unavailable(
                f"the database did not take the request within {self._db.timeout:g} s; "
                "nothing was stored"
            ) from None
        except asyncio.CancelledError:
            if not entry.taken:
                entry.future.cancel()
            raise

    async def _drain(self) -> None:
        try:
            while self._pending:
                first = self._pending[0]
                if first.following and len(self._pending) == 1:
                    # Steady light traffic: wait for the items that follow, up to ``delay``
                    # after this one came.
                    wait = first.arrived + self._delay - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                # Withdrawn items (timed out or cancelled while queued) are left out.
                group = [e for e in self._pending[: self._max_items] if not e.future.done()]
                del self._pending[: self._max_items]
                if group:
                    await self._run(group)
        finally:
            # At once, with no await after the last look at the queue: an item submitted
            # from here on starts a drainer of its own.
            self._drainers.discard(asyncio.current_task())

    async def _run(self, group: list[_Entry[Item, Result]]) -> None:
        live: list[_Entry[Item, Result]] = []
        try:
            async with self._db.write() as conn:
                # Only now, with the transaction begun: items withdrawn meanwhile stay out.
                live = [entry for entry in group if not entry.future.done()]
                for entry in live:
                    entry.taken = True
                results: Sequence[Result | Exception] = []
                if live:
                    self.groups += 1
                    self.largest = max(self.largest, len(live))
                    # Bounded as a whole, not only wait by wait: a statement that waited
                    # for another group's row lock may wait again for a table's.
                    async with asyncio.timeout(self._db.timeout):
                        results = await self._handler(conn, [entry.item for entry in live])
        except asyncio.CancelledError:
            for entry in group:
                entry.future.cancel()
            raise
        except Exception as error:
            waiting = [entry for entry in group if not entry.future.done()]
            for entry in waiting:
                entry.taken = False
            if len(waiting) == 1 or isinstance(error, DatabaseUnavailable):
                for entry in waiting:
                    _settle(entry.future, error)
                return
            for single in waiting:
                await self._run([single])
            return
        for entry, result in zip(live, results, strict=True):
            _settle(entry.future, result)


def _settle(future: asyncio.Future[Result], result: Result | Exception) -> None:
    if future.done():  # the waiting request was cancelled or withdrawn
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
