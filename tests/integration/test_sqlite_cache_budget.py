"""SQLite's page cache: one budget per process, half for its one writer connection, half
shared among its pooled readers."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import text

from agentsms.config import Settings
from agentsms.store.db import (
    MIN_SQLITE_CACHE_KIB,
    Database,
    sqlite_cache_kib,
    sqlite_cache_split,
)


def test_the_budget_is_shared_among_the_pool_but_never_below_sqlites_default() -> None:
    assert sqlite_cache_kib(64, 10) == 64 * 1024 // 10
    assert sqlite_cache_kib(64, 1) == 64 * 1024
    assert sqlite_cache_kib(4, 10) == MIN_SQLITE_CACHE_KIB


def test_the_setting_defaults_to_64_mib() -> None:
    assert Settings().sqlite_cache_mib == 64


async def _cache_sizes(db: Database, connections: int) -> list[int]:
    """``PRAGMA cache_size`` on ``connections`` connections held at once."""
    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(db.read()) for _ in range(connections)]
        return [int((await conn.execute(text("PRAGMA cache_size"))).scalar_one()) for conn in conns]


def test_the_writer_gets_half_and_the_readers_share_the_other_half() -> None:
    assert sqlite_cache_split(64, 10) == (32 * 1024, 32 * 1024 // 10)
    assert sqlite_cache_split(64, 1) == (32 * 1024, 32 * 1024)
    assert sqlite_cache_split(4, 10) == (MIN_SQLITE_CACHE_KIB, MIN_SQLITE_CACHE_KIB)


async def test_every_connection_gets_its_share(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}", pool_size=4, sqlite_cache_mib=32)
    try:
        sizes = await _cache_sizes(db, 4)
        async with db.write() as conn:
            writer = int((await conn.execute(text("PRAGMA cache_size"))).scalar_one())
    finally:
        await db.dispose()
    # Negative: KiB (positive would be pages). The one writer connection has half the
    # budget, the pooled readers share the other half.
    assert writer == -(32 * 1024 // 2)
    assert sizes == [-(32 * 1024 // 2 // 4)] * 4


async def test_every_write_is_made_on_the_same_connection(tmp_path: Path) -> None:
    """Its page cache stays warm: no other connection's commit or read resets it."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}", pool_size=4)
    seen: set[int] = set()
    try:
        for _ in range(5):
            async with db.write() as conn:
                raw = await conn.get_raw_connection()
                seen.add(id(raw.driver_connection))
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await db.dispose()
    assert len(seen) == 1


def _written(folder: Path) -> int:
    """Bytes of the database and its WAL (where the rows are until a checkpoint)."""
    return sum(p.stat().st_size for p in folder.glob("big.db*"))


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux's /proc")
async def test_reading_a_database_bigger_than_the_budget_on_every_connection_stays_within_it(
    tmp_path: Path,
) -> None:
    """Four connections each read all of a 25 MB database: their caches together grow the
    process by about the budget (8 MiB), not by four copies of the database."""
    path = tmp_path / "big.db"
    db = Database(f"sqlite+aiosqlite:///{path}", pool_size=4, sqlite_cache_mib=8)
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, pad TEXT)"))
            await conn.execute(
                text(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                    " WHERE i < 30000) INSERT INTO t SELECT i, hex(randomblob(400)) FROM n"
                )
            )
        assert _written(tmp_path) > 16 * 1024 * 1024
        before = _rss_bytes()
        async with AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(db.read()) for _ in range(4)]
            for conn in conns:
                total = (await conn.execute(text("SELECT sum(length(pad)) FROM t"))).scalar_one()
                assert total == 30000 * 800
            grown = _rss_bytes() - before
    finally:
        await db.dispose()
    # Four full caches would be 4 x 25 MB; the budget and some slack is far below that.
    assert grown < (8 + 12) * 1024 * 1024, f"grew by {grown / 2**20:.1f} MiB"
