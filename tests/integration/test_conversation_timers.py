"""Silence timers (warning, timeout, the PolyAI policy) with a controllable clock, quiet hours,
and the conversation and recipient events sent to webhook endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from agentsms.core.conversations import TIMER_JOB
from agentsms.jobs import queue
from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.conversation_helpers import forget_deliveries
from tests.integration.helpers import jobs_for, settle


@pytest.fixture(autouse=True)
async def _no_lingering_deliveries(gateway: Gateway) -> AsyncIterator[None]:
    yield
    await forget_deliveries(gateway)


PERSON = "+14155555101"
OURS = "+14155550100"


async def run_timers_at(gateway: Gateway, fake_now: float) -> int:
    """Run this project's timer jobs that are due at ``fake_now`` (the clock jumps; nobody
    sleeps). Other tests' timers (other projects) go back to the queue untouched."""
    mine = select(tables.conversations.c.id).where(
        tables.conversations.c.project_id == gateway.project_id
    )
    async with gateway.db.write() as conn:
        ours = {row[0] for row in (await conn.execute(mine)).all()}
        claimed = await queue.claim(
            conn, owner="fake-clock", limit=1000, lease_seconds=30, kinds=[TIMER_JOB], now=fake_now
        )
        for job in claimed:
            if job.ref not in ours:
                await queue.release_many(conn, [job], run_at=job.run_at)
        claimed = [job for job in claimed if job.ref in ours]
    if claimed:
        await gateway.worker.handlers[TIMER_JOB](claimed)
    await gateway.drain()
    return len(claimed)


async def timer_jobs(gateway: Gateway, conversation_id: str) -> list[Any]:
    query = (
        select(tables.jobs)
        .where(tables.jobs.c.kind == TIMER_JOB, tables.jobs.c.ref == conversation_id)
        .order_by(tables.jobs.c.run_at)
    )
    async with gateway.db.read() as conn:
        return list((await conn.execute(query)).mappings().all())


async def conversation(gateway: Gateway, conversation_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await gateway.client.get(f"/v1/conversations/{conversation_id}")).json()
    return body


async def event_types(gateway: Gateway) -> list[str]:
    query = (
        select(tables.webhook_events.c.type, tables.webhook_events.c.payload)
        .where(tables.webhook_events.c.project_id == gateway.project_id)
        .order_by(tables.webhook_events.c.id)
    )
    async with gateway.db.read() as conn:
        return [row[0] for row in (await conn.execute(query)).all()]


async def event_payloads(gateway: Gateway, event_type: str) -> list[dict[str, Any]]:
    query = select(tables.webhook_events.c.payload).where(
        tables.webhook_events.c.project_id == gateway.project_id,
        tables.webhook_events.c.type == event_type,
    )
    async with gateway.db.read() as conn:
        return [dict(row[0]) for row in (await conn.execute(query)).all()]


async def subscribe(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/webhook-endpoints",
        json={
            "url": "https://hooks.example.com/agentsms",
            "event_types": ["conversation.*", "recipient.*"],
        },
    )
    assert response.status_code == 201, response.text


async def test_warning_then_timeout_with_a_fake_clock(gateway: Gateway) -> None:
    await subscribe(gateway)
    started = time.time()
    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": PERSON,
            "body": "Your order is ready",
            "conversation": {
                "warning_seconds": 300,
                "warning_message": "Still there?",
                "timeout_seconds": 600,
                "timeout_message": "Closing this chat.",
                "metadata": {"order": 7},
            },
        },
    )
    assert sent.status_code == 202, sent.text
    cid = sent.json()["conversation_id"]
    jobs = await timer_jobs(gateway, cid)
    assert [j["payload"]["stage"] for j in jobs] == ["warning", "timeout"]
    assert started + 299 < jobs[0]["run_at"] < time.time() + 301
    assert started + 599 < jobs[1]["run_at"] < time.time() + 601
    await gateway.drain()

    assert await run_timers_at(gateway, started + 200) == 0
    assert await run_timers_at(gateway, time.time() + 301) == 1
    shown = await conversation(gateway, cid)
    assert shown["status"] == "open"
    assert [(m["body"], m["status"]) for m in shown["messages"]][-1] == (
        "Still there?",
        "delivered",
    )

    assert await run_timers_at(gateway, time.time() + 601) == 1
    shown = await conversation(gateway, cid)
    assert shown["status"] == "ended"
    assert shown["end_reason"] == "timeout"
    assert [m["body"] for m in shown["messages"]] == [
        "Your order is ready",
        "Still there?",
        "Closing this chat.",
    ]
    assert [m["purpose"] for m in shown["messages"]] == [
        "api",
        "timeout_warning",
        "timeout_message",
    ]
    assert await event_types(gateway) == [
        "conversation.started",
        "conversation.warning_sent",
        "conversation.ended",
    ]
    (ended,) = await event_payloads(gateway, "conversation.ended")
    assert ended["data"]["conversation"]["end_reason"] == "timeout"
    assert ended["data"]["reason"] == "timeout"
    assert ended["data"]["outcome"] is None
    assert ended["data"]["metadata"] == {"order": 7}
    assert [h["body"] for h in ended["data"]["recent_history"]][-1] == "Closing this chat."


async def test_a_reply_restarts_the_timers(gateway: Gateway) -> None:
    sent = await gateway.client.post(
        "/v1/messages",
        json={"to": PERSON, "body": "hi", "conversation": {"timeout_seconds": 600}},
    )
    cid = sent.json()["conversation_id"]
    (before,) = await timer_jobs(gateway, cid)
    await asyncio.sleep(0.01)
    reply = await gateway.client.post(
        "/v1/simulator/inbound", json={"from": PERSON, "to": OURS, "body": "hello"}
    )
    assert reply.status_code == 202
    (after,) = await timer_jobs(gateway, cid)
    assert after["id"] != before["id"]
    assert after["run_at"] > before["run_at"]
    # The old deadline passes: nothing happens, the new one is still ahead.
    assert await run_timers_at(gateway, before["run_at"] + 0.001) == 0
    assert (await conversation(gateway, cid))["status"] == "open"
    assert await run_timers_at(gateway, after["run_at"]) == 1
    assert (await conversation(gateway, cid))["status"] == "ended"


async def test_polyai_policy_waits_for_engagement_then_warns_at_24h_and_ends_10_min_later(
    gateway: Gateway,
) -> None:
    sent = await gateway.client.post(
        "/v1/messages",
        json={"to": PERSON, "body": "Appointment tomorrow?", "conversation": {"policy": "polyai"}},
    )
    cid = sent.json()["conversation_id"]
    assert await timer_jobs(gateway, cid) == []  # not engaged: no timers yet
    await gateway.client.post(
        "/v1/simulator/inbound", json={"from": PERSON, "to": OURS, "body": "maybe"}
    )
    replied = time.time()
    warning, timeout = await timer_jobs(gateway, cid)
    assert abs(warning["run_at"] - (replied + 86_400)) < 5
    assert abs(timeout["run_at"] - (replied + 87_000)) < 5
    assert await run_timers_at(gateway, replied + 86_399 - 5) == 0
    assert await run_timers_at(gateway, replied + 86_401) == 1
    shown = await conversation(gateway, cid)
    assert shown["status"] == "open"
    assert "Are you still there?" in shown["messages"][-1]["body"]
    assert await run_timers_at(gateway, replied + 87_001) == 1
    assert (await conversation(gateway, cid))["status"] == "ended"


async def test_timers_fire_within_a_second_on_the_real_clock(gateway: Gateway) -> None:
    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": PERSON,
            "body": "quick",
            "conversation": {"warning_seconds": 0.2, "timeout_seconds": 0.4},
        },
    )
    cid = sent.json()["conversation_id"]
    start = time.monotonic()
    while (await conversation(gateway, cid))["status"] != "ended":
        assert time.monotonic() - start < 5, "timeout did not fire"
        await gateway.drain()
        await asyncio.sleep(0.02)
    assert time.monotonic() - start < 0.4 + 1.0
    shown = await conversation(gateway, cid)
    assert len(shown["messages"]) == 2  # the text and the default warning


async def test_opt_out_and_opt_in_events(gateway: Gateway) -> None:
    await subscribe(gateway)
    await gateway.client.post("/v1/messages", json={"to": PERSON, "body": "deal!"})
    for word in ("STOP", "START"):
        await gateway.client.post(
            "/v1/simulator/inbound", json={"from": PERSON, "to": OURS, "body": word}
        )
    types = await event_types(gateway)
    assert types[:3] == ["conversation.started", "conversation.ended", "recipient.opted_out"]
    assert "recipient.opted_in" in types
    (out,) = await event_payloads(gateway, "recipient.opted_out")
    assert out["data"]["recipient"] == PERSON
    assert out["data"]["keyword"] == "STOP"


def _next_utc(clock: str, after: datetime) -> datetime:
    hour, minute = (int(x) for x in clock.split(":"))
    moment = after.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment if moment > after else moment + timedelta(days=1)


async def test_quiet_hours_defer_sends_to_the_next_allowed_time(gateway: Gateway) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    patched = await gateway.client.patch(
        "/v1/project",
        json={"settings": {"quiet_hours": {"start": start, "end": end, "timezone": "UTC"}}},
    )
    assert patched.status_code == 200, patched.text
    deferred = await gateway.client.post("/v1/messages", json={"to": PERSON, "body": "late"})
    assert deferred.status_code == 202, deferred.text
    assert deferred.json()["status"] == "scheduled"
    send_at = datetime.fromisoformat(deferred.json()["send_at"].replace("Z", "+00:00"))
    assert send_at == _next_utc(end, now)

    allowed = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155555102", "body": "urgent", "conversation": {"quiet_hours": False}},
    )
    assert allowed.json()["status"] == "queued"
    bad = await gateway.client.post(
        "/v1/messages",
        json={"to": PERSON, "body": "x", "conversation": {"quiet_hours": {"start": "9pm"}}},
    )
    assert bad.status_code == 422
    # Compliance answers are never deferred.
    await gateway.client.post(
        "/v1/simulator/inbound", json={"from": "+14155555103", "to": OURS, "body": "HELP"}
    )
    rows = [
        r
        for r in (await gateway.client.get("/v1/messages", params={"to": "+14155555103"})).json()[
            "data"
        ]
    ]
    assert [r["status"] for r in rows] == ["queued"]
    await gateway.client.post(f"/v1/messages/{deferred.json()['id']}/cancel")


async def test_a_queued_send_reaching_quiet_hours_waits_at_dispatch(gateway: Gateway) -> None:
    person = "+14155555104"
    queued = await gateway.client.post("/v1/messages", json={"to": person, "body": "later"})
    assert queued.json()["status"] == "queued"
    now = datetime.now(UTC)
    end = (now + timedelta(hours=3)).strftime("%H:%M")
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": end, "timezone": "UTC"}
    patched = await gateway.client.patch("/v1/project", json={"settings": {"quiet_hours": quiet}})
    assert patched.status_code == 200, patched.text
    await gateway.drain()
    message = (await gateway.client.get(f"/v1/messages/{queued.json()['id']}")).json()
    assert message["status"] == "queued"  # not sent, not dropped
    (job,) = [
        j for j in await jobs_of_kind(gateway, "message.send") if j["ref"] == queued.json()["id"]
    ]
    assert abs(job["run_at"] - _next_utc(end, now).timestamp()) < 1
    log = (await gateway.client.get("/v1/simulator/log", params={"to": person})).json()
    assert log["data"] == []
    await gateway.client.post(f"/v1/messages/{queued.json()['id']}/cancel")


async def test_quiet_hours_past_a_messages_validity_expire_it(gateway: Gateway) -> None:
    now = datetime.now(UTC)
    end = (now + timedelta(hours=3)).strftime("%H:%M")
    # Queued before quiet hours begin: dispatch meets them.
    queued = await gateway.client.post(
        "/v1/messages", json={"to": "+14155555105", "body": "soon", "validity_seconds": 600}
    )
    assert queued.json()["status"] == "queued"
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": end, "timezone": "UTC"}
    patched = await gateway.client.patch("/v1/project", json={"settings": {"quiet_hours": quiet}})
    assert patched.status_code == 200, patched.text
    # Accepted inside quiet hours: deferred by intake.
    deferred = await gateway.client.post(
        "/v1/messages", json={"to": "+14155555106", "body": "soon", "validity_seconds": 1}
    )
    assert deferred.json()["status"] == "scheduled"
    ids = [queued.json()["id"], deferred.json()["id"]]

    final = await settle(gateway, ids, within=5)

    for message_id in ids:
        assert (final[message_id]["status"], final[message_id]["error_code"]) == (
            "expired",
            "expired",
        )
        assert await jobs_for(gateway, message_id) == []
    for person in ("+14155555105", "+14155555106"):
        log = (await gateway.client.get("/v1/simulator/log", params={"to": person})).json()
        assert log["data"] == []


async def jobs_of_kind(gateway: Gateway, kind: str) -> list[Any]:
    query = select(tables.jobs).where(tables.jobs.c.kind == kind)
    async with gateway.db.read() as conn:
        return list((await conn.execute(query)).mappings().all())


async def test_a_batch_starts_timers_for_each_conversation(gateway: Gateway) -> None:
    people = ["+14155555201", "+14155555202", "+14155555203"]
    batch = await gateway.client.post(
        "/v1/batches",
        json={"recipients": people, "body": "hi", "conversation": {"timeout_seconds": 60}},
    )
    assert batch.status_code == 202, batch.text
    listed = (await gateway.client.get("/v1/conversations")).json()["data"]
    assert len(listed) == 3
    for conversation in listed:
        (job,) = await timer_jobs(gateway, conversation["id"])
        assert job["payload"]["stage"] == "timeout"
    assert await run_timers_at(gateway, time.time() + 61) == 3
    ended = (await gateway.client.get("/v1/conversations", params={"status": "ended"})).json()
    assert len(ended["data"]) == 3
