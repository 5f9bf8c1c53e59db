"""The database handle: one engine, short write and read transactions.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so two writers never deadlock
upgrading a read lock, and writers inside one process queue on an asyncio lock instead of
spinning in SQLite's busy handler. A SQLite file's WAL is checkpointed on a thread of its
own after writes (``store.checkpointer``). PostgreSQL gets ordinary transactions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, exc, make_url, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from agentsms.store import sqlite_inline
from agentsms.store.checkpointer import SAFETY_AUTOCHECKPOINT_PAGES, WalCheckpointer

_IMMEDIATE = "agentsms_begin_immediate"
_IDLE_SINCE = "agentsms_idle_since"
PING_AFTER_IDLE_SECONDS = 1.0
SQLITE_CACHE_KIB = 32 * 1024
"""Page cache per SQLite connection (SQLite's default is 2 MiB)."""


class Database:
    """Owns the engine. ``write()`` and ``read()`` yield a connection inside a transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.checkpointer: WalCheckpointer | None = None
        if self.is_sqlite:
            path = make_url(url).database or ":memory:"
            if path != ":memory:" and not path.startswith("file:"):
                self.checkpointer = WalCheckpointer(path)
            self.engine: AsyncEngine = create_async_engine(
                url,
                poolclass=pool.AsyncAdaptedQueuePool,
                pool_size=pool_size,
                max_overflow=10,
                async_creator=sqlite_inline.creator(path),
                # Our transactions always end in COMMIT or ROLLBACK; no reset round trip.
                pool_reset_on_return=None,
                # Each connection has its own page cache: reuse the warmest one first.
                pool_use_lifo=True,
            )
            _configure_sqlite(self.engine, checkpoints_elsewhere=self.checkpointer is not None)
        else:
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=10)
            _ping_when_idle(self.engine)
        self._writer = self.engine.execution_options(**{_IMMEDIATE: True})

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block exits without an error."""
        if self._write_lock is None:
            async with self._writer.begin() as conn:
                yield conn
            return
        async with self._write_lock, self._writer.begin() as conn:
            yield conn
        if self.checkpointer is not None:
            self.checkpointer.written()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot)."""
        async with self.engine.connect() as conn:
            yield conn
            await conn.rollback()

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
        await self.engine.dispose()


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pre-ping a pooled connection only when it sat idle for ``PING_AFTER_IDLE_SECONDS``.

    ``pool_pre_ping`` pings on every checkout: a round trip per transaction, a tenth of a
    busy worker's time. A connection in steady use is known to be alive; one that waited
    (through a server restart, perhaps) is checked before use and replaced if dead.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in steady use
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection is dead: {error!r}") from error
        if not alive:
            raise exc.DisconnectionError("pooled connection is dead")


def _configure_sqlite(engine: AsyncEngine, *, checkpoints_elsewhere: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        if checkpoints_elsewhere:
            # The checkpointer's thread keeps the log short; this is only its backstop.
            cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
