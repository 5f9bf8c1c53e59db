"""Bounds on the numbers agentsms accepts (what the databases store, what a field may hold),
and whole numbers read from text within them. Light on purpose: the SDK's models use it."""

from __future__ import annotations

from decimal import Decimal

INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def whole_number(text: str, most: int = INT64_MAX) -> int | None:
    """``text`` as a whole number from 0 to ``most`` (ASCII digits only), else ``None``."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)):
        return None
    value = int(text)
    return value if value <= most else None


MAX_PAGE_OFFSET = 1_000_000
"""The most rows a listing skips (``offset``): deeper pages go by cursor or by time."""

MAX_TIMER_SECONDS = 366 * 86_400
"""The longest ``timeout_seconds`` or ``warning_seconds``."""
MAX_VALIDITY_SECONDS = 366 * 86_400
MAX_SPACING_SECONDS = 86_400
MAX_THROUGHPUT_MPS = 1_000_000.0
"""A sender number's highest rate: above ``core.dispatch``'s strict pacing range it only
stands for "do not pace" (benchmarks and peer harnesses ask for 100,000)."""
MAX_PRICE_PER_SEGMENT = Decimal(1000)
"""Prices are stored with 6 decimal places, below a million."""
