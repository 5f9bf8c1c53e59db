"""Retry delays: exponential with full jitter, never sooner than a provider's Retry-After."""

from __future__ import annotations

import email.utils
import math
import random
import time


def retry_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


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
