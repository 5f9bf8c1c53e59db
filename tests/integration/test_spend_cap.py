"""The daily spend cap (``daily_segment_cap``, ``daily_spend_cap`` in ``PATCH /v1/project``):
validated, enforced at intake (single, grouped and batch sends, native and the five vendor
shapes) and at dispatch for scheduled messages, never calling the carrier past it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.conversation_helpers import demo_persona, start_reminder, wait_for
from tests.integration.dashboard_helpers import signed_in
from tests.integration.helpers import (
    assert_problem,
    message_rows,
    problem_fields,
    settle,
)

SENDER = "+14155550100"  # the gateway fixture's simulator number


async def _cap(gateway: Gateway, **caps: Any) -> httpx.Response:
    return await gateway.client.patch("/v1/project", json={"settings": caps})


async def _send(gateway: Gateway, to: str, body: str = "hi", **extra: Any) -> httpx.Response:
    return await gateway.client.post("/v1/messages", json={"to": to, "body": body, **extra})


async def _carrier_log(gateway: Gateway) -> list[str]:
    """The references (our message ids) of every send the simulator carrier received for
    the gateway's project."""
    ours = select(tables.messages.c.id).where(tables.messages.c.project_id == gateway.project_id)
    query = select(tables.simulator_sends.c.reference).where(
        tables.simulator_sends.c.reference.in_(ours)
    )
    async with gateway.db.read() as conn:
        return sorted(str(r) for r in (await conn.execute(query)).scalars())


def _assert_refused(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 429, "spend_cap_reached")
    tomorrow = datetime.combine(
        datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC
    )
    wait = int(response.headers["Retry-After"])
    assert abs(wait - (tomorrow - datetime.now(UTC)).total_seconds()) < 5
    assert "daily" in body["detail"]
    return body


async def test_caps_are_validated_naming_the_field(gateway: Gateway) -> None:
    bad: list[tuple[str, Any]] = [
        ("daily_segment_cap", 0),
        ("daily_segment_cap", -3),
        ("daily_segment_cap", 2.5),
        ("daily_segment_cap", True),
        ("daily_segment_cap", "10"),
        ("daily_segment_cap", 10**12),
        ("daily_spend_cap", "a lot"),
        ("daily_spend_cap", "NaN"),
        ("daily_spend_cap", "Infinity"),
        ("daily_spend_cap", 0),
        ("daily_spend_cap", -1),
        ("daily_spend_cap", 1e30),
        ("daily_spend_cap", "0.0000001"),
        ("daily_spend_cap", [1]),
    ]
    for key, value in bad:
        fields = problem_fields(
            assert_problem(await _cap(gateway, **{key: value}), 422, "validation_failed")
        )
        assert list(fields) == [f"settings.{key}"], (key, value, fields)
    assert (await gateway.client.get("/v1/project")).json()["settings"] == {}
    both = await _cap(gateway, daily_segment_cap=500, daily_spend_cap=12.5)
    assert both.status_code == 200, both.text
    assert both.json()["settings"] == {"daily_segment_cap": 500, "daily_spend_cap": "12.5"}
    cleared = await _cap(gateway, daily_segment_cap=None)
    assert cleared.json()["settings"] == {"daily_spend_cap": "12.5"}
    await _cap(gateway, daily_spend_cap=None)
    assert (await gateway.client.get("/v1/project")).json()["settings"] == {}


async def test_sends_past_the_segment_cap_are_refused_and_never_reach_the_carrier(
    gateway: Gateway,
) -> None:
    assert (await _cap(gateway, daily_segment_cap=4)).status_code == 200
    accepted = [await _send(gateway, f"+1415555260{i}") for i in range(3)]
    assert [r.status_code for r in accepted] == [202, 202, 202]
    # Two segments would make five: refused, though one more segment still fits.
    long_text = "x" * 200
    _assert_refused(await _send(gateway, "+14155552610", long_text))
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": ["+14155552611", "+14155552612"], "body": "hi"}
    )
    _assert_refused(batch)
    assert (await _send(gateway, "+14155552613")).status_code == 202
    _assert_refused(await _send(gateway, "+14155552614"))
    rows = await message_rows(gateway)
    assert len(rows) == 4
    await settle(gateway, [r["id"] for r in rows])
    assert await _carrier_log(gateway) == sorted(r["id"] for r in rows)
    # Raising the cap lets sends go again the same day.
    await _cap(gateway, daily_segment_cap=5)
    assert (await _send(gateway, "+14155552615")).status_code == 202


async def test_concurrent_sends_take_the_cap_in_turn(gateway: Gateway) -> None:
    await _cap(gateway, daily_segment_cap=5)
    answers = await asyncio.gather(*(_send(gateway, f"+1415555270{i}") for i in range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [202] * 5 + [429] * 3
    for refused in (r for r in answers if r.status_code == 429):
        _assert_refused(refused)
    assert len(await message_rows(gateway)) == 5


async def test_spend_cap_counts_price_estimates(gateway: Gateway) -> None:
    priced = await gateway.client.post(
        "/v1/numbers", json={"number": "+14155550177", "price_per_segment": "0.01"}
    )
    assert priced.status_code == 201, priced.text
    await _cap(gateway, daily_spend_cap="0.025")
    sent = [await _send(gateway, f"+1415555280{i}", **{"from": "+14155550177"}) for i in range(2)]
    assert [r.status_code for r in sent] == [202, 202]
    body = _assert_refused(await _send(gateway, "+14155552803", **{"from": "+14155550177"}))
    assert "daily_spend_cap 0.025" in body["detail"]
    # The free number still sends: the cap is on spend only.
    assert (await _send(gateway, "+14155552804", **{"from": SENDER})).status_code == 202


async def test_a_cap_set_during_the_day_counts_the_day_so_far(gateway: Gateway) -> None:
    for i in range(2):
        assert (await _send(gateway, f"+1415555290{i}")).status_code == 202
    await _cap(gateway, daily_segment_cap=3)
    assert (await _send(gateway, "+14155552903")).status_code == 202
    _assert_refused(await _send(gateway, "+14155552904"))


async def test_scheduled_messages_past_the_cap_fail_at_dispatch(gateway: Gateway) -> None:
    await _cap(gateway, daily_segment_cap=3)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    scheduled = [await _send(gateway, f"+1415555300{i}", send_at=soon) for i in range(2)]
    assert [r.status_code for r in scheduled] == [202, 202]
    # Scheduled sends are charged when they go, so these two still fit at intake.
    now = [await _send(gateway, f"+1415555301{i}") for i in range(2)]
    assert [r.status_code for r in now] == [202, 202]
    await asyncio.sleep(1.1)
    ids = [r.json()["id"] for r in scheduled + now]
    rows = await settle(gateway, ids)
    first, second = (rows[r.json()["id"]] for r in scheduled)
    assert first["status"] == "delivered"
    assert (second["status"], second["error_code"]) == ("failed", "spend_cap_reached")
    assert "daily_segment_cap 3" in second["error_message"]
    assert await _carrier_log(gateway) == sorted(i for i in ids if i != second["id"])
    events = await gateway.client.get(f"/v1/messages/{second['id']}/events")
    assert [e["status"] for e in events.json()] == ["scheduled", "failed"]


async def test_vendor_surfaces_refuse_in_their_own_shapes(gateway: Gateway) -> None:
    app, key = gateway.app, gateway.api_key
    agent = await gateway.client.post("/compat/agentphone/v1/agents", json={"name": "capped"})
    assert agent.status_code == 201, agent.text
    token = await gateway.client.post(
        "/compat/telegent/v1.0/oauth2/tokens",
        json={"AccountKey": gateway.project_id, "AccountSecret": key},
    )
    await _cap(gateway, daily_segment_cap=1)
    assert (await _send(gateway, "+14155553100")).status_code == 202
    person = "+14155553101"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver/compat"
    ) as http:
        bland = await http.post(
            "/bland/v1/sms/send",
            headers={"authorization": key},
            json={"user_number": person, "agent_number": SENDER, "agent_message": "hi"},
        )
        phone = await http.post(
            "/agentphone/v1/messages",
            headers={"Authorization": f"Bearer {key}"},
            json={"agent_id": agent.json()["id"], "to_number": person, "body": "hi"},
        )
        vida = await http.post(
            "/vida/api/v2/agent/outboundSms",
            params={"token": key},
            json={"target": person, "content": "hi"},
        )
        poly = await http.post(
            "/polyai/v1/outbound-sms",
            headers={"x-polyai-auth-token": key, "x-token-id": gateway.project_id},
            json={"user_number": person, "agent_number": SENDER, "message": "hi"},
        )
        tele = await http.post(
            "/telegent/v1.0/message/outbound",
            headers={"Authorization": f"Bearer {token.json()['token']}"},
            json={"To": [{"Number": person}], "From": SENDER, "Body": "hi"},
        )
    for response in (bland, phone, vida, poly, tele):
        assert response.status_code == 429, response.text
        assert int(response.headers["Retry-After"]) > 0
    assert bland.json()["errors"][0]["error"] == "SPEND_CAP_REACHED"
    assert phone.json()["error"]["code"] == "SPEND_CAP_REACHED"
    assert "daily_segment_cap 1" in vida.json()["message"]
    assert vida.json()["success"] is False
    assert "daily_segment_cap 1" in poly.json()["detail"]
    assert tele.json()["Message"].startswith("Too many requests: this send would pass")
    assert len(await message_rows(gateway)) == 1


async def test_an_agent_reply_past_the_cap_is_not_sent(gateway: Gateway) -> None:
    persona = await demo_persona(gateway, name="Capped reminders")
    await _cap(gateway, daily_segment_cap=1)
    opening = await start_reminder(gateway, "+14155553201", persona["id"])
    # The pathway's answer to the person ends the conversation; the answer itself is refused.
    shown = await wait_for(gateway, opening["conversation_id"], lambda c: c["status"] == "ended")
    assert [m["direction"] for m in shown["messages"]] == ["outbound", "inbound"]
    assert await _carrier_log(gateway) == [opening["id"]]


async def test_an_agent_opening_past_the_cap_fails_before_the_carrier(gateway: Gateway) -> None:
    persona = await demo_persona(gateway, name="Capped openings")
    await _cap(gateway, daily_segment_cap=1)
    first = await _send(gateway, "+14155553301")
    # Accepted without a text (nothing to charge yet); the agent's text would pass the cap.
    opening = await start_reminder(gateway, "+14155553302", persona["id"])
    shown = await wait_for(
        gateway, opening["conversation_id"], lambda c: c["status"] == "needs_attention"
    )
    failed = shown["messages"][0]
    assert (failed["status"], failed["error_code"]) == ("failed", "spend_cap_reached")
    await settle(gateway, [first.json()["id"]])
    assert await _carrier_log(gateway) == [first.json()["id"]]


async def test_the_dashboard_shows_the_refusal(gateway: Gateway) -> None:
    await _cap(gateway, daily_segment_cap=1)
    assert (await _send(gateway, "+14155553401")).status_code == 202
    async with signed_in(gateway) as viewer:
        await viewer.get("/dashboard/compose")
        refused = await viewer.post(
            "/dashboard/compose/message", {"to": "+14155553402", "body": "hi"}
        )
    assert refused.status_code == 429
    assert "Daily spend cap reached" in refused.text
    assert "daily_segment_cap 1" in refused.text
    assert len(await message_rows(gateway)) == 1
