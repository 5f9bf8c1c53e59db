"""Which database errors mean "unavailable for now" (503) and which stay what they are."""

from __future__ import annotations

import sqlite3

from asyncpg import exceptions as pg
from sqlalchemy import exc as sa_exc

from agentsms.store.faults import DatabaseUnavailable, is_unavailable


def wrapped(error: Exception) -> sa_exc.DBAPIError:
    """``error`` as SQLAlchemy raises it from a statement."""
    wrapper = sa_exc.OperationalError("INSERT ...", {}, error)
    wrapper.__cause__ = error
    return wrapper


def test_locked_busy_unreachable_and_timed_out_are_unavailable() -> None:
    for error in (
        wrapped(sqlite3.OperationalError("database is locked")),
        wrapped(pg.LockNotAvailableError("lock timeout")),
        wrapped(pg.QueryCanceledError("statement timeout")),
        wrapped(pg.ConnectionFailureError("connection failure")),
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        sa_exc.TimeoutError("QueuePool limit reached"),
        DatabaseUnavailable("locked", retry_after=5),
    ):
        assert is_unavailable(error), error


def test_other_database_errors_are_not() -> None:
    for error in (
        wrapped(sqlite3.OperationalError("no such table: media")),
        wrapped(pg.UniqueViolationError("duplicate key")),
        wrapped(pg.DeadlockDetectedError("deadlock")),  # a bug to see, not a retry to ask for
        sa_exc.IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE failed")),
        ValueError("bug"),
    ):
        assert not is_unavailable(error), error
