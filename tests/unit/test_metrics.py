"""The event-loop lag histogram records a stall of the loop as one late wake-up."""

from __future__ import annotations

import asyncio
import os
import time

from structlog.testing import capture_logs

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


def _hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # as a long statement or a long computation would


# The stall tests run their own event loop: a session's loop also runs the watchers of the
# apps other tests started, which would log the same stall again.


def test_a_stall_is_logged_with_where_the_loop_was_held() -> None:
    async def stall_once() -> None:
        watch = asyncio.create_task(metrics.watch_event_loop(0.01, stall=0.1))
        try:
            await asyncio.sleep(0.05)
            _hold_the_loop(0.35)
            await asyncio.sleep(0.05)
        finally:
            watch.cancel()

    with capture_logs() as logs:
        asyncio.run(stall_once())
    stalls = [entry for entry in logs if entry["event"] == "event_loop.stall"]
    assert len(stalls) == 1
    [stall] = stalls
    assert stall["log_level"] == "warning"
    assert stall["pid"] == os.getpid()
    assert stall["seconds"] >= 0.3
    assert 0 <= stall["cpu_seconds"] < 0.3  # asleep, not computing
    # Sampled at 0.1 s late and at each further 0.1 s: every sample inside the sleep.
    assert 2 <= len(stall["held_at"]) <= 4
    assert all("_hold_the_loop" in stack for stack in stall["held_at"])


def test_a_loop_on_time_logs_no_stall() -> None:
    async def on_time() -> None:
        watch = asyncio.create_task(metrics.watch_event_loop(0.01, stall=0.5))
        try:
            for _ in range(20):
                await asyncio.sleep(0.01)
        finally:
            watch.cancel()

    with capture_logs() as logs:
        asyncio.run(on_time())
    assert [entry for entry in logs if entry["event"] == "event_loop.stall"] == []
