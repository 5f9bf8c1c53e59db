"""The built-in carrier: delivery, failures, throttling, refusals, its send log, inbound texts."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import update

from agentsms.app import create_app
from agentsms.core.provider_events import UNMATCHED_RECEIPTS_JOB
from agentsms.core.simulator import REPORT_JOB
from agentsms.jobs.queue import NewJob, enqueue_many
from agentsms.providers.base import SendRequest, SendResult
from agentsms.store import tables
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for
from tests.integration.helpers import (
    assert_problem,
    count,
    jobs_for,
    message_row,
    message_rows,
    problem_fields,
    settle,
    sim_sends,
)


async def _number(gateway: Gateway, number: str, **settings: object) -> None:
    response = await gateway.client.post(
        "/v1/numbers",
        json={"number": number, "throughput_mps": 100, "settings": settings},
    )
    assert response.status_code == 201, response.text


async def _send(gateway: Gateway, **payload: object) -> dict[str, object]:
    response = await gateway.client.post("/v1/messages", json=payload)
    assert response.status_code == 202, response.text
    message: dict[str, object] = response.json()
    return message


@asynccontextmanager
async def _gateway_with(gateway: Gateway, **overrides: object) -> AsyncIterator[Gateway]:
    """Another API on the same database, with different settings."""
    app = create_app(settings_for(gateway.settings.database_url, **overrides))
    async with app.router.lifespan_context(app), open_gateway(app, "tuned") as tuned:
        yield tuned


async def test_delivery_report_comes_after_the_configured_delay(gateway: Gateway) -> None:
    await _number(gateway, "+14155550115", delivery_delay_seconds=1.0)
    message = await _send(
        gateway, to="+14155553101", body="wait for it", **{"from": "+14155550115"}
    )

    await settle(gateway, [str(message["id"])], until={"sent"})
    row = await message_row(gateway, str(message["id"]))
    assert row["status"] == "sent"
    assert row["provider_message_id"] == f"SIM{str(message['id']).removeprefix('msg_')}"
    assert row["delivered_at"] is None

    final = (await settle(gateway, [str(message["id"])]))[str(message["id"])]
    assert final["status"] == "delivered"
    assert final["delivered_at"] - final["sent_at"] >= timedelta(seconds=0.8)
    (carrier,) = await sim_sends(gateway, str(message["id"]))
    assert carrier["outcome"] == "delivered"
    assert carrier["to_number"] == "+14155553101"
    assert carrier["from_number"] == "+14155550115"


async def test_failure_rate_one_reports_undelivered_with_the_error_code(gateway: Gateway) -> None:
    await _number(gateway, "+14155550116", failure_rate=1, failure_code="30007")
    ids = [
        str(
            (await _send(gateway, to=f"+1415555310{i}", body="x", **{"from": "+14155550116"}))["id"]
        )
        for i in range(2, 5)
    ]

    final = await settle(gateway, ids)

    for message_id in ids:
        row = final[message_id]
        assert row["status"] == "undelivered"
        assert row["error_code"] == "30007"
        assert row["error_message"] == "carrier violation (filtered)"
        assert row["sent_at"] is not None
        assert row["delivered_at"] is None
        (carrier,) = await sim_sends(gateway, message_id)
        assert (carrier["outcome"], carrier["error_code"]) == ("undelivered", "30007")
        events = (await gateway.client.get(f"/v1/messages/{message_id}/events")).json()
        assert [e["status"] for e in events] == ["queued", "sending", "sent", "undelivered"]
        assert events[-1]["data"] == {"error_code": "30007"}
    api = (await gateway.client.get(f"/v1/messages/{ids[0]}")).json()
    assert (api["status"], api["error_code"]) == ("undelivered", "30007")


async def test_throttling_is_retried_with_backoff_then_fails(gateway: Gateway) -> None:
    async with _gateway_with(gateway, job_max_attempts=3) as tuned:
        numbers = (await tuned.client.get("/v1/numbers")).json()["data"]
        await tuned.client.delete(f"/v1/numbers/{numbers[0]['id']}")
        await _number(tuned, "+14155550117", throttle_rate=1)
        message = await _send(tuned, to="+14155553105", body="busy")
        message_id = str(message["id"])
        (job,) = await jobs_for(tuned, message_id)
        assert job["max_attempts"] == 3

        first_try = time.time()
        await tuned.drain()
        (job,) = await jobs_for(tuned, message_id)
        assert (job["status"], job["attempts"]) == ("queued", 1)
        assert job["last_error"].startswith("429")
        # The carrier said Retry-After: 1, so the retry waits at least that long.
        assert job["run_at"] >= first_try + 1.0
        row = await message_row(tuned, message_id)
        assert row["status"] == "sending"
        assert row["error_code"] == "429"
        assert not row["in_flight"]

        final = (await settle(tuned, [message_id], within=10))[message_id]

        assert final["status"] == "failed"
        assert final["error_code"] == "429"
        assert final["sent_at"] is None
        assert await jobs_for(tuned, message_id) == []
        assert time.time() - first_try >= 2.0  # two waits of a second each
        assert await sim_sends(tuned, message_id) == []
        api = (await tuned.client.get(f"/v1/messages/{message_id}")).json()
        assert (api["status"], api["error_code"]) == ("failed", "429")
        events = (await tuned.client.get(f"/v1/messages/{message_id}/events")).json()
        assert [e["status"] for e in events] == ["queued", "sending", "failed"]


async def test_delivered_after_a_retry_carries_no_error(gateway: Gateway) -> None:
    await _number(gateway, "+14155550119", throttle_rate=1)
    message = await _send(gateway, to="+14155553107", body="x", **{"from": "+14155550119"})
    message_id = str(message["id"])
    await gateway.drain()
    assert (await message_row(gateway, message_id))["error_code"] == "429"
    # The carrier takes it on the next attempt.
    async with gateway.db.write() as conn:
        await conn.execute(
            update(tables.numbers)
            .where(tables.numbers.c.number == "+14155550119")
            .values(settings={})
        )

    final = (await settle(gateway, [message_id], within=10))[message_id]

    assert (final["status"], final["error_code"], final["error_message"]) == (
        "delivered",
        None,
        None,
    )
    api = (await gateway.client.get(f"/v1/messages/{message_id}")).json()
    assert (api["status"], api["error_code"]) == ("delivered", None)


async def test_throttled_past_its_validity_expires(gateway: Gateway) -> None:
    await _number(gateway, "+14155550118", throttle_rate=1)
    message = await _send(
        gateway, to="+14155553106", body="x", validity_seconds=1, **{"from": "+14155550118"}
    )
    final = (await settle(gateway, [str(message["id"])]))[str(message["id"])]
    # The retry would come after the message's validity ends: expired at once.
    assert final["status"] == "expired"
    assert await jobs_for(gateway, str(message["id"])) == []


async def test_mms_to_a_landline_is_refused_permanently(gateway: Gateway) -> None:
    message = await _send(
        gateway, to="+442071838750", body="pic", media_urls=["https://example.com/a.png"]
    )
    assert message["channel"] == "mms"
    message_id = str(message["id"])

    ran = await gateway.drain()

    assert ran >= 1
    row = await message_row(gateway, message_id)
    assert row["status"] == "failed"
    assert row["error_code"] == "30006"
    assert "landline" in row["error_message"]
    assert row["attempts"] <= 1
    assert await jobs_for(gateway, message_id) == []  # no retry
    assert await sim_sends(gateway, message_id) == []
    # A plain text to the same landline is fine.
    text = await _send(gateway, to="+442071838750", body="words")
    assert (await settle(gateway, [str(text["id"])]))[str(text["id"])]["status"] == "delivered"


async def test_opted_out_recipient_is_refused(gateway: Gateway) -> None:
    await _number(gateway, "+14155550119", reject_recipients=["+14155553107"])
    refused = await _send(gateway, to="+14155553107", body="x", **{"from": "+14155550119"})
    fine = await _send(gateway, to="+14155553108", body="x", **{"from": "+14155550119"})
    final = await settle(gateway, [str(refused["id"]), str(fine["id"])])
    assert final[str(refused["id"])]["status"] == "failed"
    assert final[str(refused["id"])]["error_code"] == "21610"
    assert final[str(fine["id"])]["status"] == "delivered"


async def test_a_repeated_reference_is_answered_once_and_counted(gateway: Gateway) -> None:
    message = await _send(gateway, to="+14155553109", body="only once")
    message_id = str(message["id"])
    await settle(gateway, [message_id])
    row = await message_row(gateway, message_id)
    before = (await gateway.client.get("/v1/simulator/log")).json()["totals"]

    # A client that lost the answer asks again with the same reference.
    simulator = gateway.app.state.agentsms.providers.get("simulator")
    request = SendRequest(
        reference=message_id,
        from_number=row["from_number"],
        to_number=row["to_number"],
        body=row["body"],
        channel=row["channel"],
    )
    outcomes = await simulator.send_many([request, request])

    assert outcomes == [SendResult(provider_message_id=row["provider_message_id"])] * 2
    (carrier,) = await sim_sends(gateway, message_id)
    assert carrier["repeat_count"] == 2
    log = (await gateway.client.get("/v1/simulator/log", params={"to": "+14155553109"})).json()
    mine = [entry for entry in log["data"] if entry["reference"] == message_id]
    assert len(mine) == 1
    assert mine[0]["repeat_count"] == 2
    assert mine[0]["provider_message_id"] == row["provider_message_id"]
    assert log["totals"]["repeats"] == before["repeats"] + 2
    assert log["totals"]["sends"] == before["sends"]
    await gateway.drain()
    # No second delivery report was scheduled: the message is untouched.
    assert (await message_row(gateway, message_id))["delivered_at"] == row["delivered_at"]


async def _reports_for(gateway: Gateway, message_id: str) -> int:
    """Delivery reports the simulator has scheduled and not yet made, for ``message_id``."""
    query = tables.jobs.select().where(tables.jobs.c.kind == REPORT_JOB)
    async with gateway.db.read() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return sum(
        receipt["reference"] == message_id
        for row in rows
        for receipt in (
            json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
        )["receipts"]
    )


async def test_without_dedupe_references_a_repeated_reference_is_texted_again(
    gateway: Gateway,
) -> None:
    """``dedupe_references: false``: a carrier that does not de-duplicate. The repeat is
    texted again (another delivery report) and counted in the log's repeated references."""
    await _number(gateway, "+14155550117", dedupe_references=False, delivery_delay_seconds=30)
    message = await _send(gateway, to="+14155553119", body="twice", **{"from": "+14155550117"})
    message_id = str(message["id"])
    await settle(gateway, [message_id], until={"sent"})
    row = await message_row(gateway, message_id)
    assert await _reports_for(gateway, message_id) == 1
    before = (await gateway.client.get("/v1/simulator/log")).json()["totals"]

    simulator = gateway.app.state.agentsms.providers.get("simulator")
    request = SendRequest(
        reference=message_id,
        from_number=row["from_number"],
        to_number=row["to_number"],
        body=row["body"],
        channel=row["channel"],
        number_settings={"dedupe_references": False, "delivery_delay_seconds": 30},
    )
    outcomes = await simulator.send_many([request])

    assert outcomes == [SendResult(provider_message_id=row["provider_message_id"])]
    assert await _reports_for(gateway, message_id) == 2  # the person got it twice
    (carrier,) = await sim_sends(gateway, message_id)
    assert carrier["repeat_count"] == 1
    totals = (await gateway.client.get("/v1/simulator/log")).json()["totals"]
    assert totals == {**before, "repeats": before["repeats"] + 1}


async def _report(gateway: Gateway, **receipt: object) -> None:
    """A delivery report from the simulator, due now."""
    async with gateway.db.write() as conn:
        await enqueue_many(
            conn, [NewJob(kind=REPORT_JOB, payload={"receipts": [receipt]}, run_at=time.time())]
        )
    await gateway.drain()


async def test_reports_are_matched_like_any_carriers_receipts(gateway: Gateway) -> None:
    """The simulator's reports take the path of every carrier's receipts: one whose carrier
    id is not the message's changes nothing and is parked to be matched again; one that
    names the message moves it, its bare error code worded by the simulator."""
    await _number(gateway, "+14155550118", delivery_delay_seconds=3600)
    message = await _send(gateway, to="+14155553120", body="later", **{"from": "+14155550118"})
    message_id = str(message["id"])
    await settle(gateway, [message_id], until={"sent"})
    row = await message_row(gateway, message_id)

    await _report(
        gateway,
        reference=message_id,
        provider_message_id="SIManother",
        status="delivered",
        error_code=None,
    )
    assert (await message_row(gateway, message_id))["status"] == "sent"
    parked = [
        job
        for job in await jobs_for(gateway, "simulator")
        if job["kind"] == UNMATCHED_RECEIPTS_JOB
        and any(r["provider_message_id"] == "SIManother" for r in job["payload"]["receipts"])
    ]
    assert len(parked) == 1
    assert parked[0]["payload"]["provider"] == "simulator"

    await _report(
        gateway,
        reference=message_id,
        provider_message_id=row["provider_message_id"],
        status="undelivered",
        error_code="30005",
    )
    after = await message_row(gateway, message_id)
    assert (after["status"], after["error_code"]) == ("undelivered", "30005")
    assert after["error_message"] == "unknown destination handset"
    async with gateway.db.write() as conn:
        await conn.execute(tables.jobs.delete().where(tables.jobs.c.id == parked[0]["id"]))


async def test_send_log_counts_texts_per_person(gateway: Gateway) -> None:
    ids = [str((await _send(gateway, to="+14155553110", body=f"n{i}"))["id"]) for i in range(3)]
    await settle(gateway, ids)
    log = await gateway.client.get("/v1/simulator/log", params={"to": "+1 415 555 3110"})
    assert log.status_code == 200
    entries = [entry for entry in log.json()["data"] if entry["reference"] in ids]
    assert sorted(entry["reference"] for entry in entries) == sorted(ids)
    assert {entry["to"] for entry in entries} == {"+14155553110"}
    assert {entry["outcome"] for entry in entries} == {"delivered"}
    # Two worker loops may each claim one of them: the log keeps the order they went in.
    assert sorted(entry["body"] for entry in entries) == ["n0", "n1", "n2"]
    assert (
        await count(
            gateway,
            tables.simulator_sends,
            tables.simulator_sends.c.reference.in_(ids),
        )
        == 3
    )


async def test_inbound_goes_through_the_inbound_path(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/simulator/inbound",
        json={"from": "+1 415 555 3111", "to": "+14155550100", "body": "hi agent"},
    )

    assert response.status_code == 202, response.text
    message = response.json()
    assert message["direction"] == "inbound"
    assert message["status"] == "received"
    assert message["from"] == "+14155553111"
    assert message["to"] == "+14155550100"
    assert message["body"] == "hi agent"
    assert message["channel"] == "sms"
    assert message["provider"] == "simulator"
    (row,) = await message_rows(gateway)
    assert row["id"] == message["id"]
    assert (row["direction"], row["status"], row["contact"]) == (
        "inbound",
        "received",
        "+14155553111",
    )
    fetched = (await gateway.client.get(f"/v1/messages/{message['id']}")).json()
    assert fetched == message
    events = (await gateway.client.get(f"/v1/messages/{message['id']}/events")).json()
    assert [e["status"] for e in events] == ["received"]
    # Nothing is sent for an inbound text.
    assert await jobs_for(gateway, message["id"]) == []

    picture = await gateway.client.post(
        "/v1/simulator/inbound",
        json={"from": "+14155553111", "to": "+14155550100", "media_urls": ["https://e.com/p.jpg"]},
    )
    assert picture.status_code == 202
    assert picture.json()["channel"] == "mms"
    assert picture.json()["media_urls"] == ["https://e.com/p.jpg"]


async def test_inbound_is_validated(gateway: Gateway) -> None:
    cases = [
        ({"from": "+14155553112", "to": "+14155550120", "body": "x"}, "to"),
        ({"from": "+1415", "to": "+14155550100", "body": "x"}, "from"),
        ({"from": "+14155553112", "to": "+14155550100", "body": ""}, "body"),
        ({"from": "+14155553112", "to": "+14155550100", "body": "x", "extra": 1}, "extra"),
    ]
    for payload, field in cases:
        response = await gateway.client.post("/v1/simulator/inbound", json=payload)
        assert field in problem_fields(assert_problem(response, 422, "validation_failed"))
    assert await message_rows(gateway) == []
