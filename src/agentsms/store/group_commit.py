"""Group commit: many concurrent requests' writes share one transaction.

A request hands its item to ``GroupCommit.submit`` and waits. Items that arrive while a
transaction is running wait for the next one, which takes all of them (up to
``max_items``) and runs the handler on them together, so under load the fixed costs of a
transaction (and, with a handler that writes in bulk, of each statement) are shared by
the whole group, while an item that arrives on an idle system goes at once. Every item
gets its result only after its group has committed, so a request still answers only for
committed work.

If a group's transaction fails as a whole (an error the handler did not assign to one
item, or the commit itself), each of its items is run again in a transaction of its own,
so one bad item cannot fail the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.db import Database

Item = TypeVar("Item")
Result = TypeVar("Result")

Handler = Callable[[AsyncConnection, Sequence[Item]], Awaitable[Sequence[Result | Exception]]]
"""Runs items inside the group's transaction: one result, or the item's own error, each."""


class GroupCommit(Generic[Item, Result]):
    """Runs submitted items through ``handler`` in shared write transactions."""

    def __init__(
        self,
        db: Database,
        handler: Handler[Item, Result],
        *,
        max_items: int = 256,
        concurrency: int = 1,
    ) -> None:
        self._db = db
        self._handler = handler
        self._max_items = max_items
        self._concurrency = concurrency
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        # The loop keeps only weak references to tasks: a draining one is held here.
        self._drainers: set[asyncio.Task[None]] = set()
        self.groups = 0
        """Transactions run so far (retries of single items included)."""
        self.largest = 0
        """The most items one transaction has carried."""

    async def submit(self, item: Item) -> Result:
        """Run ``item`` in the next group; its result once that group has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._drainers) < self._concurrency:
            self._drainers.add(asyncio.get_running_loop().create_task(self._drain()))
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                group = self._pending[: self._max_items]
                del self._pending[: self._max_items]
                await self._run(group)
        finally:
            # At once, with no await after the last look at the queue: an item submitted
            # from here on starts a drainer of its own.
            self._drainers.discard(asyncio.current_task())

    async def _run(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.groups += 1
        self.largest = max(self.largest, len(group))
        try:
            async with self._db.write() as conn:
                results = await self._handler(conn, [item for item, _ in group])
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as error:
            if len(group) == 1:
                _settle(group[0][1], error)
                return
            for single in group:
                await self._run([single])
            return
        for (_, future), result in zip(group, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[Result], result: Result | Exception) -> None:
    if future.done():  # the waiting request was cancelled
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
