"""An aiosqlite connection that runs SQLite calls on the event loop's own thread.

aiosqlite sends every call (execute, fetch, commit, ...) to a helper thread and back, and
on this workload the round trips cost more than SQLite's work: a single send made about
fifty of them. SQLite calls are sub-millisecond and, in WAL mode, readers never wait, so
running them inline is faster. The one call that can wait is ``BEGIN IMMEDIATE`` (for
another process's writer): it is tried without SQLite's blocking busy handler and, while
another process holds the lock, retried after short asynchronous sleeps, so the event loop
never blocks on a lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

BUSY_TIMEOUT_SECONDS = 30.0


class InlineConnection(aiosqlite.Connection):
    """``aiosqlite.Connection`` that executes inline except for lock-taking statements."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if args and isinstance(args[0], str) and args[0].startswith("BEGIN IMMEDIATE"):
            return await self._begin_immediate(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def _begin_immediate(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Take the write lock without blocking the loop: try at once, else back off and retry."""
        connection = self._conn
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        delay = 0.0005
        while True:
            connection.execute("PRAGMA busy_timeout=0")
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            finally:
                connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)


def creator(path: str) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy's aiosqlite dialect opening ``path``."""

    async def connect() -> InlineConnection:
        connection = InlineConnection(
            partial(sqlite3.connect, path, check_same_thread=False, isolation_level=None),
            iter_chunk_size=64,
        )
        await connection
        return connection

    return connect
