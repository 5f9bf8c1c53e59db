"""Group commit: concurrent items share transactions, and one bad item fails only itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.db import Database
from agentsms.store.group_commit import GroupCommit

PROBE = "group_commit_probe"


@pytest.fixture
async def db(backend_url: str) -> AsyncIterator[Database]:
    database = Database(backend_url)
    async with database.write() as conn:
        await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {PROBE} (item TEXT PRIMARY KEY)"))
        await conn.execute(text(f"DELETE FROM {PROBE}"))
    yield database
    async with database.write() as conn:
        await conn.execute(text(f"DROP TABLE {PROBE}"))
    await database.dispose()


async def stored(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(text(f"SELECT item FROM {PROBE} ORDER BY item"))
        return [row[0] for row in rows]


class Recorder:
    """A handler that inserts each item, refusing "own-error" items alone and failing the
    whole transaction (after its inserts) when it meets "poison"."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []

    async def __call__(self, conn: AsyncConnection, items: Sequence[str]) -> list[str | Exception]:
        self.groups.append(list(items))
        results: list[str | Exception] = []
        for item in items:
            if item.startswith("own-error"):
                results.append(ValueError(f"{item} is refused"))
                continue
            await conn.execute(text(f"INSERT INTO {PROBE} (item) VALUES (:item)"), {"item": item})
            if item == "poison":
                raise RuntimeError("the transaction breaks")
            results.append(f"stored {item}")
        return results


async def test_concurrent_items_share_a_transaction_and_get_their_own_results(
    db: Database,
) -> None:
    handler = Recorder()
    group = GroupCommit(db, handler, concurrency=1)
    items = [f"item-{i:03d}" for i in range(60)]

    results = await asyncio.gather(*(group.submit(item) for item in items))

    assert results == [f"stored {item}" for item in items]
    assert await stored(db) == items
    # All sixty were waiting when the first transaction began: one transaction took them.
    assert handler.groups == [items]
    assert (group.groups, group.largest) == (1, 60)


async def test_items_arriving_during_a_transaction_form_the_next_group(db: Database) -> None:
    handler = Recorder()
    group = GroupCommit(db, handler)
    first = asyncio.ensure_future(group.submit("early"))
    await asyncio.sleep(0)  # the transaction for "early" starts
    later = [asyncio.ensure_future(group.submit(f"late-{i}")) for i in range(5)]

    assert await first == "stored early"
    assert await asyncio.gather(*later) == [f"stored late-{i}" for i in range(5)]
    assert handler.groups == [["early"], [f"late-{i}" for i in range(5)]]


class Gated(Recorder):
    """A ``Recorder`` whose first transaction waits for ``opened`` before it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()
        self.running = 0

    async def __call__(self, conn: AsyncConnection, items: Sequence[str]) -> list[str | Exception]:
        self.running += 1
        if self.running == 1:
            await self.opened.wait()
        return await super().__call__(conn, items)


async def test_side_by_side_transactions_start_only_while_items_crowd_up(
    db: Database,
) -> None:
    handler = Gated()
    group = GroupCommit(db, handler, concurrency=4, crowd=3)
    first = asyncio.ensure_future(group.submit("early"))
    while not handler.running:
        await asyncio.sleep(0)  # the transaction for "early" is running
    # Three waiting for one running transaction: no second one starts for them.
    few = [asyncio.ensure_future(group.submit(f"few-{i}")) for i in range(3)]
    await asyncio.sleep(0.05)
    assert group.groups == 1
    # A fourth crowds them: a second transaction takes the four at once.
    crowding = asyncio.ensure_future(group.submit("few-3"))
    await asyncio.sleep(0.05)
    handler.opened.set()
    await asyncio.gather(first, *few, crowding)

    assert sorted(map(sorted, handler.groups)) == [["early"], [f"few-{i}" for i in range(4)]]
    assert await stored(db) == ["early", *(f"few-{i}" for i in range(4))]


async def test_under_steady_traffic_a_group_waits_for_the_items_that_follow(
    db: Database,
) -> None:
    handler = Recorder()
    group = GroupCommit(db, handler, delay=0.5)
    started = time.monotonic()
    assert await group.submit("lone") == "stored lone"
    lone_took = time.monotonic() - started
    await asyncio.sleep(0.6)
    steady = []
    for i in range(4):
        steady.append(asyncio.ensure_future(group.submit(f"steady-{i}")))
        await asyncio.sleep(0.02)

    assert await asyncio.gather(*steady) == [f"stored steady-{i}" for i in range(4)]
    # Nothing came shortly before "lone" or "steady-0": they went at once. "steady-1" came
    # 20 ms after "steady-0", so its group waited for the two that followed it (or, on a
    # machine so slow that two of them queued behind "steady-0", went with them at once).
    assert lone_took < 0.5
    assert handler.groups[:2] == [["lone"], ["steady-0"]]
    assert handler.groups[2] in (["steady-1", "steady-2", "steady-3"], ["steady-1", "steady-2"])
    assert [item for g in handler.groups[2:] for item in g] == [f"steady-{i}" for i in (1, 2, 3)]


async def test_groups_are_capped_at_max_items(db: Database) -> None:
    handler = Recorder()
    group = GroupCommit(db, handler, max_items=7)

    await asyncio.gather(*(group.submit(f"item-{i:02d}") for i in range(30)))

    assert max(len(g) for g in handler.groups) == 7
    assert group.largest == 7
    assert len(await stored(db)) == 30


async def test_an_items_own_error_reaches_only_that_item(db: Database) -> None:
    group = GroupCommit(db, Recorder())
    items = ["a", "own-error-b", "c"]

    results = await asyncio.gather(*(group.submit(item) for item in items), return_exceptions=True)

    assert results[0] == "stored a"
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "own-error-b is refused"
    assert results[2] == "stored c"
    assert await stored(db) == ["a", "c"]


async def test_a_failed_transaction_is_retried_item_by_item(db: Database) -> None:
    handler = Recorder()
    group = GroupCommit(db, handler)
    items = ["x1", "poison", "x2", "x3"]

    results = await asyncio.gather(*(group.submit(item) for item in items), return_exceptions=True)

    assert results[0] == "stored x1"
    assert isinstance(results[1], RuntimeError)
    assert results[2:] == ["stored x2", "stored x3"]
    # The shared attempt rolled back entirely; each good item was then stored once, alone.
    assert handler.groups == [items, ["x1"], ["poison"], ["x2"], ["x3"]]
    assert await stored(db) == ["x1", "x2", "x3"]
