"""Fast bulk statements: values encoded once per column type and handed to the driver.

SQLAlchemy's per-row parameter processing costs more than SQLite itself on batch intake,
so the hot insert paths encode values here and hand plain tuples to the driver. On
PostgreSQL a many-row insert can also go as one ``INSERT ... SELECT FROM unnest(arrays)``
statement instead of one execution per row (less server time a row), and a list of ids as
one array parameter (``= ANY($n)``) instead of one parameter per id. The measurements
behind these choices are in the README's "Benchmarks".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Numeric, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.types import UTCDateTime

Encoder = Callable[[Any], Any]
_UNSET = object()
_plans: dict[tuple[str, str, tuple[str, ...], str], tuple[str, list[Encoder | None]]] = {}


@lru_cache(maxsize=1024)
def _sqlite_time_text(value: datetime) -> str:
    # The same text form SQLAlchemy's SQLite DateTime writes, so comparisons stay ordered.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_time(value: datetime | None) -> str | None:
    # A batch shares one creation time across its rows: the cache makes that one call.
    return None if value is None else _sqlite_time_text(value)


def _pg_time(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


def _json(value: Any) -> str:
    if not value and isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, separators=(",", ":"))


def _sqlite_number(value: Decimal | float | int | None) -> float | None:
    return None if value is None else float(value)


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _encoder(column_type: Any, dialect: str) -> Encoder | None:
    if isinstance(column_type, UTCDateTime):
        return _sqlite_time if dialect == "sqlite" else _pg_time
    if isinstance(column_type, JSON) or getattr(column_type, "__visit_name__", "") == "JSON":
        return _json
    if dialect == "sqlite" and isinstance(column_type, Numeric):
        return _sqlite_number
    if dialect == "sqlite" and isinstance(column_type, Boolean):
        return _sqlite_bool
    return None


def _plan(
    table: Table, dialect: str, columns: tuple[str, ...], suffix: str = ""
) -> tuple[str, list[Encoder | None]]:
    key = (table.name, dialect, columns, suffix)
    plan = _plans.get(key)
    if plan is None:
        if dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
        else:
            marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}){suffix}"
        encoders = [_encoder(table.c[name].type, dialect) for name in columns]
        plan = _plans[key] = (sql, encoders)
    return plan


def _unnest_plan(
    conn: AsyncConnection, table: Table, columns: tuple[str, ...], suffix: str = ""
) -> tuple[str, list[Encoder | None]]:
    key = (table.name, "postgresql-unnest", columns, suffix)
    plan = _plans.get(key)
    if plan is None:
        arrays: list[str] = []
        picks: list[str] = []
        for i, name in enumerate(columns):
            column_type = table.c[name].type
            if _encoder(column_type, "postgresql") is _json:
                # JSON travels as text and is cast per element.
                arrays.append(f"${i + 1}::text[]")
                picks.append(f"c{i}::jsonb")
            else:
                arrays.append(f"${i + 1}::{column_type.compile(dialect=conn.dialect)}[]")
                picks.append(f"c{i}")
        names = ", ".join(f"c{i}" for i in range(len(columns)))
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {', '.join(picks)} "
            f"FROM unnest({', '.join(arrays)}) AS u({names}){suffix}"
        )
        encoders = [_encoder(table.c[name].type, "postgresql") for name in columns]
        plan = _plans[key] = (sql, encoders)
    return plan


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    suffix: str = "",
    set_based: bool = False,
) -> int | None:
    """INSERT ``rows`` (dicts with the same keys) into ``table`` in one driver executemany.

    ``suffix`` is SQL of ours appended to the statement (e.g. an ``ON CONFLICT`` clause).
    ``set_based``: on PostgreSQL, one statement inserting from arrays, one execution for
    all the rows instead of one each (an ``ON CONFLICT ... DO UPDATE`` suffix then needs
    rows of distinct keys: one statement may not update a row twice).
    Returns how many rows went in where the driver reports it (SQLite, and PostgreSQL
    set-based), else None.
    """
    if not rows:
        return 0
    columns = tuple(rows[0])
    if set_based and conn.dialect.name == "postgresql":
        sql, encoders = _unnest_plan(conn, table, columns, suffix)
        arrays = [[row[name] for row in rows] for name in columns]
        for index, encode in enumerate(encoders):
            if encode is not None:
                arrays[index] = _encode_column(arrays[index], encode)
        result = await conn.exec_driver_sql(sql, tuple(arrays))
        return result.rowcount if result.rowcount >= 0 else None
    pick = itemgetter(*columns)
    # Column by column: a batch's rows share most of their values (one creation time, no
    # metadata), and a value the row before had is not encoded again.
    columnar: list[Sequence[Any]] = (
        list(zip(*map(pick, rows), strict=True)) if len(columns) > 1 else [list(map(pick, rows))]
    )
    return await insert_columns(
        conn, table, dict(zip(columns, columnar, strict=True)), suffix=suffix
    )


async def insert_columns(
    conn: AsyncConnection,
    table: Table,
    columns: Mapping[str, Sequence[Any]],
    *,
    suffix: str = "",
    set_based: bool = False,
) -> int | None:
    """INSERT one row per position of ``columns`` (name → that column's values, all of one
    length) into ``table`` in one driver executemany; ``insert_rows`` for callers that
    have their values by column already (``set_based`` as there). Returns what
    ``insert_rows`` returns."""
    if set_based and conn.dialect.name == "postgresql":
        names = tuple(columns)
        sql, encoders = _unnest_plan(conn, table, names, suffix)
        arrays = [list(values) for values in columns.values()]
        for index, encode in enumerate(encoders):
            if encode is not None:
                arrays[index] = _encode_column(arrays[index], encode)
        result = await conn.exec_driver_sql(sql, tuple(arrays))
        return result.rowcount if result.rowcount >= 0 else None
    names = tuple(columns)
    values_by_column = list(columns.values())
    count = len(values_by_column[0])
    # A column that is NULL in every row is left out (its default is NULL): the driver
    # binds a NULL at more cost than the value of an ordinary column.
    null_default = _null_default_columns(table)
    kept = [
        index
        for index, name in enumerate(names)
        if not (
            name in null_default
            and values_by_column[index][0] is None
            and values_by_column[index].count(None) == count
        )
    ]
    if len(kept) < len(names):
        names = tuple(names[index] for index in kept)
        values_by_column = [values_by_column[index] for index in kept]
    sql, encoders = _plan(table, conn.dialect.name, names, suffix)
    for index, encode in enumerate(encoders):
        if encode is not None:
            values_by_column[index] = _encode_column(values_by_column[index], encode)
    values = list(zip(*values_by_column, strict=True))
    result = await conn.exec_driver_sql(sql, values)
    return result.rowcount if conn.dialect.name == "sqlite" else None


@lru_cache(maxsize=64)
def _null_default_columns(table: Table) -> frozenset[str]:
    """The columns of ``table`` an INSERT that leaves them out sets to NULL."""
    return frozenset(
        column.name
        for column in table.columns
        if column.nullable and column.server_default is None and column.default is None
    )


def _encode_column(values: Sequence[Any], encode: Encoder) -> list[Any]:
    if len(set(map(id, values))) == 1:  # one object in every row: encode it once
        return [encode(values[0])] * len(values)
    encoded: list[Any] = []
    last: Any = _UNSET
    last_encoded: Any = None
    for value in values:
        if value is not last:
            last, last_encoded = value, encode(value)
        encoded.append(last_encoded)
    return encoded


def encoder_for(table: Table, column: str, dialect: str) -> Encoder | None:
    """How a value of ``table.column`` is encoded for the driver (``None``: as it is)."""
    return _encoder(table.c[column].type, dialect)


def id_list_sql(dialect: str, count: int, position: int, array_type: str = "varchar") -> str:
    """The right side of ``<column> IN ...`` / ``= ANY`` for ``count`` ids.

    SQLite: ``IN (?, ..., ?)`` (the ids are ``count`` parameters); PostgreSQL:
    ``= ANY($position::<array_type>[])`` (the ids are one list parameter).
    """
    if dialect == "sqlite":
        return f"IN ({', '.join('?' * count)})"
    return f"= ANY(${position}::{array_type}[])"


def id_list_params(dialect: str, ids: Sequence[Any]) -> list[Any]:
    """The parameters ``id_list_sql`` expects for ``ids``."""
    return list(ids) if dialect == "sqlite" else [list(ids)]


def decode_sqlite_time(value: str | datetime | None) -> datetime | None:
    """A UTC datetime column as read raw from SQLite (text, naive UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


async def plan_for_actual_values(conn: AsyncConnection) -> None:
    """Plan every later statement of this transaction for its own values (PostgreSQL).

    A prepared statement's generic plan is made once, from the statistics of that moment,
    and kept until the next ANALYZE: one made while a table was nearly empty goes on
    scanning the whole table as it grows (a fresh database taking its first big batches
    slows down twentyfold: see the README's "Benchmarks"). A bulk transaction runs a few
    statements with many values each, so planning each one costs nothing beside its work.
    """
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
