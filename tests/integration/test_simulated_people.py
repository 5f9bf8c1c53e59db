"""Simulated people: scripted answers through the same inbound path as a carrier's texts."""

from __future__ import annotations

import asyncio
import time

from agentsms.store.repositories import simulator as simulator_log
from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, message_rows

PERSON = "+14155557101"


async def _inbound_bodies(gateway: Gateway) -> list[str]:
    return [r["body"] for r in await message_rows(gateway) if r["direction"] == "inbound"]


async def _drain_until(gateway: Gateway, bodies: list[str]) -> None:
    """Run jobs until the person's answers are ``bodies`` (within 10 s)."""
    started = time.monotonic()
    while await _inbound_bodies(gateway) != bodies:
        assert time.monotonic() - started < 10, await _inbound_bodies(gateway)
        await gateway.drain()
        await asyncio.sleep(0.05)


async def test_a_scripted_person_answers_each_burst_once_in_order_until_the_script_ends(
    gateway: Gateway,
) -> None:
    # The answer comes 0.3 s after the burst's first text: the burst's texts (paced a few
    # milliseconds apart) are all carried before it, however slow this machine is.
    delay = 0.3
    put = await gateway.client.put(
        f"/v1/simulator/people/{PERSON}",
        json={"replies": ["first answer", "second answer"], "delay_seconds": delay},
    )
    assert put.status_code == 200, put.text
    assert put.json() == {
        "number": PERSON,
        "replies": ["first answer", "second answer"],
        "delay_seconds": delay,
        "next_reply": 0,
    }
    # Two texts in one burst: one answer.
    for body in ("hello", "are you there?"):
        await gateway.client.post("/v1/messages", json={"to": PERSON, "body": body})
    await _drain_until(gateway, ["first answer"])
    await gateway.client.post("/v1/messages", json={"to": PERSON, "body": "again"})
    await _drain_until(gateway, ["first answer", "second answer"])
    # The script has run out: a text still moves it on, and gets no answer.
    await gateway.client.post("/v1/messages", json={"to": PERSON, "body": "and again"})
    started = time.monotonic()
    while (await gateway.client.get(f"/v1/simulator/people/{PERSON}")).json()["next_reply"] < 3:
        assert time.monotonic() - started < 10
        await gateway.drain()
        await asyncio.sleep(0.05)
    await asyncio.sleep(delay)
    await gateway.drain()
    assert await _inbound_bodies(gateway) == ["first answer", "second answer"]
    rows = await message_rows(gateway)
    inbound = [r for r in rows if r["direction"] == "inbound"]
    outbound = [r for r in rows if r["direction"] == "outbound"]
    assert len(outbound) == 4
    assert {r["conversation_id"] for r in rows} == {outbound[0]["conversation_id"]}
    assert all(r["from_number"] == PERSON for r in inbound)
    shown = (await gateway.client.get(f"/v1/simulator/people/{PERSON}")).json()
    assert shown["next_reply"] == 3


async def test_the_delay_is_honoured(gateway: Gateway) -> None:
    person = "+14155557102"
    await gateway.client.put(
        f"/v1/simulator/people/{person}", json={"replies": ["late"], "delay_seconds": 0.5}
    )
    started = time.monotonic()
    await gateway.client.post("/v1/messages", json={"to": person, "body": "ping"})
    while "late" not in await _inbound_bodies(gateway):
        assert time.monotonic() - started < 10
        await gateway.drain()
        await asyncio.sleep(0.05)
    assert time.monotonic() - started >= 0.5


async def test_people_are_listed_and_deleted(gateway: Gateway) -> None:
    await gateway.client.put(
        "/v1/simulator/people/+1 415 555 7103", json={"replies": ["x"], "delay_seconds": 1}
    )
    listed = (await gateway.client.get("/v1/simulator/people")).json()["data"]
    assert [p["number"] for p in listed] == ["+14155557103"]
    deleted = await gateway.client.delete("/v1/simulator/people/+14155557103")
    assert deleted.status_code == 204
    assert_problem(await gateway.client.get("/v1/simulator/people/+14155557103"), 404, "not_found")
    assert_problem(
        await gateway.client.delete("/v1/simulator/people/+14155557103"), 404, "not_found"
    )
    bad = await gateway.client.put("/v1/simulator/people/+14155557104", json={"replies": []})
    assert bad.status_code == 422


async def test_two_transactions_claiming_one_answer_get_it_once(gateway: Gateway) -> None:
    """Sends to one person carried side by side (two transactions) claim a single answer:
    the second waits for the first's row lock (or, on SQLite, its write lock), then finds
    the answer taken."""
    number = "+14155557109"
    put = await gateway.client.put(
        f"/v1/simulator/people/{number}", json={"replies": ["hi"], "delay_seconds": 5}
    )
    assert put.status_code == 200, put.text
    first_claimed = asyncio.Event()
    release = asyncio.Event()

    async def first() -> bool:
        async with gateway.db.write() as conn:
            claimed = await simulator_log.claim_reply(conn, gateway.project_id, number)
            first_claimed.set()
            await release.wait()
            return claimed

    async def second() -> bool:
        await first_claimed.wait()
        async with gateway.db.write() as conn:
            return await simulator_log.claim_reply(conn, gateway.project_id, number)

    first_task = asyncio.create_task(first())
    second_task = asyncio.create_task(second())
    await first_claimed.wait()
    await asyncio.sleep(0.3)
    assert not second_task.done()  # held until the first transaction ends
    release.set()
    assert await asyncio.wait_for(first_task, 10) is True
    assert await asyncio.wait_for(second_task, 10) is False
    async with gateway.db.write() as conn:
        # Still taken for any later transaction, until the answer goes out.
        assert await simulator_log.claim_reply(conn, gateway.project_id, number) is False
