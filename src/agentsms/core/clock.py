"""Conversions between the API's time forms."""

from __future__ import annotations

from datetime import UTC, datetime

from agentsms.store.types import utcnow


def now() -> datetime:
    """The current time, timezone-aware UTC (the clock the store stamps rows with)."""
    return utcnow()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
