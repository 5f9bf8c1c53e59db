"""Pacing kept second by second at a high rate, by two ``agentsms worker`` processes.

Issue 18's target, at a fifth of its rate so that CI can run it: one sender at 100 msg/s,
and a pool of four senders at 25 msg/s each, deliver their rate every whole second (within
5 %) once sending, and never more than it in any second. The record is the simulator
carrier's send log (``simulator_sends.created_at``: when the provider was called).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter

import pytest

from tests.acceptance.processes import client, wait_for
from tests.acceptance.test_crash_recovery import (
    Make,
    add_sender,
    assert_sent_exactly_once,
    clusters,  # noqa: F401  (the fixture)
    recipients,
    send_count,
)

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(240)]

SECONDS = 4
TOLERANCE = 0.05


def whole_seconds(times: list[float]) -> list[int]:
    """Sends in each whole wall-clock second strictly inside the sending (the first and the
    last, partly sending, are not counted)."""
    counts = Counter(math.floor(t) for t in times)
    first, last = math.floor(times[0]) + 1, math.floor(times[-1])
    return [counts.get(second, 0) for second in range(first, last)]


def most_in_a_sliding_second(times: list[float]) -> int:
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    "senders",
    [
        pytest.param({"+14155550101": 100}, id="one-sender-100"),
        pytest.param({f"+1415555020{i}": 25 for i in range(4)}, id="pool-4x25"),
    ],
)
async def test_every_second_delivers_the_rate(
    clusters: Make,  # noqa: F811
    backend: str,
    senders: dict[str, int],
) -> None:
    cluster, db = await clusters(backend)
    api = await cluster.start_api()
    total = sum(rate * SECONDS for rate in senders.values())
    async with client(api) as http:
        for number, rate in senders.items():
            await add_sender(http, rate, number)
        start = 6_000_000
        for number, rate in senders.items():
            response = await http.post(
                "/v1/batches",
                json={
                    "from": number,
                    "body": "paced",
                    "recipients": recipients(start, rate * SECONDS),
                },
            )
            assert response.status_code == 202, response.text
            start += rate * SECONDS
        for i in range(2):
            await cluster.start_worker(f"worker{i}")

        async def all_sent() -> bool:
            return await send_count(db) == total

        await wait_for(all_sent, within=60, interval=0.2, what="every message sent")
        await assert_sent_exactly_once(
            http, db, {row[0] for row in await db.rows("SELECT id FROM messages")}
        )
    times: dict[str, list[float]] = {number: [] for number in senders}
    for number, created in await db.rows(
        "SELECT from_number, created_at FROM simulator_sends ORDER BY created_at"
    ):
        times[number].append(float(created))
    report = []
    everything = sorted(t for sent in times.values() for t in sent)
    pool_rate = sum(senders.values())
    # Whole seconds in which every sender was sending.
    first = max(sent[0] for sent in times.values())
    last = min(sent[-1] for sent in times.values())
    together = whole_seconds([t for t in everything if first <= t <= last])
    assert len(together) >= SECONDS - 2, together
    for count in together:
        assert abs(count / pool_rate - 1) <= TOLERANCE, (together, pool_rate)
    assert max(together) <= pool_rate
    report.append(f"all {together}")
    for number, rate in senders.items():
        sent = times[number]
        assert len(sent) == rate * SECONDS
        seconds = whole_seconds(sent)
        assert len(seconds) >= SECONDS - 2, (number, seconds)
        for count in seconds:
            # Within 5 %, and at least one message short of the rate at most.
            assert rate - max(1, math.floor(rate * TOLERANCE)) <= count <= rate, (number, seconds)
        assert most_in_a_sliding_second(sent) <= rate, number
        report.append(f"{number} {seconds}")
    print(f"\n[pacing per second, {backend}] " + "; ".join(report))
