"""A send is handed to the carrier at most once: a claim that lost its job sends nothing.

A worker that stalls past its lease (a stopped process, a long pause) and resumes still
has its claims in hand; meanwhile the job was recovered and claimed by another worker.
The stale claim must neither mark the message in flight nor call the provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

from agentsms.core.conversations import TIMER_JOB, TURN_JOB
from agentsms.core.dispatch import Dispatcher
from agentsms.core.sending import SEND_JOB
from agentsms.jobs import queue
from agentsms.jobs.queue import Job
from agentsms.providers.simulator import Carried, SimulatorLedger
from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    agent_server,
    insecure_gateway,
    send_with_webhook_agent,
    text_in,
    wait_for,
)
from tests.integration.helpers import jobs_for, message_row, settle, sim_sends


async def _claim(
    gateway: Gateway,
    owner: str,
    refs: list[str],
    lease: float,
    now: float | None = None,
    kind: str = SEND_JOB,
) -> list[Job]:
    """``owner`` claims the ``kind`` jobs of ``refs``; any other due one goes back."""
    async with gateway.db.write() as conn:
        claimed = await queue.claim(
            conn, owner=owner, limit=500, lease_seconds=lease, kinds=[kind], now=now
        )
        await queue.release_many(conn, [job for job in claimed if job.ref not in refs], run_at=0.0)
    mine = sorted((job for job in claimed if job.ref in refs), key=lambda j: j.ref or "")
    assert [job.ref for job in mine] == sorted(refs)
    return mine


async def _take_over(gateway: Gateway, ref: str, kind: str = SEND_JOB) -> Job:
    """What another worker does once the lease ran out (its clock jumps past it): recover
    the job and claim it."""
    later = time.time() + 3600
    async with gateway.db.write() as conn:
        assert await queue.recover_stalled(conn, now=later) >= 1
    (job,) = await _claim(gateway, "taker", [ref], lease=30, now=later, kind=kind)
    return job


async def _send(gateway: Gateway, sender: str, to: str) -> str:
    response = await gateway.client.post(
        "/v1/messages", json={"from": sender, "to": to, "body": "just once"}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _dispatcher(gateway: Gateway, **settings: object) -> Dispatcher:
    return Dispatcher(
        gateway.db,
        gateway.app.state.agentsms.providers,
        gateway.settings.model_copy(update=settings),
    )


async def test_a_claim_that_lost_its_job_does_not_mark_it_in_flight_or_send_it(
    gateway: Gateway,
) -> None:
    message_id = await _send(gateway, "+14155550100", "+14155553501")
    (stale,) = await _claim(gateway, "stalled", [message_id], lease=30)
    taken = await _take_over(gateway, message_id)
    assert (taken.id, taken.token) == (stale.id, stale.token + 1)

    await _dispatcher(gateway).handle([stale])

    row = await message_row(gateway, message_id)
    assert (row["status"], row["in_flight"]) == ("queued", False)
    assert await sim_sends(gateway, message_id) == []
    (job,) = await jobs_for(gateway, message_id)
    assert (job["status"], job["lease_owner"], job["lease_token"]) == ("running", "taker", 2)

    await _dispatcher(gateway).handle([taken])
    assert (await settle(gateway, [message_id]))[message_id]["status"] == "delivered"
    (sent,) = await sim_sends(gateway, message_id)
    assert sent["repeat_count"] == 0


async def _paced_second(gateway: Gateway, sender: str, first_to: str) -> str:
    """A number sending one text every ~2.5 s has just sent one: the next one, returned,
    waits about that long for its slot."""
    number = await gateway.client.post(
        "/v1/numbers",
        json={"number": sender, "throughput_mps": 0.4, "settings": {"dedupe_references": False}},
    )
    assert number.status_code == 201, number.text
    first = await _send(gateway, sender, first_to)
    assert (await settle(gateway, [first]))[first]["status"] == "delivered"
    return await _send(gateway, sender, "+14155553599")


# A lease of 1 s as the worker knows it: the wait for the slot outlasts it.
_SHORT = {"job_lease_seconds": 1.0, "pacing_horizon_seconds": 5.0}


async def _until_in_flight(gateway: Gateway, message_id: str) -> None:
    for _ in range(200):
        if (await message_row(gateway, message_id))["in_flight"]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{message_id} was not marked in flight")


async def test_a_claim_paused_past_its_lease_before_the_call_drops_the_send(
    gateway: Gateway,
) -> None:
    """The send waits ~2.5 s for its slot, longer than the 1 s lease the worker knows of;
    meanwhile its job is recovered and claimed by another worker. At its slot the first
    worker asks the table, finds the job taken and does not send."""
    message_id = await _paced_second(gateway, "+14155550131", "+14155553502")
    claims = await _claim(gateway, "paused", [message_id], lease=1.0)
    handling = asyncio.create_task(_dispatcher(gateway, **_SHORT).handle(claims))
    await _until_in_flight(gateway, message_id)
    taken = await _take_over(gateway, message_id)
    await asyncio.wait_for(handling, timeout=10)

    assert await sim_sends(gateway, message_id) == []  # the paused worker did not send it
    (job,) = await jobs_for(gateway, message_id)
    assert (job["status"], job["lease_owner"]) == ("running", "taker")
    # The taker finds it in flight, asks the carrier (not there) and sends it: once.
    await _dispatcher(gateway).handle([taken])
    assert (await settle(gateway, [message_id]))[message_id]["status"] == "delivered"
    (sent,) = await sim_sends(gateway, message_id)
    assert sent["repeat_count"] == 0


async def test_a_claim_held_past_its_known_lease_is_renewed_and_sends(gateway: Gateway) -> None:
    """Nobody took the job: the renewal before the call finds it still held, and it goes."""
    message_id = await _paced_second(gateway, "+14155550132", "+14155553503")
    (claim,) = await _claim(gateway, "slow", [message_id], lease=1.0)
    known = claim.lease.until
    await asyncio.wait_for(_dispatcher(gateway, **_SHORT).handle([claim]), timeout=10)

    assert claim.lease.until > known + 1.0  # renewed after the wait, before its call
    assert (await message_row(gateway, message_id))["status"] in ("sent", "delivered")
    (sent,) = await sim_sends(gateway, message_id)
    assert sent["repeat_count"] == 0
    assert await jobs_for(gateway, message_id) == []


class _PausedCarrier:
    """The simulator's ledger, with its first call held at the door: a worker stopped
    after its lease check, before the carrier took anything (waiting for a connection, a
    window slot, the write lock)."""

    def __init__(self, ledger: SimulatorLedger) -> None:
        self.ledger = ledger
        self.entered = asyncio.Event()
        self.resume = asyncio.Event()

    async def carry(
        self, references: Sequence[str], plan: Callable[[Mapping[str, str]], Carried]
    ) -> Carried:
        if not self.entered.is_set():
            self.entered.set()
            await self.resume.wait()
        return await self.ledger.carry(references, plan)

    async def logged(self, reference: str) -> str | None:
        return await self.ledger.logged(reference)


async def test_a_claim_paused_inside_the_carrier_call_sends_nothing_another_took(
    gateway: Gateway,
) -> None:
    """The lease check passed and the call began; the worker then stalled before the
    carrier took the send, past its lease, and another worker recovered the job and sent
    it. Resumed, the first worker's send is refused at the door (the handoff deadline),
    its renewal finds the job taken, and the carrier (not de-duplicating) texts once."""
    number = await gateway.client.post(
        "/v1/numbers",
        json={"number": "+14155550133", "settings": {"dedupe_references": False}},
    )
    assert number.status_code == 201, number.text
    message_id = await _send(gateway, "+14155550133", "+14155553504")
    simulator = await gateway.app.state.agentsms.providers.resolve("simulator", None)
    paused = _PausedCarrier(simulator.ledger)
    simulator.ledger = paused
    try:
        claims = await _claim(gateway, "paused", [message_id], lease=1.0)
        handling = asyncio.create_task(_dispatcher(gateway, **_SHORT).handle(claims))
        await asyncio.wait_for(paused.entered.wait(), timeout=10)
        await asyncio.sleep(max(0.0, claims[0].lease.until - time.time()) + 0.05)
        taken = await _take_over(gateway, message_id)
        await _dispatcher(gateway).handle([taken])  # asks the carrier (not there), sends
        assert len(await sim_sends(gateway, message_id)) == 1
        paused.resume.set()
        await asyncio.wait_for(handling, timeout=10)
    finally:
        simulator.ledger = paused.ledger

    assert (await settle(gateway, [message_id]))[message_id]["status"] == "delivered"
    (sent,) = await sim_sends(gateway, message_id)
    assert sent["repeat_count"] == 0
    assert await jobs_for(gateway, message_id) == []


async def test_an_agent_turn_taken_over_is_answered_once(gateway: Gateway) -> None:
    """The agent took longer than the lease and another worker ran the turn again: the
    stalled worker's answer is not written (nor sent) beside the new one."""
    person = "+14155554301"
    with agent_server() as (server, url):
        async with insecure_gateway(gateway) as gw:
            sent = await send_with_webhook_agent(gw, person, url, "Hello from the shop")
            conversation_id = str(sent["conversation_id"])
            await gw.drain()
            await text_in(gw, person, "one")
            (stale,) = await _claim(gw, "stalled", [conversation_id], lease=30, kind=TURN_JOB)
            taken = await _take_over(gw, conversation_id, kind=TURN_JOB)

            await gw.worker.handlers[TURN_JOB]([stale])
            await gw.worker.handlers[TURN_JOB]([taken])
            shown = await wait_for(gw, conversation_id, lambda c: len(c["messages"]) >= 3)
            await gw.drain()
            shown = (await gw.client.get(f"/v1/conversations/{conversation_id}")).json()
            assert len(server.turns) == 2  # both asked the agent...
            bodies = [m["body"] for m in shown["messages"]]
            assert bodies == ["Hello from the shop", "one", "re: one"]  # ...one answer went
            log = (await gw.client.get("/v1/simulator/log", params={"to": person})).json()
            assert sorted(row["body"] for row in log["data"]) == ["Hello from the shop", "re: one"]


async def test_a_conversation_timer_taken_over_sends_its_warning_once(gateway: Gateway) -> None:
    """A stalled worker's timer claim, run after another worker ran the timer again, does
    not send the warning a second time."""
    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155554302",
            "body": "Your order is ready",
            "conversation": {"warning_seconds": 300, "warning_message": "Still there?"},
        },
    )
    assert sent.status_code == 202, sent.text
    conversation_id = str(sent.json()["conversation_id"])
    await gateway.drain()
    due, later = time.time() + 301, time.time() + 3600  # a clock past the timer, then its lease
    (stale,) = await _claim(gateway, "stalled", [conversation_id], 30, now=due, kind=TIMER_JOB)
    async with gateway.db.write() as conn:
        assert await queue.recover_stalled(conn, now=later) >= 1
    (taken,) = await _claim(gateway, "taker", [conversation_id], 30, now=later, kind=TIMER_JOB)
    assert (taken.id, taken.payload["stage"]) == (stale.id, "warning")

    await gateway.worker.handlers[TIMER_JOB]([taken])
    await gateway.worker.handlers[TIMER_JOB]([stale])
    await gateway.drain()
    shown = (await gateway.client.get(f"/v1/conversations/{conversation_id}")).json()
    assert [m["body"] for m in shown["messages"]] == ["Your order is ready", "Still there?"]
