"""The event-loop lag histogram records a stall of the loop as one late wake-up."""

from __future__ import annotations

import asyncio
import time

from agentsms import metrics


def _count(upper_bound: str) -> float:
    value = metrics.registry.get_sample_value(
        "agentsms_event_loop_lag_seconds_bucket", {"le": upper_bound}
    )
    return value or 0.0


async def test_a_blocked_loop_shows_as_one_lag_over_the_stall() -> None:
    over_200ms_before = _count("+Inf") - _count("0.2")
    within_half_second_before = _count("0.5") - _count("0.2")
    watch = asyncio.create_task(metrics.watch_event_loop(0.01))
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # noqa: ASYNC251 (holding the loop on purpose, as a long statement would)
        await asyncio.sleep(0.05)
    finally:
        watch.cancel()
    over_200ms = _count("+Inf") - _count("0.2")
    assert over_200ms - over_200ms_before >= 1
    assert _count("0.5") - _count("0.2") - within_half_second_before >= 1
