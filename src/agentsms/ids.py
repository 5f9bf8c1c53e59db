"""Public ids: a short prefix and a time-ordered ULID, so ids sort by creation time."""

from __future__ import annotations

import os
import time
from typing import Literal

from ulid import ULID

Prefix = Literal[
    "msg",
    "conv",
    "batch",
    "num",
    "key",
    "evt",
    "proj",
    "acct",
    "tpl",
    "persona",
    "pw",
    "disp",
    "xs",
    "rxn",
    "ct",
]


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_COUNTER_LIMIT = len(_PAIRS) ** 2
_SHIFTS = range(120, -1, -10)
_RANDOM_BITS = 80
_last = 0


def new_id(prefix: Prefix) -> str:
    """Return ``<prefix>_<ULID>``: unique, URL-safe and sortable by creation time.

    Monotonic within the process, as python-ulid's are: an id made in the same millisecond
    as the previous one counts up from its randomness. (Encoded here: python-ulid's
    ``ULID()`` costs several times more, and intake makes one per message.)
    """
    global _last
    value = (time.time_ns() // 1_000_000) << _RANDOM_BITS
    if value <= _last:
        value = _last + 1
    else:
        value |= int.from_bytes(os.urandom(10))
    _last = value
    pairs = _PAIRS
    return prefix + "_" + "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])


def new_ids(prefix: Prefix, count: int) -> list[str]:
    """``count`` ids as ``new_id`` makes them, in ascending order, made in bulk.

    One ULID's time and its first 60 random bits are shared; the last 20 bits count up, so
    the ids stay unique, valid ULIDs and sorted, at a fraction of the cost per id.
    """
    if count <= 1:
        return [new_id(prefix) for _ in range(count)]
    ids: list[str] = []
    while count > 0:
        chunk = min(count, _COUNTER_LIMIT)
        # The time from a fresh ULID, then 60 fresh random bits (a ULID generated in the same
        # millisecond would only count up from the previous one's randomness).
        bits = int.from_bytes(os.urandom(8)) >> 4
        randomness = "".join(_CROCKFORD[(bits >> shift) & 31] for shift in range(55, -1, -5))
        stem = f"{prefix}_{str(ULID())[:10]}{randomness}"
        pairs = _PAIRS
        ids.extend(stem + pairs[i >> 10] + pairs[i & 1023] for i in range(chunk))
        count -= chunk
    return ids


def id_before(prefix: Prefix, moment: float) -> str:
    """The id just below every id of ``prefix`` made at or after ``moment`` (epoch seconds):
    a cursor for "created since"."""
    value = max(0, (int(moment * 1000) << _RANDOM_BITS) - 1)
    return prefix + "_" + "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def has_prefix(value: str, prefix: Prefix) -> bool:
    """Whether ``value`` looks like an id of the given kind."""
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
