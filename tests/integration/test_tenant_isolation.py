"""The cross-project sweep: every route of ``app.routes`` (native ``/v1``, the five
``/compat/<vendor>`` surfaces with each vendor's own credentials, the dashboard with a
signed-in session, and the MCP tools at ``/mcp`` with B's key) is called with project B's
credentials and project A's ids.

Routes with path parameters must answer 403/404 (the vendor's own error body on compat
surfaces), exactly as they answer for an id that does not exist; no answer to B may contain
any of A's ids, keys, phone numbers or texts; and nothing of A's changes. The routes are read
from the app, so a route added later is swept too, and one the sweep cannot fill (an unknown
path parameter, a body it does not know) fails it loudly until it is taught.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from agentsms.agents import load_demo_pathway
from agentsms.app import create_app
from agentsms.runtime import build_worker
from tests.conftest import test_settings as settings_for
from tests.integration.dashboard_helpers import Browser
from tests.integration.tenant_seed import (
    UNREACHABLE,
    Tenant,
    open_tenant,
    seed,
    sign_in,
    snapshot,
)

B_PERSON = "+14155557401"
B_OWN = "B own text 5vx"

# Path parameter → the key of A's id in ``Tenant.ids`` (or a literal value, after "=").
PATH_VALUES = {
    "message_id": "scheduled_id",
    "task_id": "scheduled_id",
    "batch_id": "batch_id",
    "conversation_id": "conversation_id",
    "number_id": "number_id",
    "key_id": "key_id",
    "template_id": "template_id",
    "endpoint_id": "endpoint_id",
    "delivery_id": "delivery_id",
    "persona_id": "persona_id",
    "pathway_id": "pathway_id",
    "account_id": "account_id",
    "token": "media_token",
    "number": "person",
    "phone_number": "opted_out",
    "agent_id": "persona_id",
    "contact_id": "contact_id",
    "provider": "=twilio",
    "version": "=1",
    "rest": "=x",
}
# Query parameters that name something of a project: filled with A's.
QUERY_VALUES = {
    "batch_id": "batch_id",
    "batch": "batch_id",
    "conversation_id": "conversation_id",
    "conversation": "conversation_id",
    "message": "message_id",
    "persona_id": "persona_id",
    "to": "person",
    "user_number": "person",
    "from": "sender",
    "agent_number": "sender",
    "number": "sender",
    "phone_number": "opted_out",
    "after": "=0",
}
# Query parameters a compat route reads by hand (not declared to FastAPI).
EXTRA_QUERY = {("GET", "/compat/telegent/v1.0/message/details"): {"MessageId": "telegent_id"}}

# Path parameters that are keys inside the caller's own project, not ids of A's: B acting on
# ``/v1/simulator/people/+1…`` acts on B's own scripted person with that number.
CALLERS_OWN = {"number"}
# Capability URLs: the unguessable token is the credential (carriers fetch media with it).
CAPABILITIES = {"/media/{token}"}
# Answered to anyone, or by a carrier's signature rather than a project's credentials.
UNCREDENTIALED = (
    "/callbacks/",
    "/media/",
    "/openapi.json",
    "/docs",
    "/redoc",
    "/healthz",
    "/readyz",
    "/metrics",
)
# Server-sent event streams (GET): read for a moment, then disconnected.
MCP = "/mcp"
STREAMS = {"/v1/events/stream", "/dashboard/stream", MCP}
SURFACES = ("/v1/", "/compat/", "/dashboard", MCP)
# Voice, which agentsms does not carry: AgentPhone's calls and voices answer 501 to every
# caller and every id alike (the sweep still checks that A's ids answer as made-up ones do).
NOT_CARRIED = {
    "/compat/agentphone/v1/calls",
    "/compat/agentphone/v1/calls/{rest:path}",
    "/compat/agentphone/v1/agents/voices",
    "/compat/agentphone/v1/agents/{agent_id}/calls",
    "/compat/agentphone/v1/numbers/{number_id}/calls",
}
# The vendor surfaces ``Caller.auth`` knows the credentials of.
VENDORS = {"telegent", "bland", "agentphone", "polyai", "vida"}
# Listings that must show B's own message (proof that B's credentials were accepted).
OWN_LISTINGS = (
    "/v1/messages",
    "/v1/events/stream",
    "/dashboard/messages",
    "/dashboard/stream",
    "/compat/bland/v1/sms/conversations",
)

# Tables where project A must have rows for the sweep to mean anything.
SEEDED = (
    "messages",
    "conversations",
    "batches",
    "numbers",
    "api_keys",
    "personas",
    "pathways",
    "message_templates",
    "media",
    "webhook_endpoints",
    "webhook_deliveries",
    "provider_accounts",
    "simulator_people",
    "message_reactions",
    "idempotency_keys",
    "dispositions",
    "extraction_schemas",
    "message_events",
    "jobs",
    "optouts",
    "contacts",
    "llm_credentials",
)

Ids = dict[str, str]
Probe = dict[str, Any]

MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


def _tool(name: str, expect: str, **arguments: str) -> Probe:
    """A JSON-RPC call of the MCP tool ``name``; ``expect`` must appear in the answer."""
    call = {"name": name, "arguments": arguments}
    return {
        "json": {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call},
        "headers": MCP_ACCEPT,
        "expect": expect,
    }


NOT_FOUND = '"code":"not_found"'


# Bodies: what each route is sent (a list: several probes). A route that takes a body and is
# not here gets ``{}``; on a route with path parameters that answers 4xx other than 403/404,
# so the sweep fails until the route's body is added here.
BODIES: dict[tuple[str, str], Callable[[Ids], list[Probe]]] = {
    ("POST", "/v1/messages/{message_id}/reactions"): lambda a: [{"json": {"reaction": "like"}}],
    ("PUT", "/v1/simulator/people/{number}"): lambda a: [{"json": {"replies": ["B"]}}],
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): lambda a: [{"json": {"description": "B"}}],
    ("POST", "/v1/conversations/{conversation_id}/messages"): lambda a: [{"json": {"body": "B"}}],
    ("POST", "/v1/conversations/{conversation_id}/end"): lambda a: [{"json": {"outcome": "b"}}],
    ("PATCH", "/v1/conversations/{conversation_id}"): lambda a: [{"json": {"context": "B"}}],
    ("POST", "/v1/conversations/{conversation_id}/agent"): lambda a: [{"json": {"paused": True}}],
    ("POST", "/v1/personas/{persona_id}/versions"): lambda a: [
        {"json": {"agent": {"kind": "flow", "pathway": load_demo_pathway()}}}
    ],
    ("POST", "/v1/pathways/{pathway_id}/versions"): lambda a: [
        {"json": {"document": load_demo_pathway()}}
    ],
    ("POST", "/callbacks/{provider}/{account_id}"): lambda a: [
        {"data": {"From": B_PERSON, "To": a["sender"], "Body": "B", "MessageSid": "SMb"}}
    ],
    ("POST", "/compat/agentphone/v1/messages/{message_id}/reactions"): lambda a: [
        {"json": {"reaction": "like"}}
    ],
    ("POST", "/compat/agentphone/v1/agents/{agent_id}/numbers"): lambda a: [
        {"json": {"numberId": a["number_id"]}}
    ],
    ("POST", "/compat/agentphone/v1/agents/{agent_id}/webhook"): lambda a: [
        {"json": {"url": UNREACHABLE + "/b"}}
    ],
    ("PATCH", "/compat/agentphone/v1/conversations/{conversation_id}"): lambda a: [
        {"json": {"metadata": {"b": 1}}}
    ],
    ("PATCH", "/v1/contacts/{contact_id}"): lambda a: [
        {"json": {"timezone": "Asia/Tokyo"}},
        {"json": {"phone_number": B_PERSON, "name": "B"}},
    ],
    ("POST", "/dashboard/conversations/{conversation_id}/reply"): lambda a: [
        {"data": {"body": "B"}}
    ],
    ("POST", "/dashboard/conversations/{conversation_id}/end"): lambda a: [
        {"data": {"outcome": "b"}}
    ],
    ("POST", "/dashboard/pathways/{pathway_id}/versions"): lambda a: [
        {"data": {"document": json.dumps(load_demo_pathway())}}
    ],
    ("POST", "/dashboard/personas/{persona_id}/publish"): lambda a: [{"data": {"version": "1"}}],
    # Routes without path parameters, given A's ids inside the body.
    ("POST", "/v1/messages"): lambda a: [
        {
            "json": {"to": "+14155557301", "body": "tenant A private body kq3v"},
            "headers": {"Idempotency-Key": "tenant-a-idem"},
        },
        {"json": {"to": B_PERSON, "template_id": "HXtenantA7w"}},
        {"json": {"to": B_PERSON, "template_id": a["template_id"]}},
        {"json": {"to": B_PERSON, "body": "B", "from": a["sender"]}},
        {"json": {"to": B_PERSON, "body": "B", "conversation": {"persona_id": a["persona_id"]}}},
        {"json": {"to": B_PERSON, "body": "B", "reply_to_message_id": a["message_id"]}},
    ],
    ("POST", "/v1/batches"): lambda a: [
        {"json": {"recipients": [B_PERSON], "body": "B", "from": a["sender"]}}
    ],
    ("POST", "/v1/numbers"): lambda a: [
        {"json": {"number": "+14155557499", "provider_account_id": a["account_id"]}}
    ],
    ("POST", "/v1/personas"): lambda a: [{"json": {"name": "B", "pathway_id": a["pathway_id"]}}],
    ("POST", "/v1/contacts"): lambda a: [
        {"json": {"phone_number": B_PERSON, "name": "B", "timezone": "Asia/Tokyo"}}
    ],
    ("POST", "/v1/simulator/reactions"): lambda a: [
        {"json": {"message_id": a["message_id"], "reaction": "like"}}
    ],
    ("POST", "/v1/simulator/inbound"): lambda a: [
        {"json": {"from": a["person"], "to": a["sender"], "body": "B"}}
    ],
    ("POST", "/compat/agentphone/v1/messages"): lambda a: [
        {"json": {"agent_id": a["persona_id"], "to_number": B_PERSON, "body": "B"}},
        {
            "json": {
                "agent_id": "x",
                "to_number": B_PERSON,
                "body": "B",
                "number_id": a["number_id"],
            }
        },
    ],
    ("POST", "/compat/bland/v1/sms/send"): lambda a: [
        {"json": {"user_number": B_PERSON, "agent_number": a["sender"], "agent_message": "B"}}
    ],
    ("POST", "/compat/vida/api/v2/agent/outboundSms"): lambda a: [
        {"json": {"target": a["person"], "content": "B"}}
    ],
    ("POST", "/compat/telegent/v1.0/oauth2/tokens"): lambda a: [
        {"json": {"AccountKey": a["project_id"], "AccountSecret": a["b_key"]}}
    ],
    ("POST", "/compat/telegent/v1.0/message/outbound"): lambda a: [
        {"json": {"To": [{"Number": B_PERSON}], "From": a["sender"], "Body": "B"}}
    ],
    ("POST", "/compat/polyai/v1/outbound-sms"): lambda a: [
        {"json": {"user_number": B_PERSON, "agent_number": a["sender"], "message": "B"}},
        {
            "json": {"user_number": B_PERSON, "agent_number": a["sender"], "message": "B"},
            "headers": {"x-token-id": a["project_id"]},
        },
    ],
    ("POST", "/dashboard/compose/message"): lambda a: [
        {"data": {"to": B_PERSON, "from": a["sender"], "body": "B"}}
    ],
    ("POST", "/dashboard/personas"): lambda a: [
        {"data": {"name": "B", "pathway_id": a["pathway_id"]}}
    ],
    ("POST", "/v1/opt-outs/import"): lambda a: [
        {"content": f"phone_number\n{B_PERSON}\n", "headers": {"Content-Type": "text/csv"}}
    ],
    # The MCP tools, with A's ids; B's own message proves B's key was taken. (Listings are
    # swept as GETs of /v1, before B's own sends to A's people could appear in them.)
    ("POST", MCP): lambda a: [
        _tool("get_message", B_OWN, message_id=a["b_message"]),
        _tool("get_message", NOT_FOUND, message_id=a["message_id"]),
        _tool("get_message", NOT_FOUND, message_id=a["scheduled_id"]),
        _tool("get_conversation", NOT_FOUND, conversation_id=a["conversation_id"]),
        _tool("reply", NOT_FOUND, conversation_id=a["conversation_id"], body="B"),
        _tool("end_conversation", NOT_FOUND, conversation_id=a["conversation_id"]),
        _tool("send_message", '"isError":true', to=B_PERSON, body="B", from_number=a["sender"]),
        _tool("send_message", '"isError":true', to=B_PERSON, body="B", persona=a["persona_id"]),
        _tool("list_numbers", '"numbers"'),
    ],
}


@dataclass(frozen=True)
class Call:
    """One route and method of the app."""

    method: str
    path: str
    route: APIRoute | None

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::\w+)?}", self.path)

    def filled(self, values: dict[str, str]) -> str:
        """The path with its parameters (``{rest:path}`` too) replaced by ``values``."""
        return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], self.path)

    @property
    def order(self) -> tuple[int, str]:
        """Reads first, then changes, deletions, and signing in or out last."""
        rank = {"GET": 0, "HEAD": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}[self.method]
        return (3 if self.path.startswith("/dashboard/log") else rank, self.path)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def routes_of(app: FastAPI) -> list[Call]:
    """Every (method, path) the app answers, from ``app.routes``."""
    calls: list[Call] = []
    for context in iter_route_contexts(app.routes):
        path, methods = context.path, context.methods
        if not path or not methods:  # mounts of static files
            continue
        original = context.original_route
        route = original if isinstance(original, APIRoute) else None
        calls += [Call(m, path, route) for m in sorted(methods) if m != "HEAD"]
    return sorted(calls, key=lambda call: call.order)


def _value(spec: str, a: Ids) -> str:
    return spec[1:] if spec.startswith("=") else a[spec]


def _fabricated(value: str) -> str:
    """An id of the same shape that names nothing."""
    if value.startswith("+"):
        return "+14155557999"
    head, sep, tail = value.rpartition("_") if "_" in value else ("", "", value)
    return head + sep + re.sub(r"[0-9A-Za-z]", "0", tail)


@dataclass
class Caller:
    """Project B, as each surface authenticates it."""

    app: FastAPI
    key: str
    project_id: str
    api: httpx.AsyncClient
    browser: Browser
    telegent_token: str
    own_message: str
    ids: Ids

    def auth(self, path: str) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and query parameters carrying B's credentials on ``path``."""
        bearer = {"Authorization": f"Bearer {self.key}"}
        if path.startswith("/compat/telegent/"):
            return {"Authorization": f"Bearer {self.telegent_token}"}, {}
        if path.startswith("/compat/bland/"):
            return {"authorization": self.key}, {}
        if path.startswith("/compat/agentphone/"):
            return bearer, {}
        if path.startswith("/compat/polyai/"):
            return {"x-polyai-auth-token": self.key, "x-token-id": self.project_id}, {}
        if path.startswith("/compat/vida/"):
            return {}, {"token": self.key}
        if path.startswith("/compat/"):
            raise AssertionError(f"the sweep does not know how {path} authenticates: teach it")
        if path.startswith("/dashboard"):
            return {}, {}
        return bearer, {}

    async def call(self, method: str, path: str, query: dict[str, str], probe: Probe) -> Answer:
        headers, auth_query = self.auth(path)
        headers = headers | probe.get("headers", {})
        query = query | auth_query
        if method == "GET" and path.split("?")[0] in STREAMS:
            cookies = "; ".join(f"{k}={v}" for k, v in self.browser.http.cookies.items())
            return await read_stream(self.app, path, query, headers | {"cookie": cookies})
        if path.startswith("/dashboard") and method != "GET":
            request = self.browser.post(path, probe.get("data"), params=query)
        elif path.startswith("/dashboard"):
            request = self.browser.get(path, params=query)
        else:
            extra = {k: v for k, v in probe.items() if k in ("json", "data", "content")}
            if method in ("POST", "PUT", "PATCH") and not extra:
                extra = {"json": {}}
            request = self.api.request(method, path, params=query, headers=headers, **extra)
        try:
            response = await asyncio.wait_for(request, 10)
        except TimeoutError:
            raise AssertionError(
                f"{method} {path} did not answer: a stream? add it to STREAMS"
            ) from None
        shown = response.text + " " + " ".join(response.headers.values())
        return Answer(response.status_code, shown)


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def _excerpt(answer: Answer) -> str:
    return " ".join(answer.text.split())[:300]


async def read_stream(
    app: FastAPI, path: str, query: dict[str, str], headers: dict[str, str]
) -> Answer:
    """What a server-sent event stream sends in a quarter second (history replays from 0).

    Like every ASGI server, ``receive`` first hands over the (empty) request body, then
    waits until the client goes away."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": urlencode(query).encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    gone = asyncio.Event()
    status, chunks = [0], [b""]
    request = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if request:
            return request.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.sleep(0.25)
    gone.set()
    try:
        await asyncio.wait_for(task, 5)
    except TimeoutError:
        task.cancel()
    return Answer(status[0], b"".join(chunks).decode(errors="replace"))


def _supplied(path: str, query: dict[str, str], probe: Probe) -> set[str]:
    """Every string B itself put in the request (echoing it back is no leak)."""
    found = set(path.split("/")) | set(query.values())

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(probe)
    return found


def _leaks(answer: Answer, secrets: set[str], supplied: set[str]) -> list[str]:
    return sorted(s for s in secrets - supplied if s and s in answer.text)


@pytest.fixture
async def tenants(backend_url: str) -> AsyncIterator[tuple[FastAPI, Tenant, Caller]]:
    app = create_app(settings_for(backend_url))
    async with app.router.lifespan_context(app):
        state = app.state.agentsms
        worker = build_worker(state.db, state.providers, state.settings, outbox=state.outbox)

        async def drain() -> None:
            for _ in range(20):
                if not await worker.run_once():
                    return

        a = await open_tenant(app, "tenant A", "+14155558801")
        b = await open_tenant(app, "tenant B", "+14155558802")
        await seed(app, a, drain)
        browser = await sign_in(app, b.api_key)
        token = await b.client.post(
            "/compat/telegent/v1.0/oauth2/tokens",
            json={"AccountKey": b.project_id, "AccountSecret": b.api_key},
        )
        assert token.status_code == 200, token.text
        own = await b.made("POST", "/v1/messages", json={"to": B_PERSON, "body": B_OWN})
        hook = await b.made("POST", "/v1/webhook-endpoints", json={"url": UNREACHABLE + "/b"})
        await drain()
        b_ids = {"endpoint_id": hook["id"]}
        caller = Caller(
            app, b.api_key, b.project_id, b.client, browser, token.json()["token"], own["id"], b_ids
        )
        try:
            yield app, a, caller
        finally:
            await browser.http.aclose()
            await a.client.aclose()
            await b.client.aclose()


def _query_for(call: Call, ids: Ids) -> dict[str, str]:
    names = [
        param.alias
        for dependant in (_dependants(call.route.dependant) if call.route else ())
        for param in dependant.query_params
    ]
    query = {n: _value(QUERY_VALUES[n], ids) for n in names if n in QUERY_VALUES}
    extra = EXTRA_QUERY.get((call.method, call.path), {})
    return query | {name: ids[key] for name, key in extra.items()}


def _takes_body(call: Call) -> bool:
    return call.route is not None and any(d.body_params for d in _dependants(call.route.dependant))


def unsweepable(call: Call) -> str | None:
    """Why the sweep cannot call this route with A's ids yet (it must be taught), if so."""
    where = f"{call.method} {call.path}"
    if not call.path.startswith(SURFACES + UNCREDENTIALED):
        return f"{where}: a surface the sweep does not know; teach it how B authenticates"
    if call.path.startswith("/compat/") and call.path.split("/")[2] not in VENDORS:
        return f"{where}: a vendor the sweep does not know; teach Caller.auth its credentials"
    unknown = [p for p in call.params if p not in PATH_VALUES]
    if unknown:
        return f"{where}: cannot fill path parameters {unknown}; add them to PATH_VALUES"
    if call.params and _takes_body(call) and (call.method, call.path) not in BODIES:
        return f"{where}: takes a body; add one to BODIES"
    return None


def test_a_route_the_sweep_cannot_fill_fails_it() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))

    @app.get("/v1/widgets/{widget_id}")
    async def widget(widget_id: str) -> dict[str, str]:
        return {"id": widget_id}

    @app.post("/v1/numbers/{number_id}/labels")
    async def label(number_id: str, body: dict[str, str]) -> dict[str, str]:
        return body

    @app.get("/v2/things")
    async def things() -> list[str]:
        return []

    @app.get("/compat/acme/v1/things")
    async def acme() -> list[str]:
        return []

    problems = {c.path: unsweepable(c) for c in routes_of(app)}
    assert "PATH_VALUES" in (problems["/v1/widgets/{widget_id}"] or "")
    assert "BODIES" in (problems["/v1/numbers/{number_id}/labels"] or "")
    assert "surface" in (problems["/v2/things"] or "")
    assert "vendor" in (problems["/compat/acme/v1/things"] or "")
    assert problems["/v1/messages/{message_id}"] is None


def _owned(call: Call) -> list[str]:
    """The path parameters that name something of a project's (not literals, not keys
    inside the caller's own project)."""
    return [p for p in call.params if p not in CALLERS_OWN and PATH_VALUES[p][0] != "="]


def _fillings(call: Call, a: Ids, b: Ids) -> list[dict[str, str]]:
    """The path parameters to try: all of A's; then, where a route names several things,
    each of B's own with the rest A's (B's endpoint with A's delivery, ...)."""
    first = {p: _value(PATH_VALUES[p], a) for p in call.params}
    owned = _owned(call)
    mixed = [
        first | {p: b[PATH_VALUES[p]]} for p in owned if len(owned) > 1 and PATH_VALUES[p] in b
    ]
    return [first, *mixed]


async def _judge(
    b: Caller,
    call: Call,
    values: dict[str, str],
    query: dict[str, str],
    probe: Probe,
    answer: Answer,
    secrets: set[str],
) -> list[str]:
    """What is wrong with B's ``answer`` to a route filled with ``values``."""
    path = call.filled(values)
    where = f"{call.method} {path} {probe}"
    wrong: list[str] = []
    not_carried = call.path in NOT_CARRIED and answer.status == 501
    if answer.status >= 500 and not not_carried:
        wrong.append(f"{where}: {answer.status} {_excerpt(answer)}")
    if "expect" in probe and probe["expect"] not in answer.text:
        wrong.append(f"{where}: {probe['expect']} is not in the answer: {_excerpt(answer)}")
    leaked = _leaks(answer, secrets, _supplied(path, query, probe))
    if leaked:
        wrong.append(f"{where}: B was shown A's {leaked}: {_excerpt(answer)}")
    owned = [p for p in _owned(call) if values[p] in secrets]
    if not owned or call.path in CAPABILITIES:
        return wrong
    if answer.status not in (403, 404) and not not_carried:
        wrong.append(f"{where}: {answer.status}, not 403/404: {_excerpt(answer)}")
    if call.path.startswith(UNCREDENTIALED):
        return wrong
    # The same answer as for ids that name nothing: no telling A's things exist.
    made_up = call.filled(values | {p: _fabricated(values[p]) for p in owned})
    control = await b.call(call.method, made_up, query, probe)
    if control.status != answer.status:
        wrong.append(f"{where}: {answer.status} for A's id but {control.status} for none")
    return wrong


async def test_project_b_never_reaches_project_a(
    tenants: tuple[FastAPI, Tenant, Caller],
) -> None:
    app, a, b = tenants
    ids = a.ids | {
        "sender": a.sender,
        "project_id": a.project_id,
        "b_key": b.key,
        "b_message": b.own_message,
    }
    before = await snapshot(app.state.agentsms.db, a)
    empty = [name for name in SEEDED if not before[name]]
    assert not empty, f"the seed left A without rows in {empty}"
    failures: list[str] = []
    shown_own: dict[str, bool] = {}
    swept = 0
    for call in routes_of(app):
        problem = unsweepable(call)
        if problem is not None:
            failures.append(problem)
            continue
        probes = BODIES.get((call.method, call.path), lambda _: [{}])(ids)
        filled = _query_for(call, ids)
        variants = [(filled, probe) for probe in probes]
        if filled and call.method == "GET":
            variants.insert(0, ({k: v for k, v in filled.items() if k == "after"}, {}))
        for values in _fillings(call, ids, b.ids):
            for query, probe in variants:
                swept += 1
                answer = await b.call(call.method, call.filled(values), query, probe)
                if call.method == "GET" and (not query or set(query) == {"after"}):
                    shown_own[call.path] = any(m in answer.text for m in (b.own_message, B_OWN))
                failures += await _judge(b, call, values, query, probe, answer, a.secrets)
    assert swept > 100
    # B's credentials worked: its own message shows where its messages are listed.
    for listing in OWN_LISTINGS:
        if not shown_own.get(listing):
            failures.append(f"GET {listing}: B's own message is not shown; did B sign in?")
    after = await snapshot(app.state.agentsms.db, a)
    changed = [name for name in before if before[name] != after.get(name)]
    if changed:
        failures.append(f"A's stored rows changed in {changed}")
    assert not failures, "\n".join(failures)
