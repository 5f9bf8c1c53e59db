"""Bland at ``/compat/bland``: the seed page's response example and every body field of
``POST /v1/sms/send`` (with its effect on the messages and conversations stored), the
conversations list and get, the per-message and conversation-end status webhooks delivered
to a real local server, and the error statuses in Bland's ``{"data": null, "errors": [...]}``
body."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import select

from agentsms.agents import load_demo_pathway
from agentsms.core.numbers import NumberInput, add_number
from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    QuietHandler,
    demo_persona,
    forget_deliveries,
    loopback_gateway,
    serve_on_loopback,
)
from tests.integration.helpers import message_rows

BASE = "/compat/bland"
SEND = f"{BASE}/v1/sms/send"
AGENT = "+14155550100"  # the gateway fixture's simulator number

# The seed page's response example.
RESPONSE_EXAMPLE: dict[str, Any] = {
    "data": {
        "message": "SMS sent successfully",
        "conversation_id": "convo_abc123",
        "workflow_id": "workflow_xyz789",
    },
    "errors": None,
}
# The seed page's content_variables example.
CONTENT_VARIABLES_EXAMPLE = """{
    "1": "John",
    "2": "Smith",
    "3": "Premium Plan"
  }"""

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def bland(gateway: Gateway, *, bearer: bool = False) -> httpx.AsyncClient:
    """A client as a Bland user has it: ``authorization: KEY`` (or ``Bearer KEY``)."""
    key = f"Bearer {gateway.api_key}" if bearer else gateway.api_key
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url="http://testserver",
        headers={"authorization": key},
    )


def assert_bland_error(response: httpx.Response, status: int, code: str) -> list[str]:
    """Bland's error body with this status and code; the messages."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"data", "errors"}
    assert body["data"] is None
    assert isinstance(body["errors"], list)
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"error", "message"}
        assert error["error"] == code
        assert isinstance(error["message"], str)
        assert error["message"]
    return [error["message"] for error in body["errors"]]


async def conversation_row(gateway: Gateway, conversation_id: str) -> dict[str, Any]:
    query = select(tables.conversations).where(tables.conversations.c.id == conversation_id)
    async with gateway.db.read() as conn:
        row = (await conn.execute(query)).mappings().one()
    return dict(row)


async def pathway(gateway: Gateway) -> dict[str, Any]:
    created = await gateway.client.post(
        "/v1/pathways", json={"name": "reminder", "document": load_demo_pathway()}
    )
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


# -- sending ----------------------------------------------------------------------------------


async def test_a_send_answers_the_pages_response_shape_and_stores_the_message(
    gateway: Gateway,
) -> None:
    async with bland(gateway) as client:
        response = await client.post(
            SEND,
            json={
                "user_number": "+14155551201",
                "agent_number": AGENT,
                "agent_message": "Hello from Bland",
                "request_data": {"order": 42},
                "metadata": {"crm_id": "c-1"},
            },
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == set(RESPONSE_EXAMPLE)
    assert body["errors"] is None
    data = body["data"]
    assert set(data) == set(RESPONSE_EXAMPLE["data"]) | {"message_id"}
    assert data["message"] == RESPONSE_EXAMPLE["data"]["message"]
    for name in ("conversation_id", "workflow_id", "message_id"):
        assert isinstance(data[name], str)
    assert data["conversation_id"].startswith("conv_")
    assert data["message_id"].startswith("msg_")
    assert data["workflow_id"] == data["message_id"]

    (row,) = await message_rows(gateway)
    assert row["id"] == data["message_id"]
    assert row["to_number"] == "+14155551201"
    assert row["from_number"] == AGENT
    assert row["body"] == "Hello from Bland"
    assert row["conversation_id"] == data["conversation_id"]
    assert row["metadata"] == {"order": 42}
    conversation = await conversation_row(gateway, data["conversation_id"])
    assert conversation["metadata"] == {"crm_id": "c-1"}
    assert conversation["status"] == "open"
    await gateway.drain()
    shown = (await gateway.client.get(f"/v1/messages/{data['message_id']}")).json()
    assert shown["status"] in ("sent", "delivered")


async def test_bearer_authorization_is_accepted_too(gateway: Gateway) -> None:
    async with bland(gateway, bearer=True) as client:
        response = await client.post(
            SEND,
            json={"user_number": "+14155551202", "agent_number": AGENT, "agent_message": "Hi"},
        )
    assert response.status_code == 200, response.text
    assert len(await message_rows(gateway)) == 1


async def test_without_agent_message_the_agent_writes_it(gateway: Gateway) -> None:
    found = await demo_persona(gateway)
    async with bland(gateway) as client:
        response = await client.post(
            SEND,
            json={
                "user_number": "+14155551203",
                "agent_number": AGENT,
                "persona_id": found["id"],
                "persona_version": "production",
                "metadata": {"name": "Ana", "time": "on Tue Dec 2 at 3 PM"},
            },
        )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    (row,) = await message_rows(gateway)
    assert row["body"] == ""  # not written yet: the agent's turn writes it
    await gateway.drain()
    shown = (await gateway.client.get(f"/v1/messages/{data['message_id']}")).json()
    assert shown["body"].startswith("Hi Ana, this is a reminder of your appointment on Tue Dec 2")
    conversation = await conversation_row(gateway, data["conversation_id"])
    assert conversation["settings"]["persona_id"] == found["id"]
    assert conversation["settings"]["persona_version"] == "production"


async def test_without_agent_message_or_an_agent_the_send_is_refused(gateway: Gateway) -> None:
    async with bland(gateway) as client:
        response = await client.post(
            SEND, json={"user_number": "+14155551204", "agent_number": AGENT}
        )
    (message,) = assert_bland_error(response, 400, "VALIDATION_FAILED")
    assert message == (
        "agent_message: is required unless the agent writes it: no persona/default agent configured"
    )
    assert await message_rows(gateway) == []


async def test_persona_settings_outrank_the_pathway_fields(gateway: Gateway) -> None:
    first = await pathway(gateway)
    second = await pathway(gateway)
    async with bland(gateway) as client:
        response = await client.post(
            SEND,
            json={
                "user_number": "+14155551205",
                "agent_number": AGENT,
                "pathway_id": first["id"],
                "pathway_version": 1,
                "start_node_id": "remind",
                "persona_settings": {
                    "pathway_id": second["id"],
                    "pathway_version": 1,
                    "start_node_id": "ask_new_time",
                },
            },
        )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    settings = (await conversation_row(gateway, data["conversation_id"]))["settings"]
    assert settings["pathway_id"] == second["id"]
    assert settings["pathway_version"] == 1
    assert settings["start_node_id"] == "ask_new_time"
    await gateway.drain()
    shown = (await gateway.client.get(f"/v1/messages/{data['message_id']}")).json()
    assert shown["body"] == "No problem. What day and time would work better for you?"


async def test_pathway_outcome_and_citation_fields_reach_the_conversation(
    gateway: Gateway,
) -> None:
    found = await pathway(gateway)
    disposition = (await gateway.client.post("/v1/dispositions", json={"name": "booked"})).json()
    schema = (
        await gateway.client.post(
            "/v1/extraction-schemas",
            json={"name": "booking", "schema": {"type": "object", "properties": {}}},
        )
    ).json()
    request = {
        "user_number": "+14155551206",
        "agent_number": AGENT,
        "pathway_id": found["id"],
        "pathway_version": 1,
        "start_node_id": "ask_new_time",
        "disposition_ids": [disposition["id"]],
        "citation_schema_ids": [schema["id"]],
    }
    async with bland(gateway) as client:
        unknown = await client.post(
            SEND, json=request | {"disposition_ids": ["disp_a"], "citation_schema_ids": ["c"]}
        )
        response = await client.post(SEND, json=request)
    messages = assert_bland_error(unknown, 400, "VALIDATION_FAILED")
    assert messages == [
        "disposition_ids[0]: no disposition disp_a here",
        "citation_schema_ids[0]: no citation_schema c here",
    ]
    assert response.status_code == 200, response.text
    cid = response.json()["data"]["conversation_id"]
    settings = (await conversation_row(gateway, cid))["settings"]
    assert settings["pathway_id"] == found["id"]
    assert settings["pathway_version"] == 1
    assert settings["start_node_id"] == "ask_new_time"
    assert settings["disposition_ids"] == [disposition["id"]]
    assert settings["citation_schema_ids"] == [schema["id"]]
    assert len(await message_rows(gateway)) == 1


async def test_an_unknown_pathway_is_a_bad_request(gateway: Gateway) -> None:
    async with bland(gateway) as client:
        response = await client.post(
            SEND,
            json={"user_number": "+14155551207", "agent_number": AGENT, "pathway_id": "pw_none"},
        )
    (message,) = assert_bland_error(response, 400, "VALIDATION_FAILED")
    assert message.startswith("pathway_id:")
    assert await message_rows(gateway) == []


async def test_the_same_conversation_resumes_and_new_conversation_starts_another(
    gateway: Gateway,
) -> None:
    person = "+14155551208"
    async with bland(gateway) as client:
        first = await client.post(
            SEND, json={"user_number": person, "agent_number": AGENT, "agent_message": "one"}
        )
        again = await client.post(
            SEND, json={"user_number": person, "agent_number": AGENT, "agent_message": "two"}
        )
        fresh = await client.post(
            SEND,
            json={
                "user_number": person,
                "agent_number": AGENT,
                "agent_message": "three",
                "new_conversation": True,
            },
        )
    old = first.json()["data"]["conversation_id"]
    assert again.json()["data"]["conversation_id"] == old
    new = fresh.json()["data"]["conversation_id"]
    assert new != old
    archived = await conversation_row(gateway, old)
    assert archived["status"] == "ended"
    assert archived["end_reason"] == "new_conversation"
    assert (await conversation_row(gateway, new))["status"] == "open"


async def test_an_idempotency_key_sends_once(gateway: Gateway) -> None:
    request = {"user_number": "+14155551209", "agent_number": AGENT, "agent_message": "once"}
    async with bland(gateway) as client:
        first = await client.post(SEND, json=request, headers={"idempotency-key": "k-1"})
        second = await client.post(SEND, json=request, headers={"idempotency-key": "k-1"})
        other = await client.post(
            SEND, json=request | {"agent_message": "twice"}, headers={"idempotency-key": "k-1"}
        )
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert second.json() == first.json()
    assert len(await message_rows(gateway)) == 1
    (message,) = assert_bland_error(other, 400, "IDEMPOTENCY_KEY_REUSED")
    assert "idempotency" in message.lower()
    assert len(await message_rows(gateway)) == 1


async def test_timeout_fields_start_the_conversations_timers(gateway: Gateway) -> None:
    async with bland(gateway) as client:
        response = await client.post(
            SEND,
            json={
                "user_number": "+14155551210",
                "agent_number": AGENT,
                "agent_message": "Hi",
                "time_out": 600,
                "timeout_message": "Closing now.",
                "warning_time": 300,
                "warning_message": "Still there?",
            },
        )
    assert response.status_code == 200, response.text
    cid = response.json()["data"]["conversation_id"]
    settings = (await conversation_row(gateway, cid))["settings"]
    assert settings["timeout_seconds"] == 600
    assert settings["timeout_message"] == "Closing now."
    assert settings["warning_seconds"] == 300
    assert settings["warning_message"] == "Still there?"
    query = select(tables.jobs.c.payload, tables.jobs.c.run_at).where(
        tables.jobs.c.kind == "conversation.timer", tables.jobs.c.ref == cid
    )
    async with gateway.db.read() as conn:
        timers = {row.payload["stage"]: row for row in (await conn.execute(query)).all()}
    assert set(timers) == {"warning", "timeout"}
    epoch = timers["warning"].payload["epoch"]
    assert timers["warning"].run_at == epoch + 300
    assert timers["timeout"].run_at == epoch + 600


async def test_a_warning_not_before_the_timeout_is_invalid_timeout_config(
    gateway: Gateway,
) -> None:
    async with bland(gateway) as client:
        response = await client.post(
            SEND,
            json={
                "user_number": "+14155551211",
                "agent_number": AGENT,
                "agent_message": "Hi",
                "time_out": 300,
                "warning_time": 300,
            },
        )
    (message,) = assert_bland_error(response, 400, "INVALID_TIMEOUT_CONFIG")
    assert message.startswith("warning_time: must be less than time_out")
    assert await message_rows(gateway) == []


async def test_channel_is_used_and_checked_against_the_number(gateway: Gateway) -> None:
    sms_only = "+14155550177"
    async with gateway.db.write() as conn:
        await add_number(conn, gateway.project_id, NumberInput(sms_only, capabilities=("sms",)))
    person = "+14155551212"

    def request(channel: str, agent: str = AGENT) -> dict[str, Any]:
        return {
            "user_number": person,
            "agent_number": agent,
            "agent_message": "Hi",
            "channel": channel,
        }

    async with bland(gateway) as client:
        sms = await client.post(SEND, json=request("sms"))
        whatsapp = await client.post(SEND, json=request("whatsapp"))
        refused = await client.post(SEND, json=request("whatsapp", sms_only))
        telegram = await client.post(SEND, json=request("telegram"))
    assert sms.status_code == 200, sms.text
    assert whatsapp.status_code == 200, whatsapp.text
    rows = await message_rows(gateway)
    assert [row["channel"] for row in rows] == ["sms", "whatsapp"]
    # Each channel is its own thread with the person.
    assert sms.json()["data"]["conversation_id"] != whatsapp.json()["data"]["conversation_id"]
    (message,) = assert_bland_error(refused, 400, "VALIDATION_FAILED")
    assert message == f"channel: {sms_only} cannot send whatsapp"
    (message,) = assert_bland_error(telegram, 400, "VALIDATION_FAILED")
    assert message.startswith("channel:")
    assert len(await message_rows(gateway)) == 2


async def test_an_agent_number_the_project_does_not_own_is_refused(gateway: Gateway) -> None:
    async with bland(gateway) as client:
        response = await client.post(
            SEND,
            json={
                "user_number": "+14155551213",
                "agent_number": "+14155559999",
                "agent_message": "Hi",
            },
        )
    (message,) = assert_bland_error(response, 400, "VALIDATION_FAILED")
    assert message.startswith("agent_number:")
    assert await message_rows(gateway) == []


async def test_content_sid_sends_a_stored_template_with_the_pages_variables(
    gateway: Gateway,
) -> None:
    stored = await gateway.client.post(
        "/v1/templates",
        json={"name": "renewal", "key": "HX0123456789", "body": "Hi {{1}} {{2}}, {{3}} it is."},
    )
    assert stored.status_code == 201, stored.text

    def request(variables: str, sid: str = "HX0123456789") -> str:
        return (
            '{"user_number": "+14155551214", "agent_number": "' + AGENT + '", '
            '"content_sid": "' + sid + '", "content_variables": ' + variables + "}"
        )

    headers = {"content-type": "application/json"}
    async with bland(gateway) as client:
        response = await client.post(
            SEND, content=request(CONTENT_VARIABLES_EXAMPLE), headers=headers
        )
        missing = await client.post(SEND, content=request('{"1": "John"}'), headers=headers)
        unknown = await client.post(
            SEND, content=request(CONTENT_VARIABLES_EXAMPLE, "HXnone"), headers=headers
        )
        alone = await client.post(
            SEND,
            json={
                "user_number": "+14155551214",
                "agent_number": AGENT,
                "agent_message": "x",
                "content_variables": {"1": "John"},
            },
        )
        both = await client.post(
            SEND,
            json={
                "user_number": "+14155551214",
                "agent_number": AGENT,
                "agent_message": "x",
                "content_sid": "HX0123456789",
            },
        )
    (message,) = assert_bland_error(both, 400, "VALIDATION_FAILED")
    assert message == "content_sid: give agent_message or content_sid, not both"
    assert response.status_code == 200, response.text
    (row,) = await message_rows(gateway)
    assert row["id"] == response.json()["data"]["message_id"]
    assert row["body"] == "Hi John Smith, Premium Plan it is."
    (message,) = assert_bland_error(missing, 400, "VALIDATION_FAILED")
    assert message == "content_variables: missing variable '2'"
    (message,) = assert_bland_error(unknown, 400, "VALIDATION_FAILED")
    assert message == "content_sid: no template HXnone"
    (message,) = assert_bland_error(alone, 400, "VALIDATION_FAILED")
    assert message == "content_variables: needs content_sid"
    assert len(await message_rows(gateway)) == 1


async def test_bad_bodies_name_the_field(gateway: Gateway) -> None:
    async with bland(gateway) as client:
        missing = await client.post(SEND, json={"agent_number": AGENT, "agent_message": "x"})
        not_json = await client.post(
            SEND, content=b"{nope", headers={"content-type": "application/json"}
        )
        # curl -d without -H: form-encoded.
        form = await client.post(SEND, data={"user_number": "+14155551215"})
        bad_number = await client.post(
            SEND, json={"user_number": "12", "agent_number": AGENT, "agent_message": "x"}
        )
        unknown = await client.post(
            SEND,
            json={"user_number": "+14155551215", "agent_number": AGENT, "agent_mesage": "x"},
        )
        version = await client.post(
            SEND,
            json={
                "user_number": "+14155551215",
                "agent_number": AGENT,
                "agent_message": "x",
                "persona_version": "beta",
            },
        )
    (message,) = assert_bland_error(missing, 400, "VALIDATION_FAILED")
    assert message.startswith("user_number:")
    (message,) = assert_bland_error(not_json, 400, "VALIDATION_FAILED")
    assert message == "body: is not valid JSON"
    (message,) = assert_bland_error(form, 400, "VALIDATION_FAILED")
    assert message.startswith(
        "Content-Type: send the body as JSON with Content-Type: application/json"
    )
    (message,) = assert_bland_error(bad_number, 400, "VALIDATION_FAILED")
    assert message.startswith("user_number:")
    (message,) = assert_bland_error(unknown, 400, "VALIDATION_FAILED")
    assert message.startswith("agent_mesage:")
    (message,) = assert_bland_error(version, 400, "VALIDATION_FAILED")
    assert message.startswith("persona_version:")
    assert await message_rows(gateway) == []


async def test_a_private_webhook_is_refused(gateway: Gateway) -> None:
    async with bland(gateway) as client:
        response = await client.post(
            SEND,
            json={
                "user_number": "+14155551216",
                "agent_number": AGENT,
                "agent_message": "x",
                "webhook": "http://127.0.0.1:9/hook",
            },
        )
    (message,) = assert_bland_error(response, 400, "UNSAFE_URL")
    assert message.startswith("webhook:")
    assert await message_rows(gateway) == []


async def test_missing_or_unknown_keys_are_401(gateway: Gateway) -> None:
    request = {"user_number": "+14155551217", "agent_number": AGENT, "agent_message": "x"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url="http://testserver"
    ) as anonymous:
        missing = await anonymous.post(SEND, json=request)
        unknown = await anonymous.post(SEND, json=request, headers={"authorization": "sk_nope"})
        listing = await anonymous.get(f"{BASE}/v1/sms/conversations")
    for response in (missing, unknown, listing):
        assert_bland_error(response, 401, "UNAUTHORIZED")
    assert await message_rows(gateway) == []


# -- conversations ----------------------------------------------------------------------------

ITEM_FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "user_number",
    "agent_number",
    "variables",
    "current_node_id",
    "is_active",
    "message_count",
    "last_message",
    "last_message_at",
    "effective_channel",
    "summary",
    "citation_variables",
    "disposition_tag",
}


async def test_conversations_list_and_get(gateway: Gateway) -> None:
    people = ["+14155551301", "+14155551302", "+14155551303"]
    async with bland(gateway) as client:
        ids = []
        for person in people:
            sent = await client.post(
                SEND, json={"user_number": person, "agent_number": AGENT, "agent_message": "Hi"}
            )
            ids.append(sent.json()["data"]["conversation_id"])
        await gateway.drain()
        inbound = await gateway.client.post(
            "/v1/simulator/inbound", json={"from": people[0], "to": AGENT, "body": "Who is this?"}
        )
        assert inbound.status_code in (200, 202), inbound.text
        await gateway.drain()
        ended = await gateway.client.post(
            f"/v1/conversations/{ids[0]}/end", json={"outcome": "done", "extracted": {"a": 1}}
        )
        assert ended.status_code == 200, ended.text

        page1 = await client.get(f"{BASE}/v1/sms/conversations", params={"pageSize": 2})
        page2 = await client.get(f"{BASE}/v1/sms/conversations", params={"page": 2, "pageSize": 2})
        filtered = await client.get(
            f"{BASE}/v1/sms/conversations", params={"user_number": people[0]}
        )
        detail = await client.get(f"{BASE}/v1/sms/conversations/{ids[0]}")
        missing = await client.get(f"{BASE}/v1/sms/conversations/conv_nothing")
        bad_page = await client.get(f"{BASE}/v1/sms/conversations", params={"page": 0})

    assert page1.status_code == 200, page1.text
    first = page1.json()
    assert set(first) == {"data", "errors", "extra"}
    assert first["errors"] is None
    assert first["extra"] == {"pagination": {"page": 1, "pageSize": 2, "hasMore": True}}
    assert [c["id"] for c in first["data"]] == [ids[2], ids[1]]
    second = page2.json()
    assert [c["id"] for c in second["data"]] == [ids[0]]
    assert second["extra"]["pagination"] == {"page": 2, "pageSize": 2, "hasMore": False}

    (item,) = filtered.json()["data"]
    assert set(item) == ITEM_FIELDS
    assert item["id"] == ids[0]
    assert item["user_number"] == people[0]
    assert item["agent_number"] == AGENT
    assert item["is_active"] is False
    assert item["message_count"] == 2
    assert item["last_message"] == "Who is this?"
    assert ISO.match(item["last_message_at"])
    assert ISO.match(item["created_at"])
    assert ISO.match(item["updated_at"])
    assert item["effective_channel"] == "sms"
    assert item["disposition_tag"] == "done"
    assert item["citation_variables"] == {"a": 1}
    assert item["variables"] == {}
    assert item["summary"] is None
    assert item["current_node_id"] is None
    assert second["data"][0] == item
    active = next(c for c in first["data"] if c["id"] == ids[1])
    assert active["is_active"] is True
    assert active["message_count"] == 1
    assert active["last_message"] == "Hi"

    assert detail.status_code == 200, detail.text
    shown = detail.json()
    assert set(shown) == {"data", "errors"}
    assert shown["errors"] is None
    data = shown["data"]
    assert set(data) == ITEM_FIELDS | {"timed_out_at", "messages"}
    assert data["timed_out_at"] is None
    assert {k: data[k] for k in ITEM_FIELDS} == item
    outbound, reply = data["messages"]
    assert set(outbound) == {
        "id",
        "created_at",
        "message",
        "from",
        "to",
        "sender",
        "status",
        "error_code",
    }
    assert outbound["message"] == "Hi"
    assert outbound["from"] == AGENT
    assert outbound["to"] == people[0]
    assert outbound["sender"] == "AGENT"
    assert outbound["status"] in ("SENT", "DELIVERED")
    assert outbound["error_code"] is None
    assert ISO.match(outbound["created_at"])
    assert reply["message"] == "Who is this?"
    assert reply["from"] == people[0]
    assert reply["to"] == AGENT
    assert reply["sender"] == "USER"
    assert reply["status"] == "RECEIVED"

    (message,) = assert_bland_error(missing, 404, "NOT_FOUND")
    assert "conv_nothing" in message
    (message,) = assert_bland_error(bad_page, 400, "VALIDATION_FAILED")
    assert message.startswith("page:")


async def test_another_projects_conversation_is_not_found(gateway: Gateway) -> None:
    async with bland(gateway) as client:
        sent = await client.post(
            SEND,
            json={"user_number": "+14155551304", "agent_number": AGENT, "agent_message": "Hi"},
        )
    cid = sent.json()["data"]["conversation_id"]
    _, other = await gateway.new_project()
    async with other:
        key = other.headers["authorization"].removeprefix("Bearer ")
        response = await other.get(
            f"{BASE}/v1/sms/conversations/{cid}", headers={"authorization": key}
        )
        listing = await other.get(f"{BASE}/v1/sms/conversations", headers={"authorization": key})
    assert_bland_error(response, 404, "NOT_FOUND")
    assert listing.json()["data"] == []


# -- the conversation-end webhook -------------------------------------------------------------


class _Hooks:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []


@contextmanager
def hook_server() -> Iterator[tuple[_Hooks, str]]:
    """The customer's webhook receiver on a real loopback socket."""
    hooks = _Hooks()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            with hooks.lock:
                hooks.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    with serve_on_loopback(Handler) as base:
        yield hooks, f"{base}/bland-hook"


async def test_the_conversation_end_webhook_comes_in_blands_shape(gateway: Gateway) -> None:
    person = "+14155551401"
    with hook_server() as (hooks, url):
        async with loopback_gateway(gateway, "bland-hooks") as gw, bland(gw) as client:
            sent = await client.post(
                SEND,
                json={
                    "user_number": person,
                    "agent_number": AGENT,
                    "agent_message": "Reply within a second",
                    "webhook": url,
                    "metadata": {"crm_id": "c-9"},
                    "time_out": 1,
                },
            )
            assert sent.status_code == 200, sent.text
            cid = sent.json()["data"]["conversation_id"]
            await gw.drain()
            await asyncio.sleep(1.2)  # past time_out: the timeout timer is due
            deadline = time.monotonic() + 10
            while True:
                await gw.drain()
                with hooks.lock:
                    got = list(hooks.received)
                # The end and the delivery receipt are separate jobs: either may come first.
                if [p["type"] for _, p in got].count("message") >= 2 and any(
                    p["type"] == "status" for _, p in got
                ):
                    break
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            detail = await client.get(f"{BASE}/v1/sms/conversations/{cid}")
    steps = [(h, p) for h, p in got if p["type"] == "message"]
    ends = [(h, p) for h, p in got if p["type"] == "status"]
    assert len(ends) == 1, got
    ((headers, payload),) = ends
    # Each step of the message after its acceptance, with the send's metadata.
    message_id = detail.json()["data"]["messages"][0]["id"]
    assert sorted(p["status"] for _, p in steps) == ["DELIVERED", "SENT"]
    for _, step in steps:
        assert step == {
            "type": "message",
            "conversation_id": cid,
            "message_id": message_id,
            "status": step["status"],
            "message": "Reply within a second",
            "from": AGENT,
            "to": person,
            "sender": "AGENT",
            "phone_number": person,
            "agent_number": AGENT,
            "channel": "sms",
            "error_code": None,
            "created_at": step["created_at"],
            "metadata": {"crm_id": "c-9"},
        }
        assert ISO.match(step["created_at"])
    assert payload == {
        "type": "status",
        "conversation_id": cid,
        "status": "ended",
        "phone_number": person,
        "agent_number": AGENT,
        "channel": "sms",
        "message_count": 1,
        "metadata": {"crm_id": "c-9"},
    }
    assert headers["webhook-id"].startswith("evt_")
    assert headers["webhook-signature"].startswith("v1,")
    data = detail.json()["data"]
    assert data["is_active"] is False
    assert ISO.match(data["timed_out_at"])


async def test_the_native_api_takes_a_webhook_format(gateway: Gateway) -> None:
    unknown = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155551402",
            "body": "x",
            "conversation": {
                "webhook_url": "https://hooks.example.com/b",
                "webhook_format": "nope",
            },
        },
    )
    assert unknown.status_code == 422, unknown.text
    fields = {e["field"]: e["message"] for e in unknown.json()["errors"]}
    assert fields["conversation.webhook_format"].startswith("unknown format; one of")
    assert "bland" in fields["conversation.webhook_format"]

    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155551402",
            "body": "x",
            "conversation": {
                "webhook_url": "https://hooks.example.com/b",
                "webhook_format": "bland",
                "metadata": {"m": 1},
            },
        },
    )
    assert sent.status_code == 202, sent.text
    cid = sent.json()["conversation_id"]
    ended = await gateway.client.post(f"/v1/conversations/{cid}/end")
    assert ended.status_code == 200, ended.text
    query = select(tables.webhook_events.c.type, tables.webhook_events.c.payload).where(
        tables.webhook_events.c.project_id == gateway.project_id
    )
    async with gateway.db.read() as conn:
        events = [(row.type, dict(row.payload)) for row in (await conn.execute(query)).all()]
    # Acceptance (the send's own answer) and conversation.started stay unsent in Bland's format.
    assert [t for t, _ in events] == ["conversation.ended"]
    assert events[0][1] == {
        "type": "status",
        "conversation_id": cid,
        "status": "ended",
        "phone_number": "+14155551402",
        "agent_number": AGENT,
        "channel": "sms",
        "message_count": 1,
        "metadata": {"m": 1},
    }
    await forget_deliveries(gateway)


async def test_unknown_paths_and_wrong_methods_answer_in_blands_body(gateway: Gateway) -> None:
    async with bland(gateway) as client:
        unknown = await client.post(f"{BASE}/v1/calls", json={})
        wrong = await client.get(SEND)
    (message,) = assert_bland_error(unknown, 404, "NOT_FOUND")
    assert message
    assert_bland_error(wrong, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in wrong.headers["allow"]
