"""One outbox: the same invalid send gets the same field errors through every surface.

Each case is one invalid spec in the outbox's own terms, with the field errors the outbox
gives it. Each surface sends it in its own request shape (the native single send and
batch, the five vendor shapes, the dashboard's compose forms) and its answer must name
exactly those errors, renamed to its vocabulary (see docs/COMPAT.md). A surface whose
request cannot express a case (no media field, no schedule, a sender given by id) leaves
that case out: ``SURFACES`` says which cases each one carries.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentsms.api.compat._common import agent_writes
from agentsms.app import create_app
from agentsms.core.sending import EMPTY_BODY
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for
from tests.integration.dashboard_helpers import field_error, signed_in
from tests.integration.helpers import jobs_for, message_rows

AGENT = "+14155550100"  # the gateway's simulator number
PERSON = "+14155552671"
LIMIT = 3  # recipients per batch in this app
ATTEMPTS = 5  # AGENTSMS_JOB_MAX_ATTEMPTS of this app (the default is 8)


@dataclass(frozen=True)
class Case:
    """A send as the outbox sees it: changes to a valid one, and the errors it gets."""

    changes: dict[str, Any]
    errors: dict[str, str]

    @property
    def send(self) -> dict[str, Any]:
        """The send: ``to``, ``body``, ``from``, ``media_urls``, ``send_at``, ``count``."""
        return {"to": PERSON, "body": "hello", "from": AGENT, "count": 1, **self.changes}


CASES = {
    "bad_to": Case({"to": "+1555"}, {"to": "too short for US"}),
    "empty_body": Case({"body": ""}, {"body": EMPTY_BODY}),
    "long_body": Case({"body": "x" * 1601}, {"body": "is 1601 characters; the limit is 1600"}),
    "bad_media": Case(
        {"media_urls": ["https://127.0.0.1/a.png"]},
        {"media_urls[0]": "127.0.0.1 is a loopback address"},
    ),
    "too_many": Case({"count": LIMIT + 1}, {"recipients": f"at most {LIMIT} per request, got 4"}),
    "bad_send_at": Case(
        {"send_at": "2100-01-02T00:00:00Z"}, {"send_at": "must not be after 2100-01-01"}
    ),
    "unknown_sender": Case(
        {"from": "+14155559999"}, {"from": "is not a number in this project's sender pool"}
    ),
}
SINGLE = ("bad_to", "empty_body", "long_body", "bad_media", "bad_send_at", "unknown_sender")


def _field_message(text: str) -> dict[str, str]:
    """``"field: message"`` as ``{field: message}``."""
    name, _, message = text.partition(": ")
    return {name: message}


# -- surfaces ---------------------------------------------------------------------------------

Sender = Callable[[Gateway, dict[str, Any]], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Surface:
    """One way in: how it sends, what it calls our fields, and the cases it can express."""

    send: Sender
    cases: tuple[str, ...]
    fields: dict[str, str] = field(default_factory=dict)
    batch: bool = False
    """Per-recipient fields are the first recipient's (``recipients[0].to``)."""
    message: Callable[[str], str] = lambda text: text

    def expected(self, case: Case) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, text in case.errors.items():
            ours = f"recipients[0].{name}" if self.batch and name != "recipients" else name
            found[self.fields.get(ours, ours)] = self.message(text)
        return found


def _client(gw: Gateway, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gw.app), base_url="http://testserver", **options
    )


async def native_single(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    payload = {k: send[k] for k in ("to", "body", "from", "media_urls", "send_at") if k in send}
    response = await gw.client.post("/v1/messages", json=payload)
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


async def native_batch(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    payload = {k: send[k] for k in ("body", "from", "media_urls", "send_at") if k in send}
    payload["recipients"] = [send["to"]] * send["count"]
    response = await gw.client.post("/v1/batches", json=payload)
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


async def agentphone(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    created = await gw.client.post(
        "/v1/personas",
        json={"name": "A", "agent": {"kind": "llm", "model": "m"}, "publish": True},
    )
    assert created.status_code == 201, created.text
    payload = {"to_number": send["to"], "body": send["body"], "agent_id": created.json()["id"]}
    if "media_urls" in send:
        payload["media_urls"] = send["media_urls"]
    async with _client(gw, headers={"Authorization": f"Bearer {gw.api_key}"}) as client:
        response = await client.post("/compat/agentphone/v1/messages", json=payload)
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["error"]["details"]}


async def bland(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    payload = {"user_number": send["to"], "agent_number": send["from"]}
    payload["agent_message"] = send["body"]
    async with _client(gw, headers={"authorization": gw.api_key}) as client:
        response = await client.post("/compat/bland/v1/sms/send", json=payload)
    assert response.status_code == 400, response.text
    found: dict[str, str] = {}
    for error in response.json()["errors"]:
        found.update(_field_message(error["message"]))
    return found


async def polyai(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    payload = {"user_number": send["to"], "agent_number": send["from"], "message": send["body"]}
    headers = {"X-PolyAi-Auth-Token": gw.api_key, "X-TOKEN-ID": gw.project_id}
    async with _client(gw, headers=headers) as client:
        response = await client.post("/compat/polyai/v1/outbound-sms", json=payload)
    assert response.status_code == 400, response.text
    return _field_message(response.json()["detail"])


async def vida(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    payload = {"targets": [send["to"]] * send["count"], "content": send["body"]}
    async with _client(gw, params={"token": gw.api_key}) as client:
        response = await client.post("/compat/vida/api/v2/agent/outboundSms", json=payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    return _field_message(body["message"])


async def telegent(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    payload: dict[str, Any] = {
        "From": send["from"],
        "To": [{"Number": send["to"]}] * send["count"],
        "Body": send["body"],
    }
    if "media_urls" in send:
        payload["MmsMedia"] = [{"MediaUrl": url} for url in send["media_urls"]]
    async with _client(gw) as client:
        token = await client.post(
            "/compat/telegent/v1.0/oauth2/tokens",
            json={
                "AccountKey": gw.project_id,
                "AccountSecret": gw.api_key,
                "ApiEndpoint": "https://api.telegent.com",
            },
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        response = await client.post(
            "/compat/telegent/v1.0/message/outbound", json=payload, headers=headers
        )
    assert response.status_code == 400, response.text
    message = response.json()["Message"]
    assert message.startswith("Bad request: "), message
    assert message.endswith("."), message
    return _field_message(message.removeprefix("Bad request: ").removesuffix("."))


def _shown_errors(page: str) -> dict[str, str]:
    names = re.findall(r'<p class="field-error" id="([^"]+)-error"', page)
    return {name: html.unescape(field_error(page, name) or "") for name in names}


async def dashboard_message(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    form = {"to": send["to"], "body": send["body"], "from": send["from"]}
    form["send_at"] = send.get("send_at", "").removesuffix("Z")
    async with signed_in(gw) as person:
        await person.get("/dashboard/compose")
        response = await person.post("/dashboard/compose/message", form)
    assert response.status_code == 422, response.text
    return _shown_errors(response.text)


async def dashboard_csv(gw: Gateway, send: dict[str, Any]) -> dict[str, str]:
    csv_text = "to\n" + "".join(f"{send['to'][:-1]}{i}\n" for i in range(send["count"]))
    form = {"csv_text": csv_text, "body": send["body"], "from": send["from"]}
    async with signed_in(gw) as person:
        await person.get("/dashboard/compose?mode=csv")
        response = await person.post("/dashboard/compose/batch", form)
    assert response.status_code == 422, response.text
    return _shown_errors(response.text)


SURFACES = {
    "native_single": Surface(native_single, SINGLE),
    "native_batch": Surface(native_batch, (*SINGLE, "too_many"), batch=True),
    "agentphone": Surface(
        agentphone,
        # The sender is a number's id; agent_id names an agent, which writes an empty body.
        ("bad_to", "long_body", "bad_media"),
        {"to": "to_number"},
    ),
    "bland": Surface(
        bland,
        ("bad_to", "empty_body", "long_body", "unknown_sender"),
        {"to": "user_number", "from": "agent_number", "body": "agent_message"},
        message=agent_writes,
    ),
    "polyai": Surface(
        polyai,
        ("bad_to", "empty_body", "long_body", "unknown_sender"),
        {"to": "user_number", "from": "agent_number", "body": "message"},
        message=agent_writes,
    ),
    "vida": Surface(
        vida,
        ("bad_to", "empty_body", "long_body", "too_many"),  # the agent's number sends
        {
            "recipients[0].to": "targets[0].target",
            "recipients[0].body": "targets[0].content",
            "recipients": "targets",
        },
        batch=True,
    ),
    "telegent": Surface(
        telegent,
        ("bad_to", "empty_body", "long_body", "bad_media", "too_many", "unknown_sender"),
        {
            "recipients[0].to": "To[0].Number",
            "recipients[0].body": "Body",
            "recipients[0].from": "From",
            "recipients[0].media_urls[0]": "MmsMedia[0].MediaUrl",
            "recipients": "To",
        },
        batch=True,
    ),
    "dashboard_message": Surface(
        dashboard_message, ("bad_to", "empty_body", "long_body", "bad_send_at", "unknown_sender")
    ),
    "dashboard_csv": Surface(dashboard_csv, ("too_many",), {"recipients": "file"}),
}


@pytest.fixture(scope="module")
async def outbox_app(backend_url: str) -> AsyncIterator[FastAPI]:
    """As deployed (media URLs inside the network refused), with small batches."""
    settings = settings_for(
        backend_url,
        max_batch_recipients=LIMIT,
        job_max_attempts=ATTEMPTS,
        allow_insecure_urls=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def gw(outbox_app: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(outbox_app, "one outbox") as opened:
        yield opened


@pytest.mark.parametrize(
    ("surface", "case"),
    [(surface, case) for surface, way in SURFACES.items() for case in way.cases],
)
async def test_the_same_invalid_send_gets_the_same_field_errors_through_every_surface(
    gw: Gateway, surface: str, case: str
) -> None:
    way, spec = SURFACES[surface], CASES[case]
    assert await way.send(gw, spec.send) == way.expected(spec)
    assert await message_rows(gw) == []


def test_every_case_goes_through_the_native_api_and_a_vendor_shape() -> None:
    for name in CASES:
        carried = {surface for surface, way in SURFACES.items() if name in way.cases}
        assert {"native_single", "native_batch"} & carried, name
        assert carried - {"native_single", "native_batch"}, name


async def test_the_compose_preview_takes_what_a_send_takes_by_the_projects_settings(
    gw: Gateway,
) -> None:
    """A contact's username (a project setting) is as good in the preview as in a send."""
    patched = await gw.client.patch(
        "/v1/project", json={"settings": {"contacts": {"ana_b": "+14155553001"}}}
    )
    assert patched.status_code == 200, patched.text
    form = {"csv_text": "to\nana_b\nnobody_here\n", "body": "Hi", "from": AGENT}
    async with signed_in(gw) as person:
        await person.get("/dashboard/compose?mode=csv")
        preview = await person.post("/dashboard/compose/preview", form)
        assert preview.status_code == 200, preview.text
        page = html.unescape(preview.text)
        assert "+14155553001" in page
        assert page.count("is neither a phone number nor a username") == 1
        sent = await person.post("/dashboard/compose/batch", {**form, "csv_text": "to\nana_b\n"})
    assert sent.status_code == 303, sent.text
    assert [row["to_number"] for row in await message_rows(gw)] == ["+14155553001"]


async def test_every_send_job_gets_the_configured_attempts_compliance_replies_too(
    gw: Gateway,
) -> None:
    sent = await gw.client.post("/v1/messages", json={"to": PERSON, "body": "Hi", "from": AGENT})
    assert sent.status_code == 202, sent.text
    stop = await gw.client.post(
        "/v1/simulator/inbound", json={"from": PERSON, "to": AGENT, "body": "STOP"}
    )
    assert stop.status_code == 202, stop.text
    outbound = [row for row in await message_rows(gw) if row["direction"] == "outbound"]
    assert [row["purpose"] for row in outbound] == ["api", "compliance"]
    for row in outbound:
        assert [job["max_attempts"] for job in await jobs_for(gw, row["id"])] == [ATTEMPTS]
