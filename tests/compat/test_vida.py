"""Vida at ``/compat/vida``: the seed page's three request examples sent as written (only
the base URL and the token changed), each response field and its type, the tasks stored
(messages, conversations, schedule times, the agent's context), the tasks endpoints, and
every error status the page lists in Vida's ``{"success": false, "message"}`` body."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from agentsms.agents import load_demo_pathway
from agentsms.app import create_app
from agentsms.core import projects
from agentsms.core.numbers import add_simulator_number
from agentsms.store import migrate, tables
from tests.conftest import Gateway
from tests.conftest import test_settings as settings_for
from tests.integration.conversation_helpers import (
    agent_server,
    default_to_webhook_agent,
    forget_deliveries,
    insecure_gateway,
    text_in,
    wait_for,
)
from tests.integration.helpers import message_rows

BASE = "/compat/vida"
PATH = "/api/v2/agent/outboundSms"
OURS = "+14155550100"

# -- the seed page's request examples, verbatim -----------------------------------------------

SINGLE: dict[str, Any] = {
    "target": "+15551234567",
    "content": "Hi, quick reminder for tomorrow at 10am.",
    "context": "Reminder campaign",
}
BATCH_STRINGS: dict[str, Any] = {
    "targets": ["+15551230001", "+15551230002", "+15551230003"],
    "content": "Thanks for signing up. Reply YES to confirm.",
    "context": "Onboarding nudge",
    "scheduleSpacingSec": 10,
}
BATCH_OBJECTS: dict[str, Any] = {
    "targets": [
        {
            "target": "+15551230001",
            "content": "VIP reminder 9am",
            "context": "VIP",
            "scheduledFor": 1730000000,
        },
        {"target": "+15551230002", "content": "Standard reminder 10am"},
    ],
    "agentId": 1234,
}
# The page's example numbers are fictional (area code 555 does not exist in the North
# American plan): the simulator, a test carrier, delivers to them, so they are sent as
# written; a real carrier's number refuses them. Tests of other fields use real numbers.
FICTIONAL, REAL = "+1555123", "+1415555"

TASK_TYPES: dict[str, Any] = {
    "id": str,
    "target": str,
    "to": str,
    "from": str,
    "content": str,
    "context": (str, type(None)),
    "taskContext": (str, type(None)),
    "agentId": (int, type(None)),
    "meta": (dict, type(None)),
    "externalTaskId": (str, type(None)),
    "scheduledFor": (int, type(None)),
    "status": str,
    "conversationId": (str, type(None)),
    "createdAt": int,
    "sentAt": (int, type(None)),
    "deliveredAt": (int, type(None)),
    "error": (str, type(None)),
}


@pytest.fixture(autouse=True)
async def _no_lingering_deliveries(gateway: Gateway) -> AsyncIterator[None]:
    yield
    await forget_deliveries(gateway)


def real(example: Any) -> Any:
    """``example`` with the fictional 555 area code made a real one."""
    if isinstance(example, dict):
        return {k: real(v) for k, v in example.items()}
    if isinstance(example, list):
        return [real(v) for v in example]
    if isinstance(example, str):
        return example.replace(FICTIONAL, REAL)
    return example


def vida_client(app: Any, token: str | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=f"http://testserver{BASE}",
        params={"token": token} if token is not None else None,
    )


@asynccontextmanager
async def vida(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with vida_client(gateway.app, gateway.api_key) as client:
        yield client


def assert_vida_error(response: httpx.Response, status: int, *mentions: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"success", "message"}, body
    assert body["success"] is False
    message = body["message"]
    assert isinstance(message, str)
    assert message
    for mention in mentions:
        assert mention in message, (mention, message)
    return message


def assert_task(value: dict[str, Any]) -> None:
    assert set(value) == set(TASK_TYPES), set(value) ^ set(TASK_TYPES)
    for key, kind in TASK_TYPES.items():
        assert isinstance(value[key], kind), (key, value[key])
    assert value["id"].startswith("msg_")


def assert_initiated(response: httpx.Response, inserted: int) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "message", "inserted", "tasks"}
    assert body["success"] is True
    assert body["message"] == "Outbound SMS initiated."
    assert isinstance(body["inserted"], int)
    assert body["inserted"] == inserted
    assert isinstance(body["tasks"], list)
    assert len(body["tasks"]) == inserted
    for item in body["tasks"]:
        assert_task(item)
    tasks: list[dict[str, Any]] = body["tasks"]
    return tasks


async def conversation_of(gateway: Gateway, conversation_id: str) -> dict[str, Any]:
    query = select(tables.conversations).where(tables.conversations.c.id == conversation_id)
    async with gateway.db.read() as conn:
        return dict((await conn.execute(query)).mappings().one())


async def persona(gateway: Gateway, alias: int) -> dict[str, Any]:
    created = await gateway.client.post(
        "/v1/personas",
        json={
            "name": "Reminders",
            "alias": alias,
            "agent": {"kind": "flow", "pathway": load_demo_pathway()},
            "publish": True,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["alias"] == alias
    made: dict[str, Any] = created.json()
    return made


# -- the page's examples ----------------------------------------------------------------------


async def test_single_example(gateway: Gateway) -> None:
    async with vida(gateway) as client:
        response = await client.post(PATH, json=SINGLE)
    (task,) = assert_initiated(response, 1)
    assert task["target"] == task["to"] == "+15551234567"
    assert task["from"] == OURS
    assert task["content"] == "Hi, quick reminder for tomorrow at 10am."
    assert task["context"] == "Reminder campaign"
    assert task["taskContext"] is None
    assert task["agentId"] is None
    assert task["scheduledFor"] is None
    assert task["status"] == "queued"
    assert abs(task["createdAt"] - time.time()) < 60
    (row,) = await message_rows(gateway)
    assert row["id"] == task["id"]
    assert row["to_number"] == "+15551234567"
    assert row["body"] == SINGLE["content"]
    assert row["batch_id"] is not None
    conversation = await conversation_of(gateway, row["conversation_id"])
    assert task["conversationId"] == conversation["id"]
    assert conversation["settings"] == {"context": "Reminder campaign"}
    await gateway.drain()
    assert [r["status"] for r in await message_rows(gateway)] == ["delivered"]
    # The fictional person answers (the simulator's inbound) in the same conversation.
    answer = await gateway.client.post(
        "/v1/simulator/inbound", json={"from": "+1 555 123 4567", "to": OURS, "body": "Got it"}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["conversation_id"] == conversation["id"]


async def test_batch_strings_example_staggers_by_index(gateway: Gateway) -> None:
    async with vida(gateway) as client:
        before = time.time()
        response = await client.post(PATH, json=BATCH_STRINGS)
    tasks = assert_initiated(response, 3)
    assert [t["to"] for t in tasks] == BATCH_STRINGS["targets"]
    assert {t["content"] for t in tasks} == {BATCH_STRINGS["content"]}
    assert {t["context"] for t in tasks} == {"Onboarding nudge"}
    first = tasks[0]["scheduledFor"]
    assert abs(first - before) < 60
    assert [t["scheduledFor"] - first for t in tasks] == [0, 10, 20]
    assert [t["status"] for t in tasks] == ["queued", "scheduled", "scheduled"]
    rows = await message_rows(gateway)
    times = [row["send_at"].timestamp() for row in rows]
    assert [round(t - times[0], 3) for t in times] == [0, 10, 20]
    assert len({row["conversation_id"] for row in rows}) == 3


async def test_batch_objects_example_with_per_item_overrides(gateway: Gateway) -> None:
    agent = await persona(gateway, 1234)
    async with vida(gateway) as client:
        response = await client.post(PATH, json=BATCH_OBJECTS)
    vip, standard = assert_initiated(response, 2)
    assert (vip["to"], vip["content"], vip["context"]) == (
        "+15551230001",
        "VIP reminder 9am",
        "VIP",
    )
    assert vip["scheduledFor"] == 1730000000  # in the past: it goes now
    assert vip["status"] == "queued"
    assert (standard["content"], standard["context"], standard["scheduledFor"]) == (
        "Standard reminder 10am",
        None,
        None,
    )
    assert vip["agentId"] == standard["agentId"] == 1234
    rows = await message_rows(gateway)
    assert rows[0]["send_at"] == datetime.fromtimestamp(1730000000, UTC)
    first = await conversation_of(gateway, rows[0]["conversation_id"])
    second = await conversation_of(gateway, rows[1]["conversation_id"])
    assert first["settings"] == {"context": "VIP", "persona_id": agent["id"]}
    assert second["settings"] == {"persona_id": agent["id"]}
    await gateway.drain()
    sent = {row["status"] for row in await message_rows(gateway)}
    assert sent == {"delivered"}


async def test_a_real_carrier_refuses_the_fictional_numbers_before_storing(
    gateway: Gateway,
) -> None:
    """A project whose line is a Twilio number: the examples' 555 numbers cannot be reached,
    and say so; a real number still validates strictly; with a simulator number beside the
    Twilio one, the fictional numbers go from the simulator's."""
    async with gateway.db.write() as conn:
        await conn.execute(
            update(tables.numbers)
            .where(tables.numbers.c.project_id == gateway.project_id)
            .values(provider="twilio")
        )
    async with vida(gateway) as client:
        single = await client.post(PATH, json=SINGLE)
        assert_vida_error(
            single, 400, "target", "+15551234567", "reserved for fiction", "only the simulator"
        )
        batch = await client.post(PATH, json=BATCH_STRINGS)
        assert_vida_error(batch, 400, "targets[0].target", "targets[2].target", "simulator")
        invalid_number = await client.post(PATH, json=SINGLE | {"target": "+1 212 000 0000"})
        assert_vida_error(invalid_number, 400, "target", "not a valid number for US")
        assert await message_rows(gateway) == []
        explicit = await gateway.client.post(
            "/v1/messages", json={"to": "+1 555 123 0001", "from": OURS, "body": "Hi"}
        )
        assert explicit.status_code == 422, explicit.text
        assert [e["field"] for e in explicit.json()["errors"]] == ["to"]
        assert "not twilio" in explicit.json()["errors"][0]["message"]
        assert await message_rows(gateway) == []
        added = await gateway.client.post("/v1/numbers", json={"number": "+14155550111"})
        assert added.status_code == 201, added.text
        response = await client.post(PATH, json=SINGLE)
        (task,) = assert_initiated(response, 1)
        assert task["from"] == "+14155550111"
        real_person = await client.post(PATH, json=real(SINGLE))
        (other,) = assert_initiated(real_person, 1)
        assert other["to"] == "+14155554567"


# -- fields -----------------------------------------------------------------------------------


async def test_schedule_meta_and_external_task_id(gateway: Gateway) -> None:
    at = int(time.time()) + 3600
    payload = {
        "targets": [
            {"target": "+14155552001", "meta": {"tier": "vip"}, "externalTaskId": "ext-1"},
            {"target": "+14155552002", "scheduledFor": at + 100},
            "+14155552003",
        ],
        "content": "Shared",
        "taskContext": "Confirm the visit",
        "scheduledFor": at,
        "scheduleSpacingSec": 15,
        "meta": {"campaign": "spring"},
        "externalTaskId": "ext-all",
    }
    async with vida(gateway) as client:
        response = await client.post(PATH, json=payload)
    tasks = assert_initiated(response, 3)
    assert [t["scheduledFor"] for t in tasks] == [at, at + 100 + 15, at + 30]
    assert {t["status"] for t in tasks} == {"scheduled"}
    assert [t["meta"] for t in tasks] == [
        {"campaign": "spring", "tier": "vip"},
        {"campaign": "spring"},
        {"campaign": "spring"},
    ]
    assert [t["externalTaskId"] for t in tasks] == ["ext-1", "ext-all", "ext-all"]
    assert {t["taskContext"] for t in tasks} == {"Confirm the visit"}
    rows = await message_rows(gateway)
    assert [row["external_id"] for row in rows] == ["ext-1", "ext-all", "ext-all"]
    assert [row["send_at"].timestamp() for row in rows] == [at, at + 115, at + 30]
    conversation = await conversation_of(gateway, rows[0]["conversation_id"])
    assert conversation["metadata"] == {"campaign": "spring", "tier": "vip"}
    assert conversation["settings"] == {"task_context": "Confirm the visit"}


async def test_context_and_task_context_reach_the_agent(gateway: Gateway) -> None:
    person = "+14155552101"
    with agent_server() as (server, url):
        async with insecure_gateway(gateway) as gw:
            await default_to_webhook_agent(gw, url)
            async with vida(gw) as client:
                response = await client.post(
                    PATH,
                    json={
                        "target": person,
                        "content": "Your table is booked for 8pm.",
                        "context": "Restaurant booking for Ana",
                        "taskContext": "Confirm or move the booking",
                        "meta": {"booking": "B-17"},
                    },
                )
            (task,) = assert_initiated(response, 1)
            await text_in(gw, person, "Make it 9")
            shown = await wait_for(gw, task["conversationId"], lambda c: len(c["messages"]) >= 3)
            assert shown["messages"][-1]["body"] == "re: Make it 9"
            (turn,) = server.turns
            assert turn["context"] == "Restaurant booking for Ana"
            assert turn["task_context"] == "Confirm or move the booking"
            assert turn["metadata"] == {"booking": "B-17"}
            assert [h["text"] for h in turn["history"]] == [
                "Your table is booked for 8pm.",
                "Make it 9",
            ]
            await forget_deliveries(gw)


async def test_a_username_target_is_a_contact_of_the_project(gateway: Gateway) -> None:
    patched = await gateway.client.patch(
        "/v1/project", json={"settings": {"contacts": {"Jane.Doe": "+14155552201"}}}
    )
    assert patched.status_code == 200, patched.text
    gateway.app.state.agentsms.key_cache.clear()
    async with vida(gateway) as client:
        response = await client.post(PATH, json={"target": "@jane.doe", "content": "Hi Jane"})
        unknown = await client.post(PATH, json={"targets": ["jane.doe", "bob"], "content": "x"})
    (task,) = assert_initiated(response, 1)
    assert task["target"] == "@jane.doe"
    assert task["to"] == "+14155552201"
    assert_vida_error(unknown, 400, "targets[1].target", "username")
    (row,) = await message_rows(gateway)
    assert row["to_number"] == "+14155552201"


# -- tasks ------------------------------------------------------------------------------------


async def test_tasks_are_listed_read_and_cancelled(gateway: Gateway) -> None:
    later = int(time.time()) + 3600
    async with vida(gateway) as client:
        first = assert_initiated(
            await client.post(PATH, json={"target": "+14155552301", "content": "one"}), 1
        )
        rest = assert_initiated(
            await client.post(
                PATH,
                json={
                    "targets": ["+14155552302", "+14155552303"],
                    "content": "later",
                    "scheduledFor": later,
                },
            ),
            2,
        )
        everything = await client.get("/api/v2/tasks")
        page = await client.get("/api/v2/tasks", params={"limit": 1, "offset": 1})
        future = await client.get("/api/v2/tasks", params={"since": int(time.time()) + 60})
        past = await client.get("/api/v2/tasks", params={"until": "2020-01-01T00:00:00Z"})
        one = await client.get(f"/api/v2/tasks/{first[0]['id']}")
        cancelled = await client.delete(f"/api/v2/tasks/{rest[0]['id']}")
        again = await client.delete(f"/api/v2/tasks/{rest[0]['id']}")
        missing = await client.get("/api/v2/tasks/msg_nothing")
        missing_delete = await client.delete("/api/v2/tasks/msg_nothing")
        bad_limit = await client.get("/api/v2/tasks", params={"limit": 0})
        bad_since = await client.get("/api/v2/tasks", params={"since": "yesterday"})
    assert everything.status_code == 200, everything.text
    listed = everything.json()
    assert set(listed) == {"success", "tasks", "limit", "offset"}
    assert listed["success"] is True
    assert (listed["limit"], listed["offset"]) == (50, 0)
    ids = [t["id"] for t in listed["tasks"]]
    assert ids == sorted([first[0]["id"], rest[0]["id"], rest[1]["id"]], reverse=True)
    for item in listed["tasks"]:
        assert_task(item)
    assert [t["id"] for t in page.json()["tasks"]] == ids[1:2]
    assert future.json()["tasks"] == []
    assert past.json()["tasks"] == []
    assert one.status_code == 200
    assert one.json()["success"] is True
    assert one.json()["task"] == first[0]
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["success"] is True
    assert cancelled.json()["task"]["status"] == "canceled"
    assert_vida_error(again, 400, "only scheduled or queued")
    assert_vida_error(missing, 404, "not found")
    assert_vida_error(missing_delete, 404, "not found")
    assert_vida_error(bad_limit, 400, "limit")
    assert_vida_error(bad_since, 400, "since")
    await gateway.drain()
    statuses = {row["id"]: row["status"] for row in await message_rows(gateway)}
    assert statuses[rest[0]["id"]] == "canceled"
    assert statuses[rest[1]["id"]] == "scheduled"
    assert statuses[first[0]["id"]] == "delivered"


# -- errors -----------------------------------------------------------------------------------


async def test_400_names_each_bad_field_and_stores_nothing(gateway: Gateway) -> None:
    good = real(SINGLE)
    cases: list[tuple[Any, tuple[str, ...]]] = [
        ({}, ("target or targets is required",)),
        ({"target": "+14155552401"}, ("content", "required")),
        (good | {"targets": ["+14155552402"]}, ("either target or targets",)),
        ({"targets": []}, ("targets",)),
        ({"targets": ["+14155552402", "12"]}, ("targets[1].target",)),
        ({"targets": ["+14155552402"]}, ("targets[0].content", "must not be empty")),
        (good | {"agentId": 99}, ("agentId", "no persona 99")),
        (
            {"targets": [{"target": "+14155552403", "agentId": 98}], "content": "x"},
            ("agentId", "no persona 98"),
        ),
        (
            {
                "targets": [{"target": "+14155552403"}, {"target": "+14155552404", "agentId": 97}],
                "content": "x",
            },
            ("targets[1].agentId", "no persona 97"),
        ),
        (good | {"agentId": "abc"}, ("agentId",)),
        (good | {"scheduledFor": "soon"}, ("scheduledFor",)),
        (good | {"scheduledFor": 10**15}, ("scheduledFor",)),
        (good | {"scheduledFor": -1}, ("scheduledFor",)),
        (
            {"targets": ["+14155552402"], "content": "x", "scheduleSpacingSec": -1},
            ("scheduleSpacingSec",),
        ),
        (
            {"targets": ["+14155552402"], "content": "x", "scheduleSpacingSec": 86_401},
            ("scheduleSpacingSec",),
        ),
        (good | {"colour": "blue"}, ("colour",)),
        ([1], ("body", "JSON object")),
    ]
    async with vida(gateway) as client:
        for payload, mentions in cases:
            assert_vida_error(await client.post(PATH, json=payload), 400, *mentions)
        not_json = await client.post(
            PATH, content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert_vida_error(not_json, 400, "not valid JSON")
        form = await client.post(PATH, data={"message": "hi"})
        assert_vida_error(form, 400, "Content-Type", "application/json")
    assert await message_rows(gateway) == []


async def test_401_without_a_valid_token(gateway: Gateway) -> None:
    for token, reason in ((None, "missing"), ("", "missing"), ("ask_wrong", "invalid")):
        async with vida_client(gateway.app, token) as client:
            post = await client.post(PATH, json=real(SINGLE))
            listed = await client.get("/api/v2/tasks")
        assert_vida_error(post, 401, reason)
        assert_vida_error(listed, 401, reason)
    async with vida_client(gateway.app, None) as client:
        header = await client.post(
            PATH, json=real(SINGLE), headers={"Authorization": f"Bearer {gateway.api_key}"}
        )
    assert_vida_error(header, 401, "missing")
    assert await message_rows(gateway) == []


async def test_500_on_an_unexpected_failure_and_nothing_is_stored(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    await migrate.upgrade_async(url)
    app = create_app(settings_for(url))
    async with app.router.lifespan_context(app):
        async with app.state.agentsms.db.write() as conn:
            project, key = await projects.create_project(conn, "vida")
            await add_simulator_number(conn, project.id, OURS)
            await conn.execute(text("DROP TABLE conversations"))  # a fault nobody expects
        async with vida_client(app, key) as client:
            response = await client.post(PATH, json=real(SINGLE))
        message = assert_vida_error(response, 500)
        assert "conversations" not in message
        async with app.state.agentsms.db.read() as conn:
            stored = (await conn.execute(select(tables.messages.c.id))).all()
        assert stored == []


async def test_openapi_documents_the_vida_surface(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    paths = spec["paths"]
    post = paths[f"{BASE}{PATH}"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert {"target", "targets", "content", "scheduleSpacingSec", "externalTaskId"} <= set(
        schema["properties"]
    )
    assert {"200", "400", "401", "500"} <= set(post["responses"])
    assert "get" in paths[f"{BASE}/api/v2/tasks"]
    assert {"get", "delete"} <= set(paths[f"{BASE}/api/v2/tasks/{{task_id}}"])


@pytest.mark.parametrize("status", [400, 401, 500])
def test_every_error_status_of_the_page_has_a_test(status: int) -> None:
    assert any(name.startswith(f"test_{status}_") for name in globals())
