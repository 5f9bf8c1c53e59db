"""Processes sharing a SQLite file take turns for its write lock (``store.sqlite_inline``):
a writer of another process that found the lock taken goes next, even beside a process
that writes transaction after transaction (the API's intake beside a busy worker)."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

from agentsms.store.db import Database

HOLD_SECONDS = 0.03
"""How long each of the other process's transactions holds the lock."""

HOG = """
import asyncio, sys, time
from sqlalchemy import text
from agentsms.store.db import Database
from agentsms.store import sqlite_inline

if sys.argv[3] == "rude":
    sqlite_inline.WaitBoard.other_waiting = lambda self: False

async def main() -> None:
    db = Database(sys.argv[1])
    hold = float(sys.argv[2])
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO turns_probe (who) VALUES ('ready')"))
    end = time.monotonic() + 20
    while time.monotonic() < end:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO turns_probe (who) VALUES ('hog')"))
            time.sleep(hold)  # work that holds the loop and the lock, as inline SQL does
    await db.dispose()

asyncio.run(main())
"""


async def _waits_beside_a_hog(tmp_path: Path, manners: str) -> list[float]:
    path = tmp_path / f"turns-{manners}.db"
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url, timeout=10.0)
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE turns_probe (who TEXT)"))
    hog = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOG, url, str(HOLD_SECONDS), manners
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            async with db.read() as conn:
                ready = (await conn.execute(text("SELECT count(*) FROM turns_probe"))).scalar()
            if ready:
                break
            assert time.monotonic() < deadline, "the other process never started writing"
            assert hog.returncode is None, "the other process died"
            await asyncio.sleep(0.05)
        waits = []
        for _ in range(20):
            started = time.monotonic()
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO turns_probe (who) VALUES ('us')"))
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.01)
        assert hog.returncode is None, "the other process stopped writing"
        return waits
    finally:
        hog.terminate()
        await hog.wait()
        await db.dispose()


async def test_a_waiting_writer_goes_next_beside_a_process_writing_back_to_back(
    tmp_path: Path,
) -> None:
    waits = await _waits_beside_a_hog(tmp_path, "polite")
    # One of the other process's transactions (plus scheduling) at most, not a queue of them.
    assert statistics.median(waits) < 3 * HOLD_SECONDS, waits
    assert max(waits) < 0.5, waits
