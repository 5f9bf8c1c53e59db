"""PolyAI at ``/compat/polyai``: the seed page's cURL, Python and JavaScript samples sent as
written (only the base URL and the credentials changed) through a real server, the session
each call opens (greeting in the agent's context, the 24 h / 10 min policy), and every error
status the page lists in PolyAI's ``{"detail": ...}`` body."""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from agentsms.app import create_app
from agentsms.core import projects
from agentsms.core.numbers import add_simulator_number
from agentsms.store import migrate, tables
from tests.compat.servers import serving
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
from tests.integration.test_conversation_timers import run_timers_at, timer_jobs

BASE = "/compat/polyai"
VENDOR_URL = "https://api.us-1.platform.polyai.app"
OURS = "+14155550100"  # the gateway's simulator number
USER = "+14155551234"
GREETING = (
    "Hi Jane, your appointment is confirmed for tomorrow at 2pm. Reply to this message if you "
    "need to reschedule."
)

# -- the seed page's samples, verbatim --------------------------------------------------------

CURL_SAMPLE = """curl -X POST https://api.us-1.platform.polyai.app/v1/outbound-sms \\
  -H "X-PolyAi-Auth-Token: YOUR_API_KEY" \\
  -H "X-TOKEN-ID: YOUR_CONNECTOR_ID" \\
  -H "Content-Type: application/json" \\
  -d '{
    "message": "Hi Jane, your appointment is confirmed for tomorrow at 2pm. Reply to this \
message if you need to reschedule.",
    "user_number": "+14155551234"
  }'"""

PYTHON_SAMPLE = """import requests

url = "https://api.us-1.platform.polyai.app/v1/outbound-sms"
headers = {
    "X-PolyAi-Auth-Token": "YOUR_API_KEY",
    "X-TOKEN-ID": "YOUR_CONNECTOR_ID",
    "Content-Type": "application/json",
}
payload = {
    "message": "Hi Jane, your appointment is confirmed for tomorrow at 2pm. Reply to this \
message if you need to reschedule.",
    "user_number": "+14155551234",
}

response = requests.post(url, json=payload, headers=headers)
print(response.status_code)  # 202
"""

JAVASCRIPT_SAMPLE = """const response = await fetch(
  'https://api.us-1.platform.polyai.app/v1/outbound-sms',
  {
    method: 'POST',
    headers: {
      'X-PolyAi-Auth-Token': 'YOUR_API_KEY',
      'X-TOKEN-ID': 'YOUR_CONNECTOR_ID',
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({
      message:
        'Hi Jane, your appointment is confirmed for tomorrow at 2pm. Reply to this message if \
you need to reschedule.',
      user_number: '+14155551234',
    }),
  }
);

console.log(response.status); // 202
"""

ERROR_STATUSES = (400, 401, 403, 404, 429, 500)


@pytest.fixture(autouse=True)
async def _no_lingering_deliveries(gateway: Gateway) -> AsyncIterator[None]:
    yield
    await forget_deliveries(gateway)


def fill(sample: str, gateway: Gateway, port: int) -> str:
    return (
        sample.replace(VENDOR_URL, f"http://127.0.0.1:{port}{BASE}")
        .replace("YOUR_API_KEY", gateway.api_key)
        .replace("YOUR_CONNECTOR_ID", gateway.project_id)
    )


def polyai_client(app: FastAPI, api_key: str | None, connector: str | None) -> httpx.AsyncClient:
    headers = {}
    if api_key is not None:
        headers["X-PolyAi-Auth-Token"] = api_key
    if connector is not None:
        headers["X-TOKEN-ID"] = connector
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=f"http://testserver{BASE}",
        headers=headers,
    )


@asynccontextmanager
async def polyai(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with polyai_client(gateway.app, gateway.api_key, gateway.project_id) as client:
        yield client


def assert_polyai_error(response: httpx.Response, status: int, *mentions: str) -> str:
    """PolyAI's error body: exactly ``{"detail": str}``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail"}, body
    detail = body["detail"]
    assert isinstance(detail, str)
    assert detail
    for mention in mentions:
        assert mention in detail, (mention, detail)
    return detail


async def conversations_of(gateway: Gateway) -> list[dict[str, Any]]:
    query = (
        select(tables.conversations)
        .where(tables.conversations.c.project_id == gateway.project_id)
        .order_by(tables.conversations.c.id)
    )
    async with gateway.db.read() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings().all()]


async def assert_greeting_session(gateway: Gateway) -> None:
    """The seed sample's effect: one SMS to Jane from our number, in a new session under
    the PolyAI policy, whose first message it is."""
    (row,) = await message_rows(gateway)
    assert row["to_number"] == USER
    assert row["from_number"] == OURS
    assert row["body"] == GREETING
    assert row["channel"] == "sms"
    assert row["status"] == "queued"
    (conversation,) = await conversations_of(gateway)
    assert row["conversation_id"] == conversation["id"]
    assert conversation["status"] == "open"
    assert conversation["user_number"] == USER
    assert conversation["agent_number"] == OURS
    assert conversation["settings"]["policy"] == "polyai"
    shown = (await gateway.client.get(f"/v1/conversations/{conversation['id']}")).json()
    assert [m["body"] for m in shown["messages"]] == [GREETING]


# -- the page's samples -----------------------------------------------------------------------


async def test_curl_sample_gets_202_with_an_empty_body(gateway: Gateway) -> None:
    async with serving(gateway.app) as port:
        command = fill(CURL_SAMPLE, gateway, port).replace("\\\n", " ")
        process = await asyncio.create_subprocess_exec(
            *shlex.split(command),
            "--silent",
            "--write-out",
            "\n%{http_code}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    body, _, status = out.decode().rpartition("\n")
    assert status == "202"
    assert body == ""
    await assert_greeting_session(gateway)


async def test_python_sample_prints_202(gateway: Gateway) -> None:
    async with serving(gateway.app) as port:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            fill(PYTHON_SAMPLE, gateway, port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    assert out.decode().strip() == "202"
    await assert_greeting_session(gateway)


async def test_javascript_sample_logs_202(gateway: Gateway, tmp_path: Path) -> None:
    script = tmp_path / "sample.mjs"
    async with serving(gateway.app) as port:
        script.write_text(fill(JAVASCRIPT_SAMPLE, gateway, port))
        process = await asyncio.create_subprocess_exec(
            "node",
            str(script),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    assert out.decode().strip() == "202"
    await assert_greeting_session(gateway)


# -- sessions, senders, the agent and the inactivity policy -----------------------------------


async def test_every_call_opens_a_new_session(gateway: Gateway) -> None:
    payload = {"message": GREETING, "user_number": USER}
    async with polyai(gateway) as client:
        first = await client.post("/v1/outbound-sms", json=payload)
        second = await client.post("/v1/outbound-sms", json=payload | {"message": "Second"})
    for response in (first, second):
        assert response.status_code == 202, response.text
        assert response.content == b""
    old, new = await conversations_of(gateway)
    assert old["status"] == "ended"
    assert old["end_reason"] == "new_conversation"
    assert new["status"] == "open"
    assert new["settings"]["policy"] == "polyai"
    rows = await message_rows(gateway)
    assert [(r["body"], r["conversation_id"]) for r in rows] == [
        (GREETING, old["id"]),
        ("Second", new["id"]),
    ]


async def test_agent_number_picks_the_sender_and_is_chosen_when_absent(gateway: Gateway) -> None:
    second = "+14155550111"
    added = await gateway.client.post(
        "/v1/numbers", json={"number": second, "capabilities": ["sms"]}
    )
    assert added.status_code == 201, added.text
    async with polyai(gateway) as client:
        chosen = await client.post(
            "/v1/outbound-sms", json={"message": "a", "user_number": USER, "agent_number": second}
        )
        assert chosen.status_code == 202, chosen.text
        # The same person again without agent_number: the pool keeps them on their number.
        automatic = await client.post(
            "/v1/outbound-sms", json={"message": "b", "user_number": USER}
        )
        assert automatic.status_code == 202, automatic.text
        other = await client.post(
            "/v1/outbound-sms",
            json={"message": "c", "user_number": "+14155551235", "agent_number": OURS},
        )
        assert other.status_code == 202, other.text
    rows = await message_rows(gateway)
    assert [(r["body"], r["from_number"]) for r in rows] == [
        ("a", second),
        ("b", second),
        ("c", OURS),
    ]


async def test_the_greeting_is_in_the_agents_context_and_replies_continue_it(
    gateway: Gateway,
) -> None:
    person = "+14155551236"
    with agent_server() as (server, url):
        async with insecure_gateway(gateway) as gw:
            await default_to_webhook_agent(gw, url)
            async with polyai(gw) as client:
                sent = await client.post(
                    "/v1/outbound-sms", json={"message": GREETING, "user_number": person}
                )
                assert sent.status_code == 202, sent.text
                (row,) = await message_rows(gw)
                await text_in(gw, person, "Can I move it to 3pm instead?")
                cid = row["conversation_id"]
                shown = await wait_for(gw, cid, lambda c: len(c["messages"]) >= 3)
                # Without a message, the conversation's agent writes the greeting.
                opened = await client.post("/v1/outbound-sms", json={"user_number": person})
                assert opened.status_code == 202, opened.text
            texts = [(m["direction"], m["body"]) for m in shown["messages"]]
            assert texts == [
                ("outbound", GREETING),
                ("inbound", "Can I move it to 3pm instead?"),
                ("outbound", "re: Can I move it to 3pm instead?"),
            ]
            (turn,) = server.turns
            assert turn["conversation_id"] == cid
            assert [(h["role"], h["text"]) for h in turn["history"]] == [
                ("agent", GREETING),
                ("person", "Can I move it to 3pm instead?"),
            ]
            rows = await message_rows(gw)
            new_cid = rows[-1]["conversation_id"]
            assert new_cid != cid
            fresh = await wait_for(gw, new_cid, lambda c: c["messages"][0]["body"] != "")
            assert fresh["messages"][0]["body"] == "opening"  # the agent's own greeting
            assert fresh["settings"]["policy"] == "polyai"
            await forget_deliveries(gw)


async def test_inactivity_policy_warns_after_24h_and_ends_10_minutes_later(
    gateway: Gateway,
) -> None:
    async with polyai(gateway) as client:
        sent = await client.post(
            "/v1/outbound-sms", json={"message": GREETING, "user_number": USER}
        )
    assert sent.status_code == 202, sent.text
    (conversation,) = await conversations_of(gateway)
    cid = conversation["id"]
    assert await timer_jobs(gateway, cid) == []  # not engaged until the user replies
    await text_in(gateway, USER, "Can I move it?")
    replied = time.time()
    warning, timeout = await timer_jobs(gateway, cid)
    assert abs(warning["run_at"] - (replied + 24 * 3600)) < 5
    assert abs(timeout["run_at"] - (replied + 24 * 3600 + 600)) < 5
    assert await run_timers_at(gateway, replied + 24 * 3600 + 5) == 1
    shown = (await gateway.client.get(f"/v1/conversations/{cid}")).json()
    assert shown["status"] == "open"
    assert "Are you still there?" in shown["messages"][-1]["body"]
    assert await run_timers_at(gateway, replied + 24 * 3600 + 605) == 1
    ended = (await gateway.client.get(f"/v1/conversations/{cid}")).json()
    assert ended["status"] == "ended"


# -- errors -----------------------------------------------------------------------------------


async def test_400_for_a_bad_body_bad_e164_or_a_number_not_provisioned(gateway: Gateway) -> None:
    good = {"message": GREETING, "user_number": USER}
    cases: list[tuple[Any, tuple[str, ...]]] = [
        ({}, ("user_number", "is required")),
        ({"message": GREETING}, ("user_number",)),
        (good | {"user_number": "12"}, ("user_number",)),
        (good | {"user_number": "not a number"}, ("user_number",)),
        (good | {"agent_number": "+14155550999"}, ("agent_number", "sender pool")),
        (good | {"agent_number": "nope"}, ("agent_number",)),
        (good | {"message": 5}, ("message",)),
        (good | {"colour": "blue"}, ("colour",)),
        # And no agent to write it: said in PolyAI's words (it has no media_urls).
        ({"user_number": USER}, ("message: is required unless the agent writes it",)),
        ([1], ("body", "JSON object")),
    ]
    async with polyai(gateway) as client:
        for payload, mentions in cases:
            response = await client.post("/v1/outbound-sms", json=payload)
            assert_polyai_error(response, 400, *mentions)
        not_json = await client.post(
            "/v1/outbound-sms", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert_polyai_error(not_json, 400, "not valid JSON")
        form = await client.post("/v1/outbound-sms", data={"user_number": USER})
        assert_polyai_error(form, 400, "Content-Type: send the body as JSON", "application/json")
    async with polyai_client(gateway.app, gateway.api_key, None) as client:
        no_connector = await client.post("/v1/outbound-sms", json=good)
    assert_polyai_error(no_connector, 400, "X-TOKEN-ID")
    assert await message_rows(gateway) == []
    assert await conversations_of(gateway) == []


async def test_401_without_a_valid_auth_token(gateway: Gateway) -> None:
    good = {"message": GREETING, "user_number": USER}
    for key, reason in ((None, "missing"), ("", "missing"), ("ask_wrong", "invalid")):
        async with polyai_client(gateway.app, key, gateway.project_id) as client:
            response = await client.post("/v1/outbound-sms", json=good)
        assert_polyai_error(response, 401, reason)
    async with polyai_client(gateway.app, None, gateway.project_id) as client:
        bearer = await client.post(
            "/v1/outbound-sms", json=good, headers={"Authorization": f"Bearer {gateway.api_key}"}
        )
    assert_polyai_error(bearer, 401, "X-PolyAi-Auth-Token")
    assert await message_rows(gateway) == []


async def test_403_when_the_key_is_not_the_connectors_account(gateway: Gateway) -> None:
    other_id, other = await gateway.new_project()
    await other.aclose()
    async with polyai_client(gateway.app, gateway.api_key, other_id) as client:
        response = await client.post(
            "/v1/outbound-sms", json={"message": GREETING, "user_number": USER}
        )
    assert_polyai_error(response, 403, "connector")
    assert await message_rows(gateway) == []
    assert await message_rows(gateway, other_id) == []


async def test_404_for_an_unknown_connector_or_a_project_without_numbers(
    gateway: Gateway,
) -> None:
    payload = {"message": GREETING, "user_number": USER}
    async with polyai_client(gateway.app, gateway.api_key, "proj_nobody") as client:
        unknown = await client.post("/v1/outbound-sms", json=payload)
    assert_polyai_error(unknown, 404, "connector proj_nobody not found")
    async with gateway.db.write() as conn:
        bare, key = await projects.create_project(conn, "no numbers")
    async with polyai_client(gateway.app, key, bare.id) as client:
        numberless = await client.post("/v1/outbound-sms", json=payload)
        no_path = await client.post("/v1/outbound-sms/nothing", json=payload)
    assert_polyai_error(numberless, 404, "no numbers")
    assert_polyai_error(no_path, 404)
    assert await message_rows(gateway, bare.id) == []


async def test_429_over_the_projects_rate_limit(gateway: Gateway) -> None:
    patched = await gateway.client.patch(
        "/v1/project", json={"settings": {"rate_limit_per_second": 1}}
    )
    assert patched.status_code == 200
    gateway.app.state.agentsms.key_cache.clear()
    async with polyai(gateway) as client:
        answers = [
            await client.post("/v1/outbound-sms", json={"message": f"m{i}", "user_number": USER})
            for i in range(3)
        ]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    for response in limited:
        assert_polyai_error(response, 429, "rate limit")
        assert int(response.headers["retry-after"]) >= 1
    accepted = [r for r in answers if r.status_code == 202]
    assert len(accepted) + len(limited) == 3
    assert len(await message_rows(gateway)) == len(accepted)


async def test_500_on_an_unexpected_failure_and_nothing_is_stored(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    await migrate.upgrade_async(url)
    app = create_app(settings_for(url))
    async with app.router.lifespan_context(app):
        async with app.state.agentsms.db.write() as conn:
            project, key = await projects.create_project(conn, "polyai")
            await add_simulator_number(conn, project.id, OURS)
            await conn.execute(text("DROP TABLE conversations"))  # a fault nobody expects
        async with polyai_client(app, key, project.id) as client:
            response = await client.post(
                "/v1/outbound-sms", json={"message": GREETING, "user_number": USER}
            )
        detail = assert_polyai_error(response, 500)
        assert "conversations" not in detail  # internals are logged, not returned
        async with app.state.agentsms.db.read() as conn:
            stored = (await conn.execute(select(tables.messages.c.id))).all()
        assert stored == []


async def test_openapi_documents_the_polyai_surface(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    post = spec["paths"][f"{BASE}/v1/outbound-sms"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["user_number"]
    assert set(body["properties"]) == {"message", "user_number", "agent_number"}
    assert {"202", *map(str, ERROR_STATUSES)} <= set(post["responses"])


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_every_error_status_of_the_page_has_a_test(status: int) -> None:
    assert any(name.startswith(f"test_{status}_") for name in globals())
