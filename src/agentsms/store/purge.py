"""Deleting many old rows without holding the database or the event loop.

A purge that deletes every expired row in one statement holds SQLite's write lock (and,
as SQLite runs on the event loop, the whole process) for as long as the delete takes: on
a large database, seconds. Here a purge deletes at most ``CHUNK`` rows per statement and
per transaction, found through an index, and yields to the event loop between chunks, so
requests and jobs take their turns in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import ColumnElement, Delete, Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.db import Database

CHUNK = 500
"""Rows deleted per statement (and per transaction)."""
PAUSE_SECONDS = 0.005
"""Pause between chunks: other writers queued meanwhile get the write lock first."""


def chunk_delete(table: Table, condition: ColumnElement[bool], limit: int) -> Delete:
    """``DELETE`` of at most ``limit`` rows of ``table`` matching ``condition``, by primary
    key through a ``LIMIT``-ed subquery (works on SQLite and PostgreSQL alike)."""
    keys: Sequence[ColumnElement[object]] = list(table.primary_key.columns)
    chosen = select(*keys).where(condition).limit(limit)
    if len(keys) == 1:
        return delete(table).where(keys[0].in_(chosen.scalar_subquery()))
    return delete(table).where(tuple_(*keys).in_(chosen))


async def in_chunks(
    db: Database,
    delete_chunk: Callable[[AsyncConnection, int], Awaitable[int]],
    *,
    chunk: int = CHUNK,
    pause: float = PAUSE_SECONDS,
) -> int:
    """Run ``delete_chunk(conn, chunk)`` (which deletes at most ``chunk`` rows and returns
    how many it deleted) in its own write transaction until it deletes fewer than
    ``chunk``; returns the total deleted."""
    total = 0
    while True:
        async with db.write() as conn:
            deleted = await delete_chunk(conn, chunk)
        total += deleted
        if deleted < chunk:
            return total
        await asyncio.sleep(pause)
