"""Integer ranges the databases store, and whole numbers read from text within them."""

from __future__ import annotations

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
