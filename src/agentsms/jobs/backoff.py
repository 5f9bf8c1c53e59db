"""Retry delays: exponential with full jitter, never sooner than a provider's Retry-After.

Also the capped backoff of loops that keep failing, and their one-line logging.
"""

from __future__ import annotations

import email.utils
import math
import random
import time

import structlog

from agentsms.store.faults import is_unavailable

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


def log_failure(event: str, error: BaseException, **fields: object) -> None:
    """One line for an unavailable database, the traceback for anything else."""
    if is_unavailable(error):
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        log.warning(event, error=f"{type(error).__name__}: {reason}", **fields)
    else:
        log.exception(event, **fields)


def retry_after_seconds(value: str | None, *, cap: float) -> float | None:
    """A ``Retry-After`` header (delay seconds or an HTTP-date) as seconds from now, at most
    ``cap``; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None if math.isnan(seconds) else cap
    return min(max(0.0, seconds), cap)
