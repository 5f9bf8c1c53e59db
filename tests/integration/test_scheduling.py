"""``send_at``, ``spacing_seconds``, cancel, and ``validity_seconds`` expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.conftest import Gateway
from tests.integration.helpers import (
    assert_problem,
    events_of,
    jobs_for,
    message_row,
    problem_fields,
    settle,
    sim_sends,
)

FAR = datetime(2099, 1, 1, tzinfo=UTC)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


async def test_iso_send_at_waits_then_goes_within_a_second(gateway: Gateway) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=1.5)
    response = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155553001", "body": "later", "send_at": send_at.isoformat()},
    )

    assert response.status_code == 202, response.text
    message = response.json()
    assert message["status"] == "scheduled"
    assert _at(message["send_at"]) == send_at
    (job,) = await jobs_for(gateway, message["id"])
    assert abs(job["run_at"] - send_at.timestamp()) < 0.001

    await gateway.drain()  # not due yet: nothing happens
    assert (await message_row(gateway, message["id"]))["status"] == "scheduled"
    assert await sim_sends(gateway, message["id"]) == []

    final = await settle(gateway, [message["id"]], within=10)
    row = final[message["id"]]
    assert row["status"] == "delivered"
    (carrier,) = await sim_sends(gateway, message["id"])
    assert send_at.timestamp() <= carrier["created_at"] < send_at.timestamp() + 1.0
    assert send_at <= row["sent_at"] < send_at + timedelta(seconds=1)
    events = (await gateway.client.get(f"/v1/messages/{message['id']}/events")).json()
    assert [e["status"] for e in events] == ["scheduled", "sending", "sent", "delivered"]


async def test_send_at_forms(gateway: Gateway) -> None:
    unix = int(FAR.timestamp())
    cases = [
        (unix, FAR),
        (unix + 0.5, FAR + timedelta(seconds=0.5)),
        (str(unix), FAR),
        ("2099-01-01T00:00:00Z", FAR),
        ("2099-01-01T02:00:00+02:00", FAR),
    ]
    for value, expected in cases:
        response = await gateway.client.post(
            "/v1/messages", json={"to": "+14155553002", "body": "x", "send_at": value}
        )
        assert response.status_code == 202, (value, response.text)
        message = response.json()
        assert message["status"] == "scheduled"
        assert _at(message["send_at"]) == expected, value
        assert (await message_row(gateway, message["id"]))["send_at"] == expected
        cancel = await gateway.client.post(f"/v1/messages/{message['id']}/cancel")
        assert cancel.status_code == 200

    past = await gateway.client.post(
        "/v1/messages", json={"to": "+14155553002", "body": "x", "send_at": 1_600_000_000}
    )
    assert past.status_code == 202
    assert past.json()["status"] == "queued"

    for bad, message in [
        ("2099-01-01T00:00:00", "ISO 8601 time must include a zone, e.g. Z or +02:00"),
        ("tomorrow", "must be an ISO 8601 time or unix seconds"),
        (True, "must be an ISO 8601 time or unix seconds"),
    ]:
        response = await gateway.client.post(
            "/v1/messages", json={"to": "+14155553002", "body": "x", "send_at": bad}
        )
        assert problem_fields(assert_problem(response, 422, "validation_failed")) == {
            "send_at": message
        }
    await settle(gateway, [past.json()["id"]])


async def test_spacing_staggers_by_index(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/batches",
        json={
            "recipients": ["+14155553003", "+14155553004", "+14155553005", "+14155553006"],
            "body": "drip",
            "send_at": FAR.isoformat(),
            "spacing_seconds": 30,
        },
    )
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["counts"] == {"scheduled": 4}
    rows = [await message_row(gateway, i) for i in batch["message_ids"]]
    assert [row["send_at"] for row in rows] == [FAR + timedelta(seconds=30 * i) for i in range(4)]
    for message_id in batch["message_ids"]:
        jobs = await jobs_for(gateway, message_id)
        row = await message_row(gateway, message_id)
        assert [job["run_at"] for job in jobs] == [row["send_at"].timestamp()]
        await gateway.client.post(f"/v1/messages/{message_id}/cancel")

    now_based = await gateway.client.post(
        "/v1/batches",
        json={"recipients": ["+14155553003", "+14155553004"], "body": "x", "spacing_seconds": 60},
    )
    first, second = now_based.json()["message_ids"]
    assert (await message_row(gateway, first))["status"] == "queued"
    second_row = await message_row(gateway, second)
    assert second_row["status"] == "scheduled"
    assert second_row["send_at"] - second_row["created_at"] == timedelta(seconds=60)
    await gateway.client.post(f"/v1/messages/{second}/cancel")
    await settle(gateway, [first])


async def test_spaced_messages_go_out_on_time(gateway: Gateway) -> None:
    start = datetime.now(UTC) + timedelta(seconds=0.5)
    response = await gateway.client.post(
        "/v1/batches",
        json={
            "recipients": ["+14155553007", "+14155553008", "+14155553009"],
            "body": "tick",
            "send_at": start.isoformat(),
            "spacing_seconds": 0.5,
        },
    )
    assert response.status_code == 202, response.text
    ids = response.json()["message_ids"]
    final = await settle(gateway, ids, within=10)
    assert {row["status"] for row in final.values()} == {"delivered"}
    carrier_times = []
    for index, message_id in enumerate(ids):
        due = start + timedelta(seconds=0.5 * index)
        assert final[message_id]["send_at"] == due
        (carrier,) = await sim_sends(gateway, message_id)
        assert due.timestamp() <= carrier["created_at"] < due.timestamp() + 1.0
        carrier_times.append(carrier["created_at"])
    assert carrier_times == sorted(carrier_times)


async def test_cancel_scheduled_and_queued_then_409_once_sent(gateway: Gateway) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    scheduled = (
        await gateway.client.post(
            "/v1/messages", json={"to": "+14155553010", "body": "s", "send_at": soon.isoformat()}
        )
    ).json()
    queued = (
        await gateway.client.post("/v1/messages", json={"to": "+14155553011", "body": "q"})
    ).json()

    for message in (scheduled, queued):
        response = await gateway.client.post(f"/v1/messages/{message['id']}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "canceled"
        assert response.json()["id"] == message["id"]
        assert (await message_row(gateway, message["id"]))["status"] == "canceled"
        assert await jobs_for(gateway, message["id"]) == []
        assert await events_of(gateway, message["id"]) == ["canceled"]

    await _sleep_until(soon + timedelta(seconds=0.1))
    await gateway.drain()
    for message in (scheduled, queued):
        assert (await message_row(gateway, message["id"]))["status"] == "canceled"
        assert await sim_sends(gateway, message["id"]) == []
        again = await gateway.client.post(f"/v1/messages/{message['id']}/cancel")
        assert "canceled" in assert_problem(again, 409, "not_cancelable")["detail"]

    sent = (
        await gateway.client.post("/v1/messages", json={"to": "+14155553012", "body": "gone"})
    ).json()
    await settle(gateway, [sent["id"]])
    late = await gateway.client.post(f"/v1/messages/{sent['id']}/cancel")
    body = assert_problem(late, 409, "not_cancelable")
    assert "delivered" in body["detail"]
    assert (await message_row(gateway, sent["id"]))["status"] == "delivered"
    assert_problem(
        await gateway.client.post("/v1/messages/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel"),
        404,
        "not_found",
    )


async def test_validity_expires_a_message_that_could_not_go_in_time(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages", json={"to": "+14155553013", "body": "hurry", "validity_seconds": 1}
    )
    assert response.status_code == 202
    message = response.json()
    expires_at = _at(message["expires_at"])
    assert expires_at == _at(message["created_at"]) + timedelta(seconds=1)

    # No worker ran in time.
    await _sleep_until(expires_at + timedelta(seconds=0.05))
    final = await settle(gateway, [message["id"]])

    row = final[message["id"]]
    assert row["status"] == "expired"
    assert row["error_code"] == "expired"
    assert await sim_sends(gateway, message["id"]) == []
    assert await jobs_for(gateway, message["id"]) == []
    fetched = (await gateway.client.get(f"/v1/messages/{message['id']}")).json()
    assert fetched["status"] == "expired"
    assert fetched["sent_at"] is None
    assert await events_of(gateway, message["id"]) == ["expired"]


async def test_validity_counts_from_send_at_and_does_not_expire_in_time(gateway: Gateway) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=0.3)
    response = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155553014",
            "body": "on time",
            "send_at": send_at.isoformat(),
            "validity_seconds": 30,
        },
    )
    message = response.json()
    assert _at(message["expires_at"]) == send_at + timedelta(seconds=30)
    final = await settle(gateway, [message["id"]])
    assert final[message["id"]]["status"] == "delivered"

    zero = await gateway.client.post(
        "/v1/messages", json={"to": "+14155553014", "body": "x", "validity_seconds": 0}
    )
    assert "validity_seconds" in problem_fields(assert_problem(zero, 422, "validation_failed"))
