"""Every message says why it exists: ``purpose`` in the API, its filter, and webhooks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    demo_persona,
    forget_deliveries,
    start_reminder,
    text_in,
    wait_for,
)
from tests.integration.helpers import assert_problem, problem_fields

PERSON = "+14155556101"


async def _purposes(gateway: Gateway, **query: str) -> list[tuple[str, str]]:
    response = await gateway.client.get("/v1/messages", params={"limit": 100, **query})
    assert response.status_code == 200, response.text
    return [(m["purpose"], m["body"]) for m in reversed(response.json()["data"])]


async def test_each_creation_site_sets_its_purpose_and_the_list_filters_by_it(
    gateway: Gateway,
) -> None:
    sent = await gateway.client.post("/v1/messages", json={"to": PERSON, "body": "Hello"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["purpose"] == "api"
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": ["+14155556102"], "body": "News"}
    )
    assert batch.status_code == 202, batch.text
    await text_in(gateway, PERSON, "HELP")
    reply = await gateway.client.post(
        f"/v1/conversations/{sent.json()['conversation_id']}/messages",
        json={"body": "A person here"},
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["purpose"] == "human"

    assert await _purposes(gateway) == [
        ("api", "Hello"),
        ("api", "News"),
        ("inbound", "HELP"),
        ("compliance", "Reply STOP to unsubscribe. Msg&data rates may apply."),
        ("human", "A person here"),
    ]
    assert await _purposes(gateway, purpose="compliance") == [
        ("compliance", "Reply STOP to unsubscribe. Msg&data rates may apply.")
    ]
    assert await _purposes(gateway, purpose="human", to=PERSON) == [("human", "A person here")]
    bad = await gateway.client.get("/v1/messages", params={"purpose": "marketing"})
    assert "purpose" in problem_fields(assert_problem(bad, 422, "validation_failed"))


async def test_agent_texts_say_agent_in_the_api_and_in_webhook_payloads(gateway: Gateway) -> None:
    endpoint = await gateway.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.example.com/in", "event_types": ["message.*"]},
    )
    assert endpoint.status_code == 201, endpoint.text
    persona = await demo_persona(gateway)
    opening = await start_reminder(gateway, PERSON, persona["id"])
    shown = await wait_for(gateway, opening["conversation_id"], lambda c: len(c["messages"]) >= 3)
    by_direction = {(m["direction"], m["purpose"]) for m in shown["messages"]}
    assert by_direction == {("outbound", "agent"), ("inbound", "inbound")}

    query = select(tables.webhook_events.c.payload).where(
        tables.webhook_events.c.project_id == gateway.project_id
    )
    async with gateway.db.read() as conn:
        payloads: list[dict[str, Any]] = [dict(r[0]) for r in (await conn.execute(query)).all()]
    seen = {(p["type"], p["data"]["message"]["purpose"]) for p in payloads}
    assert ("message.received", "inbound") in seen
    assert ("message.delivered", "agent") in seen
    await forget_deliveries(gateway)
