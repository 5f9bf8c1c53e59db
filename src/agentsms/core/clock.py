"""Conversions between the API's time forms."""

from __future__ import annotations

from datetime import UTC, datetime


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
