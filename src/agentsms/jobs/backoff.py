"""Retry delays: exponential with full jitter, never sooner than a provider's Retry-After.

Also the capped backoff of loops that keep failing, and their one-line logging.
"""

from __future__ import annotations

import random
import sqlite3

import asyncpg
import structlog
from sqlalchemy import exc

log = structlog.get_logger("agentsms.worker")


def retry_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


class Backoff:
    """Capped exponential delays for a loop retrying the same thing (``next_delay``)."""

    def __init__(self, *, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        """The pause after one more failure in a row: first, 2 x first, ... up to the cap."""
        self.failures += 1
        return min(self.cap, self.first * 2.0 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0


_UNAVAILABLE = (
    OSError,
    TimeoutError,
    sqlite3.OperationalError,
    exc.OperationalError,
    exc.InterfaceError,
    asyncpg.exceptions.InterfaceError,  # the connection is gone
    asyncpg.exceptions.OperatorInterventionError,  # shut down, cannot connect now
    asyncpg.exceptions.InvalidCatalogNameError,  # no such database
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database cannot be reached or used."""
    seen: BaseException | None = error
    for _ in range(8):  # the driver's error, under SQLAlchemy's, under ours
        if seen is None:
            break
        if isinstance(seen, _UNAVAILABLE):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def log_failure(event: str, error: BaseException, **fields: object) -> None:
    """One line for an unavailable database, the traceback for anything else."""
    if is_unavailable(error):
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        log.warning(event, error=f"{type(error).__name__}: {reason}", **fields)
    else:
        log.exception(event, **fields)
