"""Repositories: every SQL statement agentsms runs, grouped by table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import RowMapping

Row = Mapping[str, Any]
"""A row read by column name."""


def one(row: RowMapping | None) -> Row | None:
    """SQLAlchemy types mapping keys loosely; every key we read is a column name."""
    return cast(Row | None, row)


def many(rows: Iterable[RowMapping]) -> Sequence[Row]:
    return cast(Sequence[Row], list(rows))
