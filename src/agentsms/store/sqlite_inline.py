"""An aiosqlite connection that runs SQLite calls on the event loop's own thread.

aiosqlite sends every call (execute, fetch, commit, ...) to a helper thread and back, and
on this workload the round trips cost more than SQLite's work: a single send made about
fifty of them. SQLite calls are sub-millisecond and, in WAL mode, readers never wait, so
running them inline is faster. The one call that can wait is ``BEGIN IMMEDIATE`` (for
another process's writer): it is tried without SQLite's blocking busy handler and, while
another process holds the lock, retried after short asynchronous sleeps, so the event loop
never blocks on a lock. Both waits give up after the connection's ``busy_timeout``, or
earlier at ``begin_deadline`` when the caller set one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import Any

import aiosqlite

begin_deadline: ContextVar[float | None] = ContextVar("sqlite_begin_deadline", default=None)
"""When set (a ``time.monotonic()`` value), ``BEGIN IMMEDIATE`` gives up then at the latest,
so that a writer's whole wait (its turn inside the process included) stays within one bound."""


class InlineConnection(aiosqlite.Connection):
    """``aiosqlite.Connection`` that executes inline except for lock-taking statements."""

    busy_timeout: float = 5.0
    """Seconds ``BEGIN IMMEDIATE`` waits for another process's writer before it fails."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if args and isinstance(args[0], str) and args[0].startswith("BEGIN IMMEDIATE"):
            return await self._begin_immediate(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def _begin_immediate(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Take the write lock without blocking the loop: try at once, else back off and retry."""
        connection = self._conn
        deadline = time.monotonic() + self.busy_timeout
        given = begin_deadline.get()
        if given is not None:
            deadline = min(deadline, given)
        delay = 0.0005
        while True:
            connection.execute("PRAGMA busy_timeout=0")
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            finally:
                connection.execute(f"PRAGMA busy_timeout={max(1, int(self.busy_timeout * 1000))}")
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.05)


def creator(path: str, *, busy_timeout: float) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy's aiosqlite dialect opening ``path``, whose
    connections wait at most ``busy_timeout`` seconds for another process's lock."""

    async def connect() -> InlineConnection:
        connection = InlineConnection(
            partial(sqlite3.connect, path, check_same_thread=False, isolation_level=None),
            iter_chunk_size=64,
        )
        connection.busy_timeout = busy_timeout
        await connection
        return connection

    return connect
