"""An aiosqlite connection that runs SQLite calls on the event loop's own thread.

aiosqlite sends every call (execute, fetch, commit, ...) to a helper thread and back, and
on this workload the round trips cost more than SQLite's work: a single send made about
fifty of them. SQLite calls are sub-millisecond and, in WAL mode, readers never wait, so
running them inline is faster. The one call that can wait is ``BEGIN IMMEDIATE`` (for
another process's writer): it is tried without SQLite's blocking busy handler and, while
another process holds the lock, retried after short asynchronous sleeps, so the event loop
never blocks on a lock. Both waits give up after the connection's ``busy_timeout``, or
earlier at ``begin_deadline`` when the caller set one.

SQLite's lock is not a queue: a process that writes transaction after transaction takes it
again microseconds after its commit, while a writer of another process, retrying after a
sleep, keeps finding it taken (the API's intake could wait seconds behind a busy worker).
So the processes sharing a file take turns through a ``WaitBoard``: a writer that found the
lock taken says so there, and a writer of another process that sees it lets it go first.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import sqlite3
import struct
import time
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import Any

import aiosqlite

begin_deadline: ContextVar[float | None] = ContextVar("sqlite_begin_deadline", default=None)
"""When set (a ``time.monotonic()`` value), ``BEGIN IMMEDIATE`` gives up then at the latest,
so that a writer's whole wait (its turn inside the process included) stays within one bound."""


RETRY_CAP_SECONDS = 0.002
"""The longest pause between two tries for the lock: a free lock is found this soon."""
YIELD_CAP_SECONDS = 0.02
"""The longest a writer lets another process's waiting writer go first, per transaction."""
_SLOT = struct.Struct("<qd")  # the waiting writer's process id, and until when it waits


class WaitBoard:
    """Sixteen bytes in a file beside the database (``<file>-waiting``), shared by every
    process that writes to it: which process has a writer waiting for the lock, and until
    when (a ``time.monotonic()`` moment, the same clock in every process). A waiter renews
    its notice at each retry, so a notice left by a process that died lapses at once."""

    def __init__(self, path: str) -> None:
        fd = os.open(f"{path}-waiting", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _SLOT.size:
                os.ftruncate(fd, _SLOT.size)
            self._map = mmap.mmap(fd, _SLOT.size)
        finally:
            os.close(fd)

    def announce(self, until: float) -> None:
        """A writer of this process waits for the lock, until ``until`` at the latest."""
        _SLOT.pack_into(self._map, 0, os.getpid(), until)

    def withdraw(self) -> None:
        """This process's waiting writer got the lock (or gave up)."""
        pid, _ = _SLOT.unpack_from(self._map, 0)
        if pid == os.getpid():
            _SLOT.pack_into(self._map, 0, 0, 0.0)

    def other_waiting(self) -> bool:
        """Whether a writer of another process is waiting for the lock now."""
        pid, until = _SLOT.unpack_from(self._map, 0)
        return pid not in (0, os.getpid()) and until > time.monotonic()

    def close(self) -> None:
        """Unmap the file."""
        self._map.close()


class InlineConnection(aiosqlite.Connection):
    """``aiosqlite.Connection`` that executes inline except for lock-taking statements."""

    busy_timeout: float = 5.0
    """Seconds ``BEGIN IMMEDIATE`` waits for another process's writer before it fails."""
    board: WaitBoard | None = None
    """Where the processes sharing the file take turns for the lock (none: no turns)."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if args and isinstance(args[0], str) and args[0].startswith("BEGIN IMMEDIATE"):
            return await self._begin_immediate(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def _begin_immediate(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Take the write lock without blocking the loop: try at once, else back off and
        retry; first let another process's writer that is waiting for it have it."""
        connection = self._conn
        deadline = time.monotonic() + self.busy_timeout
        given = begin_deadline.get()
        if given is not None:
            deadline = min(deadline, given)
        board = self.board
        if board is not None:
            polite = min(deadline, time.monotonic() + YIELD_CAP_SECONDS)
            while board.other_waiting() and time.monotonic() < polite:
                await asyncio.sleep(RETRY_CAP_SECONDS / 2)
        delay = 0.0005
        announced = False
        try:
            while True:
                connection.execute("PRAGMA busy_timeout=0")
                try:
                    return fn(*args, **kwargs)
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() > deadline:
                        raise
                finally:
                    timeout_ms = max(1, int(self.busy_timeout * 1000))
                    connection.execute(f"PRAGMA busy_timeout={timeout_ms}")
                if board is not None:
                    board.announce(time.monotonic() + 3 * RETRY_CAP_SECONDS)
                    announced = True
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, RETRY_CAP_SECONDS)
        finally:
            if announced and board is not None:
                board.withdraw()


def creator(path: str, *, busy_timeout: float, board: WaitBoard | None = None) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy's aiosqlite dialect opening ``path``, whose
    connections wait at most ``busy_timeout`` seconds for another process's lock, taking
    turns with the other processes through ``board`` when given."""

    async def connect() -> InlineConnection:
        connection = InlineConnection(
            partial(sqlite3.connect, path, check_same_thread=False, isolation_level=None),
            iter_chunk_size=64,
        )
        connection.busy_timeout = busy_timeout
        connection.board = board
        await connection
        return connection

    return connect
