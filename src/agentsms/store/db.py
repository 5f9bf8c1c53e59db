"""The database handle: one engine, short write and read transactions.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so two writers never deadlock
upgrading a read lock, and writers inside one process queue on an asyncio lock instead of
spinning in SQLite's busy handler. A SQLite file's WAL is checkpointed on a thread of its
own after writes (``store.checkpointer``). PostgreSQL gets ordinary transactions.

Every wait is bounded by ``timeout`` (``AGENTSMS_DATABASE_TIMEOUT_SECONDS``): a writer's
turn inside the process, SQLite's lock, a pooled connection, a new PostgreSQL connection and
PostgreSQL's row and table locks (``lock_timeout``). A transaction that fails because the
database is locked, busy or unreachable raises ``DatabaseUnavailable`` (see
``store.faults``), having stored nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy import event, exc, make_url, pool
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from agentsms.metrics import db_write_hold, db_write_wait
from agentsms.store import sqlite_inline
from agentsms.store.checkpointer import SAFETY_AUTOCHECKPOINT_PAGES, WalCheckpointer
from agentsms.store.faults import DatabaseUnavailable, is_unavailable

_IDLE_SINCE = "agentsms_idle_since"
PING_AFTER_IDLE_SECONDS = 1.0
DEFAULT_SQLITE_CACHE_MIB = 64
"""The SQLite page cache of one process, shared out among its pooled connections."""
MIN_SQLITE_CACHE_KIB = 2 * 1024
"""The least page cache a connection gets (SQLite's own default)."""
DEFAULT_TIMEOUT_SECONDS = 5.0
POSTGRES_POOL_EXTRA = 10
"""PostgreSQL connections a process keeps beyond ``pool_size`` (SQLite's readers may open
as many more while busy)."""
LONG_WRITE_SECONDS = 0.1
"""A write transaction held this long is logged (``db.long_write``) with where it ran: on
SQLite it kept every other writer, in this process and the others, waiting."""

log = structlog.get_logger("agentsms.store")


class Database:
    """Owns the engine. ``write()`` and ``read()`` yield a connection inside a transaction."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        sqlite_cache_mib: int = DEFAULT_SQLITE_CACHE_MIB,
    ) -> None:
        self.url = url
        self.timeout = timeout
        """The longest any one wait for the database may take (lock, connection)."""
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.checkpointer: WalCheckpointer | None = None
        self._board: sqlite_inline.WaitBoard | None = None
        if self.is_sqlite:
            path = make_url(url).database or ":memory:"
            if path != ":memory:" and not path.startswith("file:"):
                self.checkpointer = WalCheckpointer(path)
                self._board = sqlite_inline.WaitBoard(path)
            writer_kib, reader_kib = sqlite_cache_split(sqlite_cache_mib, pool_size)
            self.engine: AsyncEngine = self._sqlite_engine(
                path, pool_size=pool_size, max_overflow=10, cache_kib=reader_kib, writer=False
            )
            # The process's writes take turns (the lock above): one connection makes them
            # all, so its page cache holds what every write touches (the indexes' hot and
            # random pages), and no read resets it (another connection's commit would).
            writer: AsyncEngine = self._sqlite_engine(
                path, pool_size=1, max_overflow=0, cache_kib=writer_kib, writer=True
            )
        else:
            # As many connections at most as SQLite's readers, but none closed on return:
            # an overflow connection closed when the pool had ``pool_size`` idle ones was
            # opened again at the next burst, and a new PostgreSQL connection costs a server
            # process, asyncpg's type introspection and every statement prepared anew (the
            # workers of the PostgreSQL soak opened several a second that way).
            self.engine = create_async_engine(
                url,
                pool_size=pool_size + POSTGRES_POOL_EXTRA,
                max_overflow=0,
                pool_timeout=timeout,
                connect_args={
                    "timeout": timeout,
                    "server_settings": {"lock_timeout": str(_milliseconds(timeout))},
                },
            )
            _ping_when_idle(self.engine)
            writer = self.engine
        # The pool's connections, each statement committing on its own (write_statement).
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._writer = writer
        self._scanner: AsyncEngine | None = None

    def _sqlite_engine(
        self, path: str, *, pool_size: int, max_overflow: int, cache_kib: int, writer: bool
    ) -> AsyncEngine:
        engine = create_async_engine(
            make_url(self.url).set(drivername=f"sqlite+{sqlite_inline.DRIVER}"),
            poolclass=pool.AsyncAdaptedQueuePool,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=self.timeout,
            async_creator=sqlite_inline.creator(
                path, busy_timeout=self.timeout, board=self._board, immediate=writer
            ),
            # Our transactions always end in COMMIT or ROLLBACK; no reset round trip.
            pool_reset_on_return=None,
            # Each connection has its own page cache: reuse the warmest one first.
            pool_use_lifo=True,
        )
        _configure_sqlite(
            engine,
            checkpoints_elsewhere=self.checkpointer is not None,
            # A writer waits for the lock in ``InlineConnection.begin``, never in SQLite's
            # busy handler (which would hold the event loop).
            busy_ms=0 if writer else _milliseconds(self.timeout),
            cache_kib=cache_kib,
        )
        return engine

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """The engines statements run on: ``engine``, and on SQLite the writer's own."""
        if self._writer is self.engine:
            return (self.engine,)
        return (self.engine, self._writer)

    @property
    def retry_after(self) -> int:
        """Seconds a client refused for an unavailable database is asked to wait."""
        return max(1, math.ceil(self.timeout))

    def unavailable(self, reason: str) -> DatabaseUnavailable:
        """``DatabaseUnavailable`` for ``reason``, with this database's ``retry_after``."""
        return DatabaseUnavailable(reason, retry_after=self.retry_after)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block exits without an error.

        ``DatabaseUnavailable`` when it cannot run or commit: locked, busy or unreachable.
        """
        try:
            if self._write_lock is None:
                async with self._writer.begin() as conn:
                    yield conn
                return
            # One turn of the event loop first: a task that writes transaction after
            # transaction (statements run inline) would otherwise never let it run.
            await asyncio.sleep(0)
            asked = time.monotonic()
            deadline = asked + self.timeout
            try:
                async with asyncio.timeout(self.timeout):
                    await self._write_lock.acquire()
            except TimeoutError:
                raise self.unavailable(
                    f"the database is busy: no write turn within {self.timeout:g} s"
                ) from None
            # The wait for SQLite's lock ends by the same deadline as the wait for the turn.
            token = sqlite_inline.begin_deadline.set(deadline)
            try:
                async with self._writer.begin() as conn:
                    begun = time.monotonic()
                    cpu = time.process_time()
                    db_write_wait.observe(begun - asked)
                    yield conn
            finally:
                sqlite_inline.begin_deadline.reset(token)
                self._write_lock.release()
            _held(begun, cpu)
        except Exception as error:
            if isinstance(error, DatabaseUnavailable) or not is_unavailable(error):
                raise
            raise self.unavailable(_describe(error)) from error
        if self.checkpointer is not None:
            self.checkpointer.written()

    @asynccontextmanager
    async def write_statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a block that writes with one statement, which commits on its own.

        On PostgreSQL the statement runs outside BEGIN and COMMIT (autocommit): one round
        trip instead of three, and a statement is atomic by itself. Every statement run on
        it commits on its own, so a block that needs two together uses ``write()``. On
        SQLite it is ``write()``. ``DatabaseUnavailable`` as ``write()``.
        """
        if self._write_lock is not None:
            async with self.write() as conn:
                yield conn
            return
        try:
            async with self._autocommit.connect() as conn:
                yield conn
        except Exception as error:
            if isinstance(error, DatabaseUnavailable) or not is_unavailable(error):
                raise
            raise self.unavailable(_describe(error)) from error

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot); ``DatabaseUnavailable`` when the
        database is unreachable."""
        async with self._reading(self.engine) as conn:
            yield conn

    @asynccontextmanager
    async def scan(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction for a long query (a count over a big table).

        On a SQLite file its statements run on a thread of their own (plain aiosqlite,
        one connection) instead of on the event loop like every other statement here:
        SQLite releases the GIL while it works, so the process goes on serving meanwhile.
        PostgreSQL statements never hold the loop; there it is ``read()``.
        """
        if self.checkpointer is None:
            engine = self.engine
        else:
            if self._scanner is None:
                self._scanner = create_async_engine(
                    self.url, pool_size=1, max_overflow=0, pool_timeout=self.timeout
                )
            engine = self._scanner
        async with self._reading(engine) as conn:
            yield conn

    @asynccontextmanager
    async def _reading(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        try:
            async with engine.connect() as conn:
                yield conn
                await conn.rollback()
        except Exception as error:
            if isinstance(error, DatabaseUnavailable) or not is_unavailable(error):
                raise
            raise self.unavailable(_describe(error)) from error

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
        if self._scanner is not None:
            await self._scanner.dispose()
        if self._writer is not self.engine:
            await self._writer.dispose()
        await self.engine.dispose()


def _held(begun: float, cpu: float) -> None:
    """Record how long a SQLite write transaction held the lock; log it when that was long,
    with the process's CPU time meanwhile (far less than the time held: the process waited
    for a core) and the stack of the code that ran it (the caller of this block's exit)."""
    held = time.monotonic() - begun
    db_write_hold.observe(held)
    if held >= LONG_WRITE_SECONDS:
        stack = traceback.extract_stack(limit=14)[:-3]
        log.warning(
            "db.long_write",
            seconds=round(held, 3),
            cpu_seconds=round(time.process_time() - cpu, 3),
            at=[f"{entry.filename}:{entry.lineno} {entry.name}" for entry in stack],
        )


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _describe(error: BaseException) -> str:
    """Why the database is unavailable, in words a client may read (no internals)."""
    text = str(error).lower()
    if "lock" in text or "busy" in text:
        return "the database is locked by another writer"
    if isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower():
        return "the database did not answer in time"
    return "the database cannot be reached"


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


def sqlite_cache_split(budget_mib: int, pool_size: int) -> tuple[int, int]:
    """The page cache (KiB) of a process's one SQLite writer connection and of each of its
    ``pool_size`` pooled readers: half of ``budget_mib`` each way.

    Intake and the worker write on every request and job, and a write touches a random leaf
    of several indexes (a contact's, a conversation's, an idempotency key's) besides their
    hot ends: the writer's cache is what keeps that from reading the file as the tables
    grow. Readers share the rest.
    """
    half = budget_mib * 1024 // 2
    return max(MIN_SQLITE_CACHE_KIB, half), sqlite_cache_kib(budget_mib, pool_size, share=half)


def sqlite_cache_kib(budget_mib: int, pool_size: int, *, share: int | None = None) -> int:
    """Each connection's page cache: ``budget_mib`` shared among the ``pool_size`` pooled
    connections, at least SQLite's default.

    Every SQLite connection has a cache of its own that fills up to its size as the database
    grows past it and stays full: a fixed size per connection would let a process's memory
    grow with its pool (32 MiB each once made it 280 MB and rising under load).
    """
    total = budget_mib * 1024 if share is None else share
    return max(MIN_SQLITE_CACHE_KIB, total // max(1, pool_size))


def _configure_sqlite(
    engine: AsyncEngine, *, checkpoints_elsewhere: bool, busy_ms: int, cache_kib: int
) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        if checkpoints_elsewhere:
            # The checkpointer's thread keeps the log short; this is only its backstop.
            cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_AUTOCHECKPOINT_PAGES}")
        cursor.close()
