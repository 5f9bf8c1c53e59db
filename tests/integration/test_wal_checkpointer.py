"""``store.checkpointer``: SQLite's WAL is copied into the database file by the
checkpoint thread, not inside the commits of requests."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentsms.store import migrate
from agentsms.store.bulk import insert_rows
from agentsms.store.checkpointer import SAFETY_AUTOCHECKPOINT_PAGES
from agentsms.store.db import Database
from agentsms.store.tables import jobs

ROWS_PER_WRITE = 200
WRITES = 5


def _jobs(kind: str, count: int) -> list[dict[str, object]]:
    payload = {"text": "x" * 400}  # about 100 pages of log per write
    return [
        {
            "kind": kind,
            "ref": f"r{i}",
            "payload": payload,
            "status": "queued",
            "run_at": 1.0,
            "attempts": 0,
            "max_attempts": 1,
            "created_at": 1.0,
        }
        for i in range(count)
    ]


def _size(path: Path) -> int:
    return path.stat().st_size


async def _wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "checkpoints.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def test_commits_leave_the_copy_to_the_checkpoint_thread(sqlite_file: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{sqlite_file}")
    assert db.checkpointer is not None
    size_before = _size(sqlite_file)
    try:
        async with db.read() as conn:
            # Reading starts no thread: there is nothing to copy.
            await conn.exec_driver_sql("SELECT 1")
        assert db.checkpointer.checkpoints == 0
        assert not db.checkpointer.running
        async with db.write() as conn:
            limit = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one()
        assert limit == SAFETY_AUTOCHECKPOINT_PAGES
        for n in range(WRITES):
            async with db.write() as conn:
                await insert_rows(conn, jobs, _jobs(f"ckpt.{n}", ROWS_PER_WRITE))
        # Far below SQLite's own 1,000-page threshold: only the thread copies these pages
        # into the database file (its size is the proof; the counter may trail it a moment).
        checkpointer = db.checkpointer
        await _wait_for(
            lambda: checkpointer.checkpoints >= 1 and _size(sqlite_file) > size_before + 200_000
        )
        assert db.checkpointer.running
    finally:
        await db.dispose()
    assert not db.checkpointer.running
    connection = sqlite3.connect(sqlite_file)
    try:
        count = connection.execute("SELECT count(*) FROM jobs WHERE kind LIKE 'ckpt.%'")
        assert count.fetchone()[0] == ROWS_PER_WRITE * WRITES
    finally:
        connection.close()


async def test_a_burst_of_commits_shares_checkpoints(sqlite_file: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{sqlite_file}")
    assert db.checkpointer is not None
    try:
        for n in range(50):
            async with db.write() as conn:
                await insert_rows(conn, jobs, _jobs(f"burst.{n}", 5))
        checkpointer = db.checkpointer
        await _wait_for(lambda: checkpointer.checkpoints >= 1)
    finally:
        await db.dispose()
    # 50 commits inside a few coalescing windows: far fewer checkpoints than commits.
    assert 1 <= checkpointer.checkpoints < 25


async def test_in_memory_databases_have_no_checkpointer() -> None:
    db = Database("sqlite+aiosqlite://")
    try:
        assert db.checkpointer is None
    finally:
        await db.dispose()
