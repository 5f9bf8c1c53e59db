"""AgentPhone at ``/compat/agentphone``: the seed page's example sent as written (only the
base URL and the token changed), each response field and its type, the message and
conversation stored, media (MMS, iMessage carousel, public HTTPS only), ``send_style``,
``reply_to_message_id``, ``number_id``, numbers and agents, and AgentPhone's error bodies."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select, update

from agentsms.app import create_app
from agentsms.core import personas
from agentsms.store import tables
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for
from tests.integration.helpers import message_row, message_rows

BASE = "/compat/agentphone"
SENDER = "+14155550100"  # the gateway's simulator number (sms, mms, whatsapp, imessage)
SMS_LINE = "+14155550177"

# -- the seed page's examples, verbatim -------------------------------------------------------

JS_SAMPLE = """const url = 'https://api.agentphone.ai/v1/messages';
const options = {
 method: 'POST',
 headers: {Authorization: 'Bearer <token>', 'Content-Type': 'application/json'},
 body: '{"agent_id":"agent_12345abcde","to_number":"+14155552671","body":"Hello! Your \
appointment is confirmed for tomorrow at 3 PM."}'
};"""

RESPONSE_EXAMPLE: dict[str, Any] = {
    "id": "msg_98765zyxwv",
    "status": "sent",
    "channel": "sms",
    "from_number": "+14155550001",
    "to_number": "+14155552671",
    "media_urls": [],
    "reply_to_message_id": "msg_12345abcde",
    "reply_parent_unresolved": False,
}
SEED_AGENT = "agent_12345abcde"
MSG_ID = re.compile(r"^msg_[0-9A-HJKMNP-TV-Z]{26}$")
ERROR_KEYS = {"message", "code", "type", "details"}

# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="session")
async def agentphone_app(backend_url: str) -> AsyncIterator[FastAPI]:
    """As deployed: outbound URL checks on (media must be public HTTPS)."""
    app = create_app(settings_for(backend_url, allow_insecure_urls=False))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def gateway(agentphone_app: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(agentphone_app, "agentphone") as opened:
        yield opened


def client_for(gateway: Gateway, key: str | None = None) -> httpx.AsyncClient:
    token = gateway.api_key if key is None else key
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url=f"http://testserver{BASE}",
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )


async def add_agent(gateway: Gateway, agent_id: str = SEED_AGENT) -> str:
    """A persona of the gateway's project under ``agent_id`` (the page's own id)."""
    async with gateway.db.write() as conn:
        await conn.execute(
            delete(tables.persona_versions).where(tables.persona_versions.c.persona_id == agent_id)
        )
        await conn.execute(delete(tables.personas).where(tables.personas.c.id == agent_id))
        row, _ = await personas.create_persona(
            conn,
            gateway.project_id,
            "Scheduler",
            {"agent": {"kind": "llm", "model": "test-model", "system_prompt": "Be brief."}},
            publish=True,
        )
        await conn.execute(
            update(tables.personas).where(tables.personas.c.id == row["id"]).values(id=agent_id)
        )
        await conn.execute(
            update(tables.persona_versions)
            .where(tables.persona_versions.c.persona_id == row["id"])
            .values(persona_id=agent_id)
        )
    return agent_id


async def add_number(gateway: Gateway, number: str, capabilities: list[str]) -> str:
    response = await gateway.client.post(
        "/v1/numbers", json={"number": number, "capabilities": capabilities}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_error(response: httpx.Response, status: int, code: str, *fields: str) -> dict[str, Any]:
    """AgentPhone's ``{"error": {message, code, type, details}}``, naming ``fields``."""
    assert response.status_code == status, response.text
    body = response.json()
    error = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    assert error["type"]
    for detail in error["details"]:
        assert set(detail) == {"field", "message", "type"}
    named = {detail["field"] for detail in error["details"]}
    for field in fields:
        assert field in named, (field, error)
        assert field in error["message"]
    return body  # type: ignore[no-any-return]


def js_request() -> tuple[str, dict[str, str], str]:
    """The JavaScript sample's URL path, headers and body string, read from the sample."""
    url = re.search(r"const url = '([^']+)'", JS_SAMPLE)
    body = re.search(r"body: '(.*)'\n", JS_SAMPLE, re.S)
    assert url
    assert body
    path = url[1].removeprefix("https://api.agentphone.ai")
    return path, {"Content-Type": "application/json"}, body[1]


def same_types(actual: dict[str, Any], example: dict[str, Any]) -> None:
    assert set(actual) == set(example), (actual, example)
    for key, value in example.items():
        if actual[key] is None or value is None:
            continue
        assert type(actual[key]) is type(value), (key, actual[key], value)


async def send(gateway: Gateway, **fields: Any) -> httpx.Response:
    payload = {"agent_id": SEED_AGENT, "to_number": "+14155552671", "body": "Hi"} | fields
    async with client_for(gateway) as client:
        return await client.post("/v1/messages", json=payload)


# -- send message: the page's example ---------------------------------------------------------


async def test_js_sample_sends_an_sms_from_the_agent(gateway: Gateway) -> None:
    await add_agent(gateway)
    path, headers, body = js_request()
    async with client_for(gateway) as client:
        response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    same_types(answer, RESPONSE_EXAMPLE)
    assert MSG_ID.match(answer["id"])
    assert answer["status"] == "queued"
    assert answer["channel"] == "sms"
    assert answer["from_number"] == SENDER
    assert answer["to_number"] == "+14155552671"
    assert answer["media_urls"] == []
    assert answer["reply_to_message_id"] is None
    assert answer["reply_parent_unresolved"] is None
    # The effect: one message stored as sent, in a conversation run by the agent.
    row = await message_row(gateway, answer["id"])
    assert row["body"] == json.loads(body)["body"]
    assert row["channel"] == "sms"
    assert row["to_number"] == "+14155552671"
    async with gateway.db.read() as conn:
        conversation = (
            (
                await conn.execute(
                    select(tables.conversations).where(
                        tables.conversations.c.id == row["conversation_id"]
                    )
                )
            )
            .mappings()
            .one()
        )
    assert conversation["settings"]["persona_id"] == SEED_AGENT
    assert conversation["user_number"] == "+14155552671"
    await gateway.drain()
    sent = await message_row(gateway, answer["id"])
    assert sent["status"] in ("sent", "delivered")


# -- media ------------------------------------------------------------------------------------


async def test_one_media_url_is_an_mms(gateway: Gateway) -> None:
    await add_agent(gateway)
    response = await send(gateway, media_urls=["https://example.com/photo.jpg"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["channel"] == "mms"
    assert answer["media_urls"] == ["https://example.com/photo.jpg"]
    row = await message_row(gateway, answer["id"])
    assert row["media_urls"] == ["https://example.com/photo.jpg"]
    assert row["channel"] == "mms"


async def test_deprecated_media_url_is_one_attachment(gateway: Gateway) -> None:
    await add_agent(gateway)
    response = await send(gateway, media_url="https://example.com/a.png")
    assert response.status_code == 200, response.text
    assert response.json()["media_urls"] == ["https://example.com/a.png"]
    assert response.json()["channel"] == "mms"


async def test_two_to_twenty_urls_are_an_imessage_carousel(gateway: Gateway) -> None:
    await add_agent(gateway)
    urls = [f"https://cdn.example.com/{i}.jpg" for i in range(20)]
    response = await send(gateway, body="", media_urls=urls)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["channel"] == "imessage"
    assert answer["media_urls"] == urls
    row = await message_row(gateway, answer["id"])
    assert row["channel"] == "imessage"
    assert row["body"] == ""
    assert len(row["media_urls"]) == 20


async def test_carousel_rules_are_422_and_store_nothing(gateway: Gateway) -> None:
    await add_agent(gateway)
    urls = ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"]
    with_text = await send(gateway, body="look", media_urls=urls)
    assert_error(with_text, 422, "VALIDATION_ERROR", "body")
    too_many = await send(gateway, body="", media_urls=[*urls] * 11)
    assert_error(too_many, 422, "VALIDATION_ERROR", "media_urls")
    await add_number(gateway, SMS_LINE, ["sms", "mms"])
    sms_line = await add_number_id(gateway, SMS_LINE)
    no_imessage = await send(gateway, body="", media_urls=urls, number_id=sms_line)
    assert_error(no_imessage, 422, "VALIDATION_ERROR", "media_urls")
    assert await message_rows(gateway) == []


async def add_number_id(gateway: Gateway, number: str) -> str:
    listed = await gateway.client.get("/v1/numbers")
    return next(str(n["id"]) for n in listed.json()["data"] if n["number"] == number)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.jpg",
        "https://127.0.0.1/a.jpg",
        "https://10.0.0.7/a.jpg",
        "https://localhost/a.jpg",
        "ftp://example.com/a.jpg",
    ],
)
async def test_media_must_be_public_https(gateway: Gateway, url: str) -> None:
    await add_agent(gateway)
    response = await send(gateway, media_urls=[url])
    body = assert_error(response, 422, "VALIDATION_ERROR", "media_urls[0]")
    assert body["detail"][0]["loc"] == ["body", "media_urls", 0]
    assert await message_rows(gateway) == []


# -- send_style, reply_to_message_id, number_id -----------------------------------------------


async def test_send_style_on_an_imessage_line(gateway: Gateway) -> None:
    await add_agent(gateway)
    urls = ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"]
    response = await send(gateway, body="", media_urls=urls, send_style="confetti")
    assert response.status_code == 200, response.text
    row = await message_row(gateway, response.json()["id"])
    assert row["send_style"] == "confetti"
    assert row["channel"] == "imessage"


async def test_send_style_is_refused_on_an_sms_line_and_unknown_styles(gateway: Gateway) -> None:
    await add_agent(gateway)
    await add_number(gateway, SMS_LINE, ["sms", "mms"])
    line = await add_number_id(gateway, SMS_LINE)
    on_sms = await send(gateway, number_id=line, send_style="slam")
    assert_error(on_sms, 422, "VALIDATION_ERROR", "send_style")
    unknown = await send(gateway, send_style="wobble")
    assert_error(unknown, 422, "VALIDATION_ERROR", "send_style")
    assert await message_rows(gateway) == []


async def test_reply_to_a_message_of_the_same_conversation(gateway: Gateway) -> None:
    await add_agent(gateway)
    first = await send(gateway, body="Your order shipped")
    parent = first.json()["id"]
    reply = await send(gateway, body="It arrives Friday", reply_to_message_id=parent)
    assert reply.status_code == 200, reply.text
    assert reply.json()["reply_to_message_id"] == parent
    assert reply.json()["reply_parent_unresolved"] is False
    row = await message_row(gateway, reply.json()["id"])
    assert row["reply_to_message_id"] == parent
    assert row["reply_parent_unresolved"] is False
    unknown = await send(gateway, body="Hello", reply_to_message_id="msg_12345abcde")
    assert unknown.status_code == 200, unknown.text
    assert unknown.json()["reply_to_message_id"] == "msg_12345abcde"
    assert unknown.json()["reply_parent_unresolved"] is True


async def test_number_id_picks_the_line(gateway: Gateway) -> None:
    await add_agent(gateway)
    line = await add_number(gateway, SMS_LINE, ["sms", "mms"])
    response = await send(gateway, number_id=line)
    assert response.status_code == 200, response.text
    assert response.json()["from_number"] == SMS_LINE


# -- errors -----------------------------------------------------------------------------------


async def test_404_phone_number_not_found(gateway: Gateway) -> None:
    await add_agent(gateway)
    response = await send(gateway, number_id="num_nope")
    assert_error(response, 404, "PHONE_NUMBER_NOT_FOUND")
    assert "num_nope" in response.json()["error"]["message"]
    assert await message_rows(gateway) == []


async def test_422_names_each_bad_field(gateway: Gateway) -> None:
    await add_agent(gateway)
    async with client_for(gateway) as client:
        missing = await client.post("/v1/messages", json={"body": "x"})
        body = assert_error(missing, 422, "VALIDATION_ERROR", "agent_id", "to_number")
        assert {tuple(d["loc"]) for d in body["detail"]} >= {
            ("body", "agent_id"),
            ("body", "to_number"),
        }
        bad_number = await client.post(
            "/v1/messages", json={"agent_id": SEED_AGENT, "to_number": "12", "body": "x"}
        )
        assert_error(bad_number, 422, "VALIDATION_ERROR", "to_number")
        no_agent = await client.post(
            "/v1/messages",
            json={"agent_id": "agent_missing", "to_number": "+14155552671", "body": "x"},
        )
        assert_error(no_agent, 422, "VALIDATION_ERROR", "agent_id")
        not_json = await client.post("/v1/messages", content=b"{", headers={"content-type": "a"})
        assert_error(not_json, 422, "VALIDATION_ERROR", "Content-Type")
        # curl -d without -H: the header is named, not the body.
        form = await client.post("/v1/messages", data={"agent_id": SEED_AGENT, "body": "x"})
        details = assert_error(form, 422, "VALIDATION_ERROR", "Content-Type")
        assert "application/json" in str(details)
    assert await message_rows(gateway) == []


async def test_401_without_a_valid_key(gateway: Gateway) -> None:
    for key in ("", "sk_wrong"):
        async with client_for(gateway, key) as client:
            response = await client.post("/v1/messages", json={})
        assert_error(response, 401, "UNAUTHORIZED")


async def test_429_rate_limit_exceeded_with_retry_after(gateway: Gateway) -> None:
    await add_agent(gateway)
    patched = await gateway.client.patch(
        "/v1/project", json={"settings": {"rate_limit_per_second": 1}}
    )
    assert patched.status_code == 200
    gateway.app.state.agentsms.key_cache.clear()
    answers = [await send(gateway) for _ in range(3)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited
    for response in limited:
        assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
        assert int(response.headers["retry-after"]) >= 1
    accepted = [r for r in answers if r.status_code == 200]
    assert len(await message_rows(gateway)) == len(accepted)


async def test_404_for_unknown_paths(gateway: Gateway) -> None:
    async with client_for(gateway) as client:
        response = await client.get("/v1/nothing-here")
    assert_error(response, 404, "NOT_FOUND")


# -- numbers and agents -----------------------------------------------------------------------


async def test_numbers_list_the_projects_lines(gateway: Gateway) -> None:
    line = await add_number(gateway, SMS_LINE, ["sms", "mms"])
    async with client_for(gateway) as client:
        response = await client.get("/v1/numbers")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    assert body["hasMore"] is False
    by_number = {n["phoneNumber"]: n for n in body["data"]}
    assert by_number[SMS_LINE]["id"] == line
    assert by_number[SMS_LINE]["type"] == "sms"
    assert by_number[SENDER]["type"] == "imessage"
    assert by_number[SENDER]["country"] == "US"


async def test_agents_create_list_and_send_as_them(gateway: Gateway) -> None:
    async with client_for(gateway) as client:
        created = await client.post(
            "/v1/agents",
            json={"name": "Support", "description": "Front desk", "systemPrompt": "Be kind."},
        )
        assert created.status_code == 201, created.text
        agent = created.json()
        assert agent["id"].startswith("persona_")
        assert agent["name"] == "Support"
        assert agent["description"] == "Front desk"
        assert agent["systemPrompt"] == "Be kind."
        listed = await client.get("/v1/agents")
        assert listed.status_code == 200
        assert [a["id"] for a in listed.json()["data"]] == [agent["id"]]
        assert listed.json()["total"] == 1
        sent = await client.post(
            "/v1/messages",
            json={"agent_id": agent["id"], "to_number": "+14155552671", "body": "Hi"},
        )
        assert sent.status_code == 200, sent.text
        bad = await client.post("/v1/agents", json={"name": ""})
        assert_error(bad, 422, "VALIDATION_ERROR", "name")
    row = await message_row(gateway, sent.json()["id"])
    async with gateway.db.read() as conn:
        settings = (
            await conn.execute(
                select(tables.conversations.c.settings).where(
                    tables.conversations.c.id == row["conversation_id"]
                )
            )
        ).scalar_one()
    assert settings["persona_id"] == agent["id"]


# -- conversations ----------------------------------------------------------------------------


async def test_conversations_page_get_update_and_messages(gateway: Gateway) -> None:
    await add_agent(gateway)
    people = ["+14155552671", "+14155552672", "+14155552673"]
    sent = [
        await send(gateway, to_number=person, body=f"Hi {i}") for i, person in enumerate(people)
    ]
    assert all(r.status_code == 200 for r in sent)
    again = await send(gateway, to_number=people[0], body="Second")
    assert again.status_code == 200
    async with client_for(gateway) as client:
        first = await client.get("/v1/conversations", params={"limit": 2, "offset": 0})
        assert first.status_code == 200, first.text
        page = first.json()
        assert page["total"] == 3
        assert page["hasMore"] is True
        assert [c["participant"] for c in page["data"]] == [people[2], people[1]]
        rest = (await client.get("/v1/conversations?limit=2&offset=2")).json()
        assert rest["hasMore"] is False
        assert [c["participant"] for c in rest["data"]] == [people[0]]
        conversation = rest["data"][0]
        assert conversation["agentId"] == SEED_AGENT
        assert conversation["phoneNumber"] == SENDER
        assert conversation["channel"] == "sms"
        assert conversation["status"] == "open"
        got = await client.get(f"/v1/conversations/{conversation['id']}")
        assert got.json() | {"messages": []} == conversation
        assert conversation["messageCount"] == 2
        assert [m["body"] for m in got.json()["messages"]] == ["Hi 0", "Second"]
        patched = await client.patch(
            f"/v1/conversations/{conversation['id']}", json={"metadata": {"tier": "gold"}}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["metadata"] == {"tier": "gold"}
        history = await client.get(f"/v1/conversations/{conversation['id']}/messages")
        assert history.status_code == 200
        bodies = [m["body"] for m in history.json()["data"]]
        assert bodies == ["Hi 0", "Second"]
        assert history.json()["total"] == 2
        assert history.json()["data"][0]["direction"] == "outbound"
        assert history.json()["data"][0]["fromNumber"] == SENDER
        missing = await client.get("/v1/conversations/conv_nope")
        assert_error(missing, 404, "NOT_FOUND")
        bad_page = await client.get("/v1/conversations?limit=0&offset=-1")
        assert_error(bad_page, 422, "VALIDATION_ERROR", "limit", "offset")
    async with gateway.db.read() as conn:
        stored = (
            await conn.execute(
                select(tables.conversations.c.metadata).where(
                    tables.conversations.c.id == conversation["id"]
                )
            )
        ).scalar_one()
    assert stored == {"tier": "gold"}


async def test_native_conversations_offset_and_total(gateway: Gateway) -> None:
    await add_agent(gateway)
    for person in ("+14155552671", "+14155552672", "+14155552673"):
        assert (await send(gateway, to_number=person)).status_code == 200
    response = await gateway.client.get(
        "/v1/conversations", params={"limit": 1, "offset": 1, "with_total": "true"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 3
    assert [c["user_number"] for c in body["data"]] == ["+14155552672"]


# -- webhooks ---------------------------------------------------------------------------------


@dataclass
class Hook:
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Hook]]]:
    """A real HTTP server on 127.0.0.1 recording what it is sent."""
    got: list[Hook] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.append(Hook({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/agentphone", got
    server.shutdown()


@pytest.fixture(scope="module")
async def dev_app(backend_url: str) -> AsyncIterator[FastAPI]:
    """Local development settings: webhooks may go to a loopback http receiver."""
    app = create_app(settings_for(backend_url, allow_insecure_urls=True))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def dev(dev_app: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(dev_app, "agentphone-hooks") as opened:
        yield opened


async def test_webhooks_create_get_delete_and_https_only_in_production(gateway: Gateway) -> None:
    async with client_for(gateway) as client:
        insecure = await client.post("/v1/webhooks", json={"url": "http://127.0.0.1/x"})
        assert_error(insecure, 422, "VALIDATION_ERROR", "url")
        created = await client.post(
            "/v1/webhooks", json={"url": "https://hooks.example.com/a", "contextLimit": 5}
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"].startswith("whsec_")
        assert hook["contextLimit"] == 5
        assert hook["timeout"] == 15
        assert hook["status"] == "active"
        got = await client.get("/v1/webhooks")
        assert got.status_code == 200
        assert got.json()["id"] == hook["id"]
        assert got.json()["secret"] == hook["secret"]
        too_slow = await client.post(
            "/v1/webhooks", json={"url": "https://hooks.example.com/a", "timeout": 20}
        )
        assert_error(too_slow, 422, "VALIDATION_ERROR", "timeout")
        replaced = await client.post(
            "/v1/webhooks", json={"url": "https://hooks.example.com/b", "timeout": 5}
        )
        assert replaced.json()["timeout"] == 5.0
        assert (await client.get("/v1/webhooks")).json()["url"] == "https://hooks.example.com/b"
        deleted = await client.delete("/v1/webhooks")
        assert deleted.status_code == 200
        assert deleted.json() == {"success": True}
        assert_error(await client.get("/v1/webhooks"), 404, "NOT_FOUND")
        assert_error(await client.delete("/v1/webhooks"), 404, "NOT_FOUND")


async def test_agent_message_webhook_signed_agentphones_way(
    dev: Gateway, receiver: tuple[str, list[Hook]]
) -> None:
    url, got = receiver
    await add_agent(dev)
    async with client_for(dev) as client:
        created = await client.post("/v1/webhooks", json={"url": url, "contextLimit": 2})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        sent = await client.post(
            "/v1/messages",
            json={"agent_id": SEED_AGENT, "to_number": "+14155552671", "body": "Table for 2?"},
        )
        assert sent.status_code == 200, sent.text
        conversation_id = (await message_row(dev, sent.json()["id"]))["conversation_id"]
        patched = await client.patch(
            f"/v1/conversations/{conversation_id}", json={"metadata": {"step": "booking"}}
        )
        assert patched.status_code == 200
    # The agent is the customer's own server here: the persona's LLM stays out of it.
    paused = await dev.client.post(
        f"/v1/conversations/{conversation_id}/agent", json={"paused": True}
    )
    assert paused.status_code == 200, paused.text
    inbound = await dev.client.post(
        "/v1/simulator/inbound",
        json={"from": "+14155552671", "to": SENDER, "body": "Yes please, 7pm"},
    )
    assert inbound.status_code == 202, inbound.text
    await dev.drain()
    assert len(got) == 1, got
    hook = got[0]
    stamp = hook.headers["x-webhook-timestamp"]
    expected = hmac.new(
        secret.encode(), f"{stamp}.".encode() + hook.body, hashlib.sha256
    ).hexdigest()
    assert hook.headers["x-webhook-signature"] == f"sha256={expected}"
    assert abs(int(stamp) - time.time()) < 120
    payload = json.loads(hook.body)
    assert set(payload) == {
        "event",
        "channel",
        "timestamp",
        "agentId",
        "data",
        "conversationState",
        "recentHistory",
    }
    assert payload["event"] == "agent.message"
    assert payload["channel"] == "sms"
    assert payload["agentId"] == SEED_AGENT
    data = payload["data"]
    assert data["messageId"] == inbound.json()["id"]
    assert data["conversationId"] == conversation_id
    assert data["numberId"].startswith("num_")
    assert data["from"] == "+14155552671"
    assert data["to"] == SENDER
    assert data["message"] == "Yes please, 7pm"
    assert data["mediaUrls"] == []
    assert data["direction"] == "inbound"
    assert isinstance(data["receivedAt"], str)
    assert payload["conversationState"] == {"step": "booking"}
    assert [h["content"] for h in payload["recentHistory"]] == ["Table for 2?", "Yes please, 7pm"]
    assert [h["direction"] for h in payload["recentHistory"]] == ["outbound", "inbound"]


# -- reactions --------------------------------------------------------------------------------


async def test_reaction_on_an_imessage_message(gateway: Gateway) -> None:
    await add_agent(gateway)
    urls = ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"]
    carousel = await send(gateway, body="", media_urls=urls)
    message_id = carousel.json()["id"]
    async with client_for(gateway) as client:
        response = await client.post(
            f"/v1/messages/{message_id}/reactions", json={"reaction": "love"}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert set(answer) == {"id", "reaction_type", "message_id", "channel"}
        assert answer["id"].startswith("rxn_")
        assert answer["reaction_type"] == "love"
        assert answer["message_id"] == message_id
        assert answer["channel"] == "imessage"
        unknown = await client.post(
            f"/v1/messages/{message_id}/reactions", json={"reaction": "wow"}
        )
        assert_error(unknown, 422, "VALIDATION_ERROR", "reaction")
        missing = await client.post("/v1/messages/msg_nope/reactions", json={"reaction": "like"})
        assert_error(missing, 404, "NOT_FOUND")
    listed = await gateway.client.get(f"/v1/messages/{message_id}/reactions")
    assert [(r["reaction"], r["direction"]) for r in listed.json()["data"]] == [
        ("love", "outbound")
    ]
    assert listed.json()["data"][0]["from"] == SENDER


async def test_reaction_on_an_sms_message_is_refused(gateway: Gateway) -> None:
    await add_agent(gateway)
    sms = await send(gateway, body="Plain text")
    message_id = sms.json()["id"]
    async with client_for(gateway) as client:
        response = await client.post(
            f"/v1/messages/{message_id}/reactions", json={"reaction": "like"}
        )
    body = assert_error(response, 422, "VALIDATION_ERROR", "message_id")
    assert "iMessage only" in body["error"]["message"]
    listed = await gateway.client.get(f"/v1/messages/{message_id}/reactions")
    assert listed.json()["data"] == []


async def test_agent_reaction_webhook(dev: Gateway, receiver: tuple[str, list[Hook]]) -> None:
    url, got = receiver
    await add_agent(dev)
    async with client_for(dev) as client:
        created = await client.post("/v1/webhooks", json={"url": url})
        secret = created.json()["secret"]
        urls = ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"]
        sent = await client.post(
            "/v1/messages",
            json={
                "agent_id": SEED_AGENT,
                "to_number": "+14155552671",
                "body": "",
                "media_urls": urls,
            },
        )
        assert sent.status_code == 200, sent.text
    reacted = await dev.client.post(
        "/v1/simulator/reactions", json={"message_id": sent.json()["id"], "reaction": "laugh"}
    )
    assert reacted.status_code == 201, reacted.text
    await dev.drain()
    assert len(got) == 1, got
    hook = got[0]
    stamp = hook.headers["x-webhook-timestamp"]
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + hook.body, hashlib.sha256)
    assert hook.headers["x-webhook-signature"] == f"sha256={expected.hexdigest()}"
    payload = json.loads(hook.body)
    assert payload["event"] == "agent.reaction"
    assert payload["channel"] == "imessage"
    assert payload["agentId"] == SEED_AGENT
    assert payload["data"]["reactionType"] == "laugh"
    assert payload["data"]["messageId"] == sent.json()["id"]
    assert payload["data"]["from"] == "+14155552671"
    assert payload["data"]["to"] == SENDER
    assert payload["data"]["direction"] == "inbound"
    assert [h["direction"] for h in payload["recentHistory"]] == ["outbound"]


async def test_openapi_documents_the_agentphone_surface(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    paths = spec["paths"]
    send_op = paths[f"{BASE}/v1/messages"]["post"]
    body = send_op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"agent_id", "to_number", "body"}
    assert set(body["properties"]) == {
        "agent_id",
        "to_number",
        "body",
        "media_url",
        "media_urls",
        "number_id",
        "send_style",
        "reply_to_message_id",
    }
    assert {"200", "422"} <= set(send_op["responses"])
    for path, method in (
        ("/v1/messages/{message_id}/reactions", "post"),
        ("/v1/conversations", "get"),
        ("/v1/conversations/{conversation_id}", "get"),
        ("/v1/conversations/{conversation_id}", "patch"),
        ("/v1/conversations/{conversation_id}/messages", "get"),
        ("/v1/numbers", "get"),
        ("/v1/agents", "get"),
        ("/v1/agents", "post"),
        ("/v1/webhooks", "post"),
        ("/v1/webhooks", "get"),
        ("/v1/webhooks", "delete"),
    ):
        assert method in paths[f"{BASE}{path}"], (path, method)
