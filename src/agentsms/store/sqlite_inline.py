"""An aiosqlite connection that runs SQLite calls on the event loop's own thread.

aiosqlite sends every call (execute, fetch, commit, ...) to a helper thread and back, and
on this workload the round trips cost more than SQLite's work: a single send made about
fifty of them. SQLite calls are sub-millisecond and, in WAL mode, readers never wait, so
running them inline is faster. ``InlineDialect`` goes further for the statements that
open and close transactions and savepoints: SQLAlchemy's dialect issues them straight on the
connection instead of as statements through the engine (whose ``begin`` event listener used
to make every statement dispatch the engine's execution events): a single send's
transaction costs a fifth less CPU. The one call that can wait is ``BEGIN IMMEDIATE`` (for
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
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.util import await_only

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
    """``aiosqlite.Connection`` whose calls run inline, on the event loop's thread."""

    busy_timeout: float = 5.0
    """Seconds ``BEGIN IMMEDIATE`` waits for another process's writer before it fails."""
    board: WaitBoard | None = None
    """Where the processes sharing the file take turns for the lock (none: no turns)."""
    immediate: bool = False
    """Whether this connection's transactions take the write lock as they begin (a
    writer's), with ``BEGIN IMMEDIATE``; else they begin deferred, with ``BEGIN``."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def begin(self) -> None:
        """Begin a transaction; a writer's takes the lock at once when it is free and no
        other process's writer waits for it, else waits for its turn without blocking the
        loop (through SQLAlchemy's greenlet: call it where ``await_only`` may)."""
        if not self.immediate:
            self._conn.execute("BEGIN")
            return
        if self.board is None or not self.board.other_waiting():
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error):
                    raise
        await_only(self._begin_immediate())

    async def _begin_immediate(self) -> None:
        """Take the write lock without blocking the loop: first let another process's writer
        that is waiting for it have it, then try, back off and retry."""
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
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() > deadline:
                        raise
                if board is not None:
                    board.announce(time.monotonic() + 3 * RETRY_CAP_SECONDS)
                    announced = True
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, RETRY_CAP_SECONDS)
        finally:
            if announced and board is not None:
                board.withdraw()


def _raw(dbapi_connection: Any) -> sqlite3.Connection:
    """The SQLite connection under SQLAlchemy's ``dbapi_connection``; a closed one raises
    the error SQLAlchemy's aiosqlite adapter would."""
    connection: sqlite3.Connection | None = dbapi_connection.driver_connection._connection
    if connection is None:
        raise sqlite3.OperationalError("no active connection")
    return connection


class InlineDialect(SQLiteDialect_aiosqlite):
    """SQLAlchemy's aiosqlite dialect for ``InlineConnection``s: transactions begin, commit
    and roll back, and savepoints are set, straight on the SQLite connection instead of as
    statements through the engine (an execution each, with its events and round trips)."""

    supports_statement_cache = True

    def do_begin(self, dbapi_connection: Any) -> None:
        _raw(dbapi_connection)  # closed: fail as the adapter would
        inline: InlineConnection = dbapi_connection.driver_connection
        inline.begin()

    def do_commit(self, dbapi_connection: Any) -> None:
        _raw(dbapi_connection).commit()

    def do_rollback(self, dbapi_connection: Any) -> None:
        _raw(dbapi_connection).rollback()

    def do_savepoint(self, connection: Any, name: str) -> None:
        _raw(connection.connection).execute(f'SAVEPOINT "{name}"')

    def do_rollback_to_savepoint(self, connection: Any, name: str) -> None:
        _raw(connection.connection).execute(f'ROLLBACK TO SAVEPOINT "{name}"')

    def do_release_savepoint(self, connection: Any, name: str) -> None:
        _raw(connection.connection).execute(f'RELEASE SAVEPOINT "{name}"')


DRIVER = "agentsms_inline"
"""The driver name of ``InlineDialect`` in SQLAlchemy URLs (``sqlite+agentsms_inline``)."""
registry.register(f"sqlite.{DRIVER}", __name__, InlineDialect.__name__)


def creator(
    path: str, *, busy_timeout: float, board: WaitBoard | None = None, immediate: bool = False
) -> Callable[[], Any]:
    """An ``async_creator`` for ``InlineDialect`` opening ``path``, whose connections wait at
    most ``busy_timeout`` seconds for another process's lock, taking turns with the other
    processes through ``board`` when given; ``immediate``: a writer's connections."""

    async def connect() -> InlineConnection:
        connection = InlineConnection(
            partial(sqlite3.connect, path, check_same_thread=False, isolation_level=None),
            iter_chunk_size=64,
        )
        connection.busy_timeout = busy_timeout
        connection.board = board
        connection.immediate = immediate
        await connection
        return connection

    return connect
