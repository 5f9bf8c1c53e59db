"""Work that many tasks hand in, done together in rounds.

A task hands its share to :meth:`Rounds.join` and waits. A round takes every share
waiting when it asks for them (``take``) and does them at once, so the fixed cost of a
round (a transaction, a provider call) is shared by all of them; shares handed in while
the rounds run wait for the next one. At most ``concurrency`` rounds run at a time, each
on a task of its own (not on a joining task, which would then run others' rounds before
going on with its own work).

A round that raises fails the shares it took (every waiting share, if it took none: they
would meet the same error); the rounds go on with the shares handed in after it. A share
whose task is cancelled before a round took it is withdrawn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Share = TypeVar("Share")

Round = Callable[[Callable[[], list[Share]]], Awaitable[None]]
"""Does one round: calls its argument once, when ready, for the shares to do."""


@dataclass(eq=False, slots=True)
class _Entry(Generic[Share]):
    share: Share
    done: asyncio.Future[None]
    taken: bool = False


class Rounds(Generic[Share]):
    """Shares handed in by many tasks, done ``run`` a round at a time."""

    def __init__(self, run: Round[Share], *, concurrency: int = 1) -> None:
        self._run = run
        self._concurrency = concurrency
        self._pending: list[_Entry[Share]] = []
        # The loop keeps only weak references to tasks: a running round's is held here.
        self._runners: set[asyncio.Task[None]] = set()

    async def join(self, share: Share) -> None:
        """Hand in ``share``; returns once a round has done it, or raises what it raised."""
        loop = asyncio.get_running_loop()
        entry = _Entry(share, loop.create_future())
        self._pending.append(entry)
        if len(self._runners) < self._concurrency:
            self._runners.add(loop.create_task(self._drain()))
        try:
            # Shielded: a task cancelled once its share was taken leaves the round alone.
            await asyncio.shield(entry.done)
        except asyncio.CancelledError:
            if entry.taken:
                # Its round's outcome goes unheard: not reported as never retrieved.
                entry.done.add_done_callback(_heard)
            else:
                entry.done.cancel()
            raise

    async def _drain(self) -> None:
        task = asyncio.current_task()
        try:
            while self._pending:
                await self._round()
        finally:
            # At once, with no await after the last look at the queue: a share handed in
            # from here on starts a runner of its own.
            if task is not None:
                self._runners.discard(task)

    async def _round(self) -> None:
        taken: list[_Entry[Share]] | None = None

        def take() -> list[Share]:
            nonlocal taken
            taken = [entry for entry in self._pending if not entry.done.done()]
            self._pending = []
            for entry in taken:
                entry.taken = True
            return [entry.share for entry in taken]

        try:
            await self._run(take)
        except BaseException as error:
            failed = taken or []
            if taken is None or isinstance(error, asyncio.CancelledError):
                failed, self._pending = [*failed, *self._pending], []
            for entry in failed:
                _fail(entry.done, error)
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        for entry in taken or []:
            if not entry.done.done():
                entry.done.set_result(None)


def _heard(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


def _fail(waiter: asyncio.Future[None], error: BaseException) -> None:
    """Tell a task waiting on ``waiter`` that the work it waited for failed with ``error``."""
    if waiter.done():
        return
    if isinstance(error, asyncio.CancelledError):
        waiter.cancel()
    else:
        waiter.set_exception(error)
