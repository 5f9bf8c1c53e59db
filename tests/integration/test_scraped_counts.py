"""``/metrics`` counts messages by status at most every so often, off the event loop."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import text

from agentsms.api.scraped_counts import ScrapedCounts
from agentsms.store.db import Database
from tests.conftest import Gateway

SLOW_COUNT = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)"
    " SELECT count(*) FROM c"
)


async def _send(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages", json={"to": "+14155553301", "body": "m", "send_at": 4102444800}
    )
    assert response.status_code == 202


async def test_counts_are_reused_while_young_and_shared_by_concurrent_scrapes(
    gateway: Gateway,
) -> None:
    counts = ScrapedCounts(gateway.db, max_age=60.0)
    first, second = await asyncio.gather(counts.by_status(), counts.by_status())
    assert first is second  # one count served both
    counted_at = counts.counted_at
    await _send(gateway)
    assert await counts.by_status() == first  # still young: not counted again
    assert counts.counted_at == counted_at

    counts.max_age = 0.0
    fresh = await counts.by_status()
    assert fresh["scheduled"] == first.get("scheduled", 0) + 1
    assert counts.counted_at is not None
    assert counted_at is not None
    assert counts.counted_at > counted_at


async def test_a_long_scan_on_sqlite_does_not_hold_the_event_loop(backend_url: str) -> None:
    if not backend_url.startswith("sqlite"):
        pytest.skip("PostgreSQL statements never run on the event loop")
    db = Database(backend_url)
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.sleep(0.02)
        started = loop.time()
        async with db.scan() as conn:
            assert (await conn.execute(SLOW_COUNT)).scalar_one() == 3_000_000
        took = loop.time() - started
        during = [t for t in ticks if t >= started]
        gaps = [later - earlier for earlier, later in itertools.pairwise(during)]
        assert took > 0.2, "the scan should take long enough to show a stall"
        assert gaps
        assert max(gaps) < 0.1, f"the loop stalled {max(gaps):.3f} s"
    finally:
        ticker.cancel()
        await db.dispose()
