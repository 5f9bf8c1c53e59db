"""``FreshReads``: every answer comes from a read begun after the question, and the
questions asked together share one read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from agentsms.webhooks.fresh_reads import FreshReads


class Table:
    """A value per key that tests change, and a log of the reads (keys, value seen)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {"a": 1, "b": 2}
        self.reads: list[list[str]] = []
        self.gate: asyncio.Event | None = None

    async def read(self, keys: Sequence[str]) -> dict[str, int]:
        self.reads.append(sorted(keys))
        found = {key: self.values[key] for key in keys if key in self.values}
        if self.gate is not None:
            await self.gate.wait()  # the read is under way: its answers are already taken
        return found


async def test_questions_asked_together_share_one_read() -> None:
    table = Table()
    fresh: FreshReads[str, int] = FreshReads(table.read)
    answers = await asyncio.gather(*(fresh.get(key) for key in ["a", "b", "a", "gone"]))
    assert answers == [1, 2, 1, None]
    assert table.reads == [["a", "b", "gone"]]
    assert fresh.reads == 1


async def test_a_question_asked_while_a_read_runs_waits_for_the_next_read() -> None:
    table = Table()
    table.gate = asyncio.Event()
    fresh: FreshReads[str, int] = FreshReads(table.read)
    first = asyncio.create_task(fresh.get("a"))
    while not table.reads:
        await asyncio.sleep(0)
    table.values["a"] = 10  # changed after the first read looked
    second = asyncio.create_task(fresh.get("a"))
    third = asyncio.create_task(fresh.get("b"))
    await asyncio.sleep(0)
    table.gate.set()
    assert await first == 1
    assert await second == 10  # not the answer of the read that was already under way
    assert await third == 2
    assert table.reads == [["a"], ["a", "b"]]


async def test_a_failed_read_fails_its_questions_only() -> None:
    calls = 0

    async def read(keys: Sequence[str]) -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return dict.fromkeys(keys, 7)

    fresh: FreshReads[str, int] = FreshReads(read)
    with pytest.raises(ConnectionError):
        await fresh.get("a")
    assert await fresh.get("a") == 7


async def test_a_question_given_up_on_leaves_the_others_their_answer() -> None:
    table = Table()
    table.gate = asyncio.Event()
    fresh: FreshReads[str, int] = FreshReads(table.read)
    impatient = asyncio.create_task(fresh.get("a"))
    patient = asyncio.create_task(fresh.get("a"))
    while not table.reads:
        await asyncio.sleep(0)
    impatient.cancel()
    table.gate.set()
    assert await patient == 1
    with pytest.raises(asyncio.CancelledError):
        await impatient
