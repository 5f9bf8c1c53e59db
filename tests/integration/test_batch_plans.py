"""Batch intake on PostgreSQL does not slow down as its tables grow from empty (no plan
made for an empty table is reused after it grew)."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import make_url

from agentsms.config import Settings
from agentsms.core import projects
from agentsms.core.numbers import add_simulator_number
from agentsms.core.sending import BatchSpec, OutboundSpec, Outbox, SendPolicy
from agentsms.store import migrate
from agentsms.store.db import Database
from tests.databases import create_postgres_database, drop_postgres_database

POSTGRES_URL = os.environ.get("AGENTSMS_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs AGENTSMS_TEST_POSTGRES_URL")


def _batch(first: int, count: int) -> BatchSpec:
    numbers = range(2_000_000 + first, 2_000_000 + first + count)
    return BatchSpec(items=[OutboundSpec(to=f"+1415{n}", body="hi") for n in numbers])


async def test_postgres_batches_stay_as_fast_as_their_table_grows() -> None:
    assert POSTGRES_URL is not None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{make_url(POSTGRES_URL).database}_plans_{worker}"
    url = await create_postgres_database(POSTGRES_URL, name)
    # One connection, as a busy API process reuses its own: its prepared statements (and
    # any generic plan PostgreSQL settles on after five runs) live as long as it does.
    db = Database(url, pool_size=1)
    outbox = Outbox(SendPolicy.from_settings(Settings(database_url=url)))
    try:
        await migrate.upgrade_async(url)
        async with db.write() as conn:
            project, _ = await projects.create_project(conn, "plans")
            await add_simulator_number(conn, project.id, "+14155550100")
        sent = 0
        for _ in range(8):  # while the tables are nearly empty
            async with db.write() as conn:
                await outbox.send_batch(conn, project.id, _batch(sent, 3))
            sent += 3
        seconds: list[float] = []
        for _ in range(8):  # the tables grow to 40,000 rows, with no ANALYZE in between
            started = time.perf_counter()
            async with db.write() as conn:
                result = await outbox.send_batch(conn, project.id, _batch(sent, 5_000))
            seconds.append(time.perf_counter() - started)
            assert len(result.message_ids) == 5_000
            sent += 5_000
    finally:
        await db.dispose()
        await drop_postgres_database(POSTGRES_URL, name)
    # With plans made for an empty table the last batch took 10x the second one; planned
    # for their values, about as long.
    assert seconds[-1] < 3 * seconds[1], seconds
