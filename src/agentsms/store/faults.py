"""Which database failures mean "unavailable for now": locked, busy, unreachable, timed out.

``Database.write()`` and ``read()`` turn such a failure into ``DatabaseUnavailable``, which
the API answers with ``503`` and ``Retry-After``: the request was not carried out and may be
sent again. Every other database error (a constraint, a bug) stays what it is.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc


class DatabaseUnavailable(Exception):
    """The database could not carry out the work in time (locked, busy or unreachable).

    Nothing of the failed transaction was stored. ``retry_after`` is a fair wait in seconds.
    """

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


# SQLite: another connection holds the lock we need.
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
# PostgreSQL SQLSTATEs: lock_not_available (lock_timeout), query_canceled (statement_timeout),
# admin/crash shutdown, cannot_connect_now, too_many_connections; class 08 is the connection.
# invalid_catalog_name (the database is gone); class 28 (authorization) is prefix-matched.
_POSTGRES_STATES = frozenset({"55P03", "57014", "57P01", "57P02", "57P03", "53300", "3D000"})
# asyncpg's own "cannot connect" errors (named, so this module needs no driver import).
_UNREACHABLE_DRIVER_ERRORS = frozenset(
    {"CannotConnectNowError", "ConnectionFailureError", "ConnectionDoesNotExistError"}
)


def unavailable_cause(error: BaseException) -> bool:
    """Whether ``error`` itself (not its causes) says the database is unavailable for now."""
    if isinstance(
        error,
        DatabaseUnavailable
        | sa_exc.TimeoutError  # no pooled connection came free in time
        | sa_exc.DisconnectionError
        | ConnectionError
        | socket.gaierror
        | TimeoutError,  # asyncpg's connect timeout
    ):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sqlite3.OperationalError):
        return any(text in str(error) for text in _SQLITE_BUSY)
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str) and (state in _POSTGRES_STATES or state.startswith(("08", "28"))):
        return True
    return type(error).__name__ in _UNREACHABLE_DRIVER_ERRORS


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it was raised from (``__cause__``, a wrapper's ``orig``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = current.__cause__ or (orig if isinstance(orig, BaseException) else None)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` comes from the database being locked, busy or unreachable."""
    return any(unavailable_cause(cause) for cause in causes(error))
