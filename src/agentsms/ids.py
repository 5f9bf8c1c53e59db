"""Public ids: a short prefix and a time-ordered ULID, so ids sort by creation time."""

from __future__ import annotations

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
]


def new_id(prefix: Prefix) -> str:
    """Return ``<prefix>_<ULID>``: unique, URL-safe and sortable by creation time."""
    return f"{prefix}_{ULID()}"


def has_prefix(value: str, prefix: Prefix) -> bool:
    """Whether ``value`` looks like an id of the given kind."""
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
