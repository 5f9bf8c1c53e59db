"""A SQLite write transaction's wait and hold are measured (``/metrics``), and one that held
the write lock 100 ms or more is logged with the code that ran it."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text
from structlog.testing import capture_logs

from agentsms import metrics
from agentsms.store.db import LONG_WRITE_SECONDS, Database


def _sample(name: str, le: str) -> float:
    return metrics.registry.get_sample_value(f"{name}_bucket", {"le": le}) or 0.0


def _hold_the_lock(seconds: float) -> None:
    time.sleep(seconds)  # as a long statement or a long computation would


async def _write(db: Database, hold: float) -> None:
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO probe (n) VALUES (1)"))
        _hold_the_lock(hold)


async def test_a_long_write_is_logged_with_its_caller_and_measured(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'long.db'}")
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE probe (n INTEGER)"))
        hold = "agentsms_db_write_hold_seconds"
        long_before = _sample(hold, "+Inf") - _sample(hold, "0.1")
        short_before = _sample(hold, "0.1")
        waits_before = _sample("agentsms_db_write_wait_seconds", "+Inf")
        with capture_logs() as logs:
            await _write(db, 0.0)
            await _write(db, LONG_WRITE_SECONDS + 0.06)
        long_writes = [entry for entry in logs if entry["event"] == "db.long_write"]
        assert len(long_writes) == 1, logs
        [entry] = long_writes
        assert entry["log_level"] == "warning"
        assert entry["seconds"] >= LONG_WRITE_SECONDS + 0.05  # logged to the millisecond
        assert 0 <= entry["cpu_seconds"] < LONG_WRITE_SECONDS  # asleep, not computing
        assert any(frame.endswith(" _write") for frame in entry["at"]), entry["at"]
        assert _sample(hold, "+Inf") - _sample(hold, "0.1") - long_before == 1
        assert _sample(hold, "0.1") - short_before == 1
        assert _sample("agentsms_db_write_wait_seconds", "+Inf") - waits_before == 2
    finally:
        await db.dispose()
