"""Shares of work handed in by many tasks and done together in rounds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from agentsms.core.rounds import Rounds


class Recorder:
    """A round that records the shares it took, and waits for ``gate`` while it runs."""

    def __init__(self) -> None:
        self.rounds: list[list[int]] = []
        self.running = 0
        self.most_running = 0
        self.gate = asyncio.Event()
        self.fail_on: int | None = None

    async def run(self, take: Callable[[], list[int]]) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            shares = take()
            self.rounds.append(shares)
            await self.gate.wait()
            if self.fail_on in shares:
                raise RuntimeError("round failed")
        finally:
            self.running -= 1


async def test_shares_handed_in_while_rounds_run_go_together_in_the_next() -> None:
    recorder = Recorder()
    rounds: Rounds[int] = Rounds(recorder.run, concurrency=2)
    first = [asyncio.create_task(rounds.join(i)) for i in (1, 2)]
    await asyncio.sleep(0)  # both handed in before any round began: the first takes both
    later = [asyncio.create_task(rounds.join(i)) for i in (3, 4, 5)]
    await asyncio.sleep(0.01)
    recorder.gate.set()
    await asyncio.gather(*first, *later)
    assert recorder.rounds[0] == [1, 2]
    assert sorted(s for r in recorder.rounds[1:] for s in r) == [3, 4, 5]
    assert len(recorder.rounds) <= 3
    assert recorder.most_running <= 2


async def test_no_more_rounds_than_the_concurrency_run_at_once() -> None:
    recorder = Recorder()
    rounds: Rounds[int] = Rounds(recorder.run, concurrency=2)
    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(rounds.join(i)))
        await asyncio.sleep(0.005)  # each handed in after the rounds before it began
    assert recorder.running == 2
    # The first two rounds took one share each; the other four wait for the next rounds.
    assert recorder.rounds == [[0], [1]]
    recorder.gate.set()
    await asyncio.gather(*tasks)
    assert recorder.most_running == 2
    assert sorted(s for r in recorder.rounds for s in r) == list(range(6))
    assert len(recorder.rounds) < 6


async def test_a_failing_round_fails_its_own_shares_and_the_next_rounds_go_on() -> None:
    recorder = Recorder()
    recorder.fail_on = 1
    rounds: Rounds[int] = Rounds(recorder.run, concurrency=1)
    failing = asyncio.create_task(rounds.join(1))
    await asyncio.sleep(0.005)
    after = asyncio.create_task(rounds.join(2))
    await asyncio.sleep(0.005)
    recorder.gate.set()
    with pytest.raises(RuntimeError, match="round failed"):
        await failing
    await after  # its own round, after the failed one
    assert recorder.rounds == [[1], [2]]


async def test_a_share_whose_task_is_cancelled_before_its_round_is_withdrawn() -> None:
    recorder = Recorder()
    rounds: Rounds[int] = Rounds(recorder.run, concurrency=1)
    running = asyncio.create_task(rounds.join(1))
    await asyncio.sleep(0.005)
    withdrawn = asyncio.create_task(rounds.join(2))
    kept = asyncio.create_task(rounds.join(3))
    await asyncio.sleep(0.005)
    withdrawn.cancel()
    await asyncio.sleep(0)
    recorder.gate.set()
    await asyncio.gather(running, kept)
    assert withdrawn.cancelled()
    assert recorder.rounds == [[1], [3]]
