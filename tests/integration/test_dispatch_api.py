"""Durable dispatch as the API shows it: committed intake, pacing, and in-flight recovery."""

from __future__ import annotations

import itertools
from datetime import datetime

from agentsms.core import statuses
from agentsms.jobs import queue
from agentsms.providers.base import SendRequest
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.types import utcnow
from tests.conftest import Gateway
from tests.integration.helpers import (
    idempotency_row,
    jobs_for,
    message_row,
    settle,
    sim_sends,
)


async def test_202_means_message_job_and_key_are_committed(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155553401", "body": "durable"},
        headers={"Idempotency-Key": "durable-1"},
    )
    assert response.status_code == 202
    message_id = response.json()["id"]
    # Read through a fresh connection: all three are visible, so all three were committed.
    assert (await message_row(gateway, message_id))["status"] == "queued"
    (job,) = await jobs_for(gateway, message_id)
    assert (job["kind"], job["status"], job["attempts"]) == ("message.send", "queued", 0)
    key = await idempotency_row(gateway, "durable-1")
    assert key is not None
    assert message_id in key["response_body"]
    await settle(gateway, [message_id])
    assert await jobs_for(gateway, message_id) == []  # done jobs go away


async def test_a_number_is_paced_at_its_throughput(gateway: Gateway) -> None:
    added = await gateway.client.post(
        "/v1/numbers", json={"number": "+14155550122", "throughput_mps": 5}
    )
    assert added.status_code == 201
    recipients = [f"+141555534{i:02d}" for i in range(10, 18)]
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": recipients, "body": "paced", "from": "+14155550122"}
    )
    ids = batch.json()["message_ids"]

    final = await settle(gateway, ids, within=15)

    assert {row["status"] for row in final.values()} == {"delivered"}
    times = sorted([(await sim_sends(gateway, i))[0]["created_at"] for i in ids])
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 8 sends at 5/s are due 0.2 s apart, 1.4 s from first to last (less a little for a
    # send that left late on this busy machine); unpaced they would all go at once.
    assert times[-1] - times[0] >= 1.2, gaps
    assert min(gaps) >= 0.1, gaps


async def test_sent_at_is_each_messages_hand_off_to_the_carrier(gateway: Gateway) -> None:
    added = await gateway.client.post(
        "/v1/numbers", json={"number": "+14155550124", "throughput_mps": 5}
    )
    assert added.status_code == 201
    recipients = [f"+141555535{i:02d}" for i in range(10, 19)]
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": recipients, "body": "paced", "from": "+14155550124"}
    )
    ids = batch.json()["message_ids"]

    await settle(gateway, ids, within=15)

    for message_id in ids:
        (carrier,) = await sim_sends(gateway, message_id)
        api = (await gateway.client.get(f"/v1/messages/{message_id}")).json()
        sent_at = datetime.fromisoformat(api["sent_at"].replace("Z", "+00:00")).timestamp()
        # Stamped when the provider call was made, not when the batch was recorded.
        assert abs(sent_at - carrier["created_at"]) < 0.1, (sent_at, carrier["created_at"])
    stamps = sorted([(await message_row(gateway, i))["sent_at"].timestamp() for i in ids])
    # What the API shows keeps to the number's 5/s, as the carrier saw it.
    assert max(sum(1 for t in stamps if s <= t < s + 1) for s in stamps) <= 5, stamps


async def test_in_flight_message_the_carrier_got_is_not_sent_again(gateway: Gateway) -> None:
    message_id = await _crash_mid_send(gateway, "+14155553402", carrier_got_it=True)
    (before,) = await sim_sends(gateway, message_id)

    await settle(gateway, [message_id], until={"sent"})
    assert (await message_row(gateway, message_id))["status"] == "sent"
    final = await settle(gateway, [message_id])

    assert final[message_id]["status"] == "delivered"
    assert final[message_id]["provider_message_id"] == before["provider_message_id"]
    (after,) = await sim_sends(gateway, message_id)
    assert after["repeat_count"] == 0  # looked up by reference, not sent again
    assert not final[message_id]["in_flight"]


async def test_in_flight_message_the_carrier_never_got_is_sent_once(gateway: Gateway) -> None:
    message_id = await _crash_mid_send(gateway, "+14155553403", carrier_got_it=False)
    assert await sim_sends(gateway, message_id) == []

    final = await settle(gateway, [message_id])

    assert final[message_id]["status"] == "delivered"
    (sent,) = await sim_sends(gateway, message_id)
    assert sent["repeat_count"] == 0


async def _crash_mid_send(gateway: Gateway, to: str, *, carrier_got_it: bool) -> str:
    """A worker claims the send, marks it in flight, maybe hands it over, then dies."""
    # The carrier reports late, so the worker that takes over meets the message still sending.
    number = await gateway.client.post(
        "/v1/numbers",
        json={"number": "+14155550123", "settings": {"delivery_delay_seconds": 1.0}},
    )
    assert number.status_code == 201
    response = await gateway.client.post(
        "/v1/messages", json={"to": to, "body": "crash", "from": "+14155550123"}
    )
    message_id: str = response.json()["id"]
    async with gateway.db.write() as conn:
        claimed = await queue.claim(
            conn, owner="dead-worker", limit=500, lease_seconds=0.0, kinds=["message.send"]
        )
        mine = [job for job in claimed if job.ref == message_id]
        assert len(mine) == 1
        others = [job for job in claimed if job.ref != message_id]
        await queue.release_many(conn, others, run_at=0.0)
        await messages_repo.set_status_where(
            conn,
            [message_id],
            from_statuses=statuses.PENDING,
            values={"status": statuses.SENDING, "in_flight": True, "updated_at": utcnow()},
        )
    if carrier_got_it:
        row = await message_row(gateway, message_id)
        simulator = gateway.app.state.agentsms.providers.get("simulator")
        await simulator.send_many(
            [
                SendRequest(
                    reference=message_id,
                    from_number=row["from_number"],
                    to_number=row["to_number"],
                    body=row["body"],
                    channel=row["channel"],
                    number_settings={"delivery_delay_seconds": 1.0},
                )
            ]
        )
    (job,) = await jobs_for(gateway, message_id)
    assert (job["status"], job["lease_owner"]) == ("running", "dead-worker")
    # The lease runs out; recovery puts the job back for a live worker.
    async with gateway.db.write() as conn:
        assert await queue.recover_stalled(conn) >= 1
    return message_id
