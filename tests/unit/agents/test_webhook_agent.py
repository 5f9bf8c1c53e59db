"""The webhook agent against a real local server that verifies the Standard Webhooks signature."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.fakes.chat_completions import ServerThread
from tests.unit.agents.conftest import Chat

from agentsms.agents import AgentFailed, build_agent
from agentsms.config import Settings
from agentsms.webhooks import safe_client

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@dataclass
class CustomerAgent:
    """The customer's agent endpoint: verifies each request, answers from a script."""

    secret: str = SECRET
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    script: deque[tuple[int, Any, float]] = field(default_factory=deque)

    def answer(self, body: Any, status: int = 200, delay: float = 0.0) -> None:
        self.script.append((status, body, delay))

    async def turn(self, request: Request) -> Response:
        raw = await request.body()
        try:
            payload = Webhook(self.secret).verify(raw, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return JSONResponse({"error": "bad signature"}, 401)
        self.received.append({"headers": dict(request.headers), "payload": payload, "raw": raw})
        status, body, delay = self.script.popleft()
        if delay:
            await asyncio.sleep(delay)
        if isinstance(body, str):
            return Response(body, status, media_type="application/json")
        return JSONResponse(body, status)


@pytest.fixture(scope="module")
def customer_server() -> Iterator[tuple[CustomerAgent, str]]:
    customer = CustomerAgent()
    server = ServerThread(Starlette(routes=[Route("/agent", customer.turn, methods=["POST"])]))
    server.start()
    yield customer, server.url + "/agent"
    server.stop()


@pytest.fixture
def customer(customer_server: tuple[CustomerAgent, str]) -> CustomerAgent:
    agent = customer_server[0]
    agent.received.clear()
    agent.script.clear()
    agent.rejected = 0
    agent.secret = SECRET
    return agent


@pytest.fixture
def config(customer_server: tuple[CustomerAgent, str]) -> dict[str, Any]:
    return {"kind": "webhook", "url": customer_server[1], "secret": SECRET}


def chat_for(config: dict[str, Any], **kwargs: Any) -> Chat:
    return Chat(
        build_agent(config, http=kwargs.pop("http", None)),
        context="Bright Smile Dental",
        task_context="Confirm the cleaning",
        metadata={"name": "Ann"},
        dispositions=kwargs.pop("dispositions", ["confirmed", "canceled"]),
        extraction_schemas=[{"type": "object", "properties": {"note": {"type": "string"}}}],
        **kwargs,
    )


async def test_posts_the_signed_conversation_and_sends_the_reply(
    customer: CustomerAgent, config: dict[str, Any]
) -> None:
    chat = chat_for(config)
    chat.greeting("Your cleaning is Tuesday at 3.")
    customer.answer({"reply": "Great! Any questions?", "state": {"step": 2}})
    output = await chat.say("Sounds good")
    assert output.replies == ["Great! Any questions?"]
    assert output.state == {"step": 2}
    assert output.ending is None
    [request] = customer.received
    payload = request["payload"]
    assert payload == {
        "type": "agent.turn",
        "conversation_id": "conv_test",
        "history": [
            {
                "role": "agent",
                "text": "Your cleaning is Tuesday at 3.",
                "at": "2026-11-29T15:00:00+00:00",
            },
            {"role": "person", "text": "Sounds good", "at": "2026-11-29T15:01:00+00:00"},
        ],
        "context": "Bright Smile Dental",
        "task_context": "Confirm the cleaning",
        "metadata": {"name": "Ann"},
        "state": {},
        "dispositions": ["confirmed", "canceled"],
        "extraction_schemas": [{"type": "object", "properties": {"note": {"type": "string"}}}],
        "start_node_id": None,
    }
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["webhook-id"].startswith("turn_")

    # The state the customer returned comes back on the next turn.
    customer.answer({"reply": "Bye!", "end": {"outcome": "confirmed", "extracted": {"note": "ok"}}})
    output = await chat.say("No questions")
    assert customer.received[-1]["payload"]["state"] == {"step": 2}
    assert output.replies == ["Bye!"]
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"
    assert output.ending.extracted == {"note": "ok"}
    assert output.state == {"step": 2}  # kept when the answer has no state


async def test_a_retried_turn_keeps_its_webhook_id(
    customer: CustomerAgent, config: dict[str, Any]
) -> None:
    chat = chat_for(config)
    customer.answer({"reply": "a"})
    customer.answer({"reply": "b"})
    agent = build_agent(config)
    chat.greeting("hi")
    turn = chat.turn_input()
    await agent.respond(turn)
    await agent.respond(turn)
    first, second = customer.received
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    customer.answer({"reply": "c"})
    chat.greeting("another text")
    await agent.respond(chat.turn_input())
    assert customer.received[-1]["headers"]["webhook-id"] != first["headers"]["webhook-id"]


async def test_the_signature_covers_every_byte(
    customer: CustomerAgent, config: dict[str, Any]
) -> None:
    customer.answer({"reply": "ok"})
    await chat_for(config).say("hello")
    [request] = customer.received
    verifier = Webhook(SECRET)
    headers = request["headers"]
    assert verifier.verify(request["raw"], headers)["history"][0]["text"] == "hello"
    tampered = request["raw"].replace(b"hello", b"hellp")
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, headers)


async def test_a_server_with_another_secret_rejects_it(
    customer: CustomerAgent, config: dict[str, Any]
) -> None:
    customer.secret = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode()
    with pytest.raises(AgentFailed) as failed:
        await chat_for(config).say("hello")
    assert customer.rejected == 1
    assert failed.value.retryable is False
    assert "401" in str(failed.value)


async def test_replies_list_and_empty_reply(
    customer: CustomerAgent, config: dict[str, Any]
) -> None:
    customer.answer({"reply": "first", "replies": ["second", "  ", "third"]})
    output = await chat_for(config).say("hello")
    assert output.replies == ["first", "second", "third"]
    customer.answer({"reply": None})
    output = await chat_for(config).say("hello")
    assert output.replies == []
    assert output.ending is None


@pytest.mark.parametrize(
    ("status", "body", "retryable", "reason"),
    [
        (500, {"error": "boom"}, True, "500"),
        (503, {}, True, "503"),
        (429, {}, True, "429"),
        (404, {}, False, "404"),
        (302, {}, False, "302"),
        (200, "not json", False, "not a valid reply"),
        (200, {"reply": 5}, False, "not a valid reply"),
        (200, {"end": {"extracted": {}}}, False, "not a valid reply"),
        (200, {"end": {"outcome": "booked"}}, False, "not one of"),
    ],
)
async def test_failures(
    customer: CustomerAgent,
    config: dict[str, Any],
    status: int,
    body: Any,
    retryable: bool,
    reason: str,
) -> None:
    customer.answer(body, status)
    with pytest.raises(AgentFailed) as failed:
        await chat_for(config).say("hello")
    assert failed.value.retryable is retryable
    assert reason in str(failed.value)


async def test_a_slow_customer_times_out_as_retryable(
    customer: CustomerAgent, config: dict[str, Any]
) -> None:
    customer.answer({"reply": "late"}, delay=1.5)
    with pytest.raises(AgentFailed) as failed:
        await chat_for({**config, "timeout_seconds": 0.3}).say("hello")
    assert failed.value.retryable is True
    assert "timed out" in str(failed.value)


async def test_uses_the_given_http_client(customer: CustomerAgent, config: dict[str, Any]) -> None:
    customer.answer({"reply": "ok"})
    async with httpx.AsyncClient(headers={"x-gateway": "safe-client"}) as http:
        output = await chat_for(config, http=http).say("hello")
        assert not http.is_closed  # the caller's client is not closed by the agent
    assert output.replies == ["ok"]
    assert customer.received[0]["headers"]["x-gateway"] == "safe-client"
    assert json.loads(customer.received[0]["raw"])["history"][0]["text"] == "hello"


class Refused(httpx.ConnectError):
    """What a guarding client raises for a request that can never be allowed."""

    retryable = False


class RefusingTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise Refused("refused by policy", request=request)


async def test_an_error_marked_not_retryable_fails_at_once(
    customer: CustomerAgent, config: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(transport=RefusingTransport()) as http:
        with pytest.raises(AgentFailed) as failed:
            await chat_for(config, http=http).say("hello")
    assert failed.value.retryable is False
    assert "refused by policy" in str(failed.value)
    assert customer.received == []


async def test_the_ssrf_safe_client_keeps_the_agent_off_loopback(
    customer: CustomerAgent, config: dict[str, Any]
) -> None:
    customer.answer({"reply": "must not be reached"})
    async with safe_client(Settings(allow_insecure_urls=False)) as http:
        with pytest.raises(AgentFailed):
            await chat_for(config, http=http).say("hello")
    assert customer.received == []
    assert customer.rejected == 0
