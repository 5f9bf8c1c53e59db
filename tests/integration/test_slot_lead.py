"""A claim's pacing slots start after it is ready to send, however long preparing took.

Slots are taken before the claim marks its messages sending; a send that finds its slot
past (and its process's windows full) needs a fresh one. When preparing took longer than
the claim's run of slots (a busy PostgreSQL worker), every send was late and re-slotted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest

from agentsms.core.dispatch import Dispatcher
from agentsms.core.sending import SEND_JOB
from agentsms.jobs import queue
from agentsms.jobs.queue import Job
from tests.conftest import Gateway
from tests.integration.helpers import settle

_SENDER = "+14155550177"
_PREPARING = 0.3


async def _claim_sends(gateway: Gateway, count: int, first: int) -> tuple[list[str], list[Job]]:
    ids = []
    for n in range(first, first + count):
        answer = await gateway.client.post(
            "/v1/messages", json={"from": _SENDER, "to": f"+1415555{3600 + n}", "body": "hi"}
        )
        assert answer.status_code == 202, answer.text
        ids.append(str(answer.json()["id"]))
    async with gateway.db.write() as conn:
        claimed = await queue.claim(
            conn, owner="lead", limit=100, lease_seconds=30, kinds=[SEND_JOB]
        )
    assert sorted(job.ref or "" for job in claimed) == sorted(ids)
    return ids, claimed


async def test_a_claim_slow_to_prepare_takes_slots_that_start_once_it_is_ready(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = await gateway.client.post(
        "/v1/numbers", json={"number": _SENDER, "throughput_mps": 10}
    )
    assert number.status_code == 201, number.text
    renew = queue.renew

    async def slow_renew(*args: Any, **kwargs: Any) -> queue.Renewal:
        await asyncio.sleep(_PREPARING)  # marking the claim sending takes this long
        return await renew(*args, **kwargs)

    monkeypatch.setattr(queue, "renew", slow_renew)
    ready: list[tuple[float, list[float]]] = []
    prepare = Dispatcher._prepare

    async def timed_prepare(self: Dispatcher, jobs: Sequence[Job]) -> Any:
        work = await prepare(self, jobs)
        ready.append((time.time(), [item.slot for item in work]))
        return work

    monkeypatch.setattr(Dispatcher, "_prepare", timed_prepare)
    dispatcher = Dispatcher(gateway.db, gateway.app.state.agentsms.providers, gateway.settings)

    sent: list[str] = []
    for round_ in range(2):
        ids, claimed = await _claim_sends(gateway, 3, first=3 * round_)
        await dispatcher.handle(claimed)
        sent += ids
    # The first claim's slots (0.1 s apart) had all passed when it was ready; the next one,
    # prepared as slowly, waits for its first slot instead of re-slotting every send.
    at, slots = ready[1]
    assert len(slots) == 3
    assert min(slots) >= at
    rows = await settle(gateway, sent)
    assert {row["status"] for row in rows.values()} == {"delivered"}
