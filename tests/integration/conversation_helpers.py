"""Shared by the conversation tests: personas, texts from people, a customer's agent on a
real loopback socket, a gateway allowed to call it, and waiting for agent turns."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import delete, select

from agentsms.agents import load_demo_pathway
from agentsms.app import create_app
from agentsms.store import tables
from agentsms.webhooks.events import DELIVER_JOB
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for

SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
OURS = "+14155550100"  # the gateway fixture's simulator number


async def forget_deliveries(gateway: Gateway) -> None:
    """Drop the queued webhook deliveries of the gateway's project (to hosts that do not
    exist), so they do not linger in the shared test database for other tests. Its queued
    messages are sent first, so that no later test's worker sends them (and emits for them)."""
    await gateway.drain()
    events = select(tables.webhook_events.c.id).where(
        tables.webhook_events.c.project_id == gateway.project_id
    )
    async with gateway.db.write() as conn:
        await conn.execute(
            delete(tables.jobs).where(
                tables.jobs.c.kind == DELIVER_JOB, tables.jobs.c.ref.in_(events)
            )
        )


async def wait_for(
    gateway: Gateway,
    conversation_id: str,
    done: Callable[[dict[str, Any]], Any],
    within: float = 20.0,
) -> dict[str, Any]:
    """Run due jobs until ``done(conversation)`` holds."""
    deadline = time.monotonic() + within
    while True:
        await gateway.drain()
        shown: dict[str, Any] = (
            await gateway.client.get(f"/v1/conversations/{conversation_id}")
        ).json()
        if done(shown):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"conversation did not get there in {within}s: {shown}")
        await asyncio.sleep(0.02)


async def create_persona(gateway: Gateway, **body: Any) -> dict[str, Any]:
    """``POST /v1/personas`` with ``body``; the created persona."""
    response = await gateway.client.post("/v1/personas", json=body)
    assert response.status_code == 201, response.text
    persona: dict[str, Any] = response.json()
    return persona


async def demo_persona(gateway: Gateway, name: str = "Reminders", **body: Any) -> dict[str, Any]:
    """A published persona whose agent runs the demo appointment-reminder pathway."""
    return await create_persona(
        gateway,
        name=name,
        agent={"kind": "flow", "pathway": load_demo_pathway()},
        publish=True,
        **body,
    )


async def text_in(gateway: Gateway, person: str, body: str, to: str = OURS) -> dict[str, Any]:
    """A text from ``person`` to our number through the simulator; the inbound message."""
    response = await gateway.client.post(
        "/v1/simulator/inbound", json={"from": person, "to": to, "body": body}
    )
    assert response.status_code == 202, response.text
    message: dict[str, Any] = response.json()
    return message


def webhook_agent(url: str) -> dict[str, Any]:
    """Persona settings for a customer's webhook agent at ``url``."""
    return {"kind": "webhook", "url": url, "secret": SECRET}


async def send_with_webhook_agent(
    gateway: Gateway, person: str, url: str, body: str = "Hi"
) -> dict[str, Any]:
    """Text ``person`` in a conversation run by the webhook agent at ``url``; the message."""
    response = await gateway.client.post(
        "/v1/messages",
        json={"to": person, "body": body, "conversation": {"persona_settings": webhook_agent(url)}},
    )
    assert response.status_code == 202, response.text
    message: dict[str, Any] = response.json()
    return message


async def default_to_webhook_agent(gateway: Gateway, url: str) -> None:
    """Make the webhook agent at ``url`` the project's default for new conversations."""
    defaults = {"conversation": {"persona_settings": webhook_agent(url)}}
    patched = await gateway.client.patch("/v1/project", json={"settings": defaults})
    assert patched.status_code == 200, patched.text
    gateway.app.state.agentsms.key_cache.clear()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log to stderr."""

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a real socket on 127.0.0.1; yields ``http://127.0.0.1:<port>``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class AgentServer:
    """What the local agent was sent, and how it answers."""

    def __init__(self) -> None:
        self.status = 200
        self.turns: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.answer: dict[str, Any] | None = None  # instead of 're: <last text>'


@contextmanager
def agent_server() -> Iterator[tuple[AgentServer, str]]:
    """A customer's agent: answers each turn with 're: <last person text>'."""
    state = AgentServer()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            with state.lock:
                state.turns.append(body)
                status = state.status
            people = [h["text"] for h in body["history"] if h["role"] == "person"]
            answer = state.answer or {"reply": f"re: {people[-1]}" if people else "opening"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serve_on_loopback(Handler) as base:
        yield state, f"{base}/agent"


@asynccontextmanager
async def loopback_gateway(
    gateway: Gateway, name: str, **overrides: object
) -> AsyncIterator[Gateway]:
    """A gateway on the same database that may call loopback URLs (local test servers)."""
    settings = settings_for(gateway.settings.database_url, allow_insecure_urls=True, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app), open_gateway(app, name) as opened:
        yield opened


def insecure_gateway(gateway: Gateway) -> AbstractAsyncContextManager[Gateway]:
    """A gateway that may call the local agent server and tries a failing agent three times."""
    return loopback_gateway(gateway, "agents", agent_max_attempts=3)


async def script_replies(gateway: Gateway, person: str, *replies: str) -> None:
    """The simulated ``person`` answers our texts with ``replies``, one each, at once."""
    response = await gateway.client.put(
        f"/v1/simulator/people/{person}", json={"replies": list(replies), "delay_seconds": 0}
    )
    assert response.status_code == 200, response.text


RESCHEDULE = "Can we move it to Thursday at 3pm?"
REMINDED = {"name": "Ana", "time": "on Tue Dec 2 at 3 PM"}


async def start_reminder(gateway: Gateway, person: str, persona_id: str) -> dict[str, Any]:
    """Open a demo-pathway conversation reminding Ana (``REMINDED``) of her appointment; the
    simulated ``person`` answers it with ``RESCHEDULE``. The opening message (202)."""
    await script_replies(gateway, person, RESCHEDULE)
    response = await gateway.client.post(
        "/v1/messages",
        json={"to": person, "conversation": {"persona_id": persona_id, "metadata": REMINDED}},
    )
    assert response.status_code == 202, response.text
    message: dict[str, Any] = response.json()
    return message
