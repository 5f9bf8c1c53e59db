"""Bad input never gives a 500 and never half-stores (issue 13): each input found live to
answer a plain-text 500 now gets a 422 naming the field (the vendor's own 4xx error body
under ``/compat``), and nothing of the refused request is stored; on every backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from agentsms.app import create_app
from agentsms.store import tables
from tests.conftest import Gateway
from tests.conftest import test_settings as settings_for
from tests.integration.dashboard_helpers import field_error, signed_in

TO = "+14155550123"
SENDER = "+14155550100"
TOO_BIG = str(2**64)

# (method, path, raw JSON text as a client sends it, the field the 422 names)
NATIVE_CASES = [
    ("POST", "/v1/messages", f'{{"to": "{TO}", "body": "hi \\ud800"}}', "body"),
    ("POST", "/v1/messages", f'{{"to": "{TO}", "body": "hi \\u0000"}}', "body"),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "metadata": {{"a": NaN}}}}',
        "metadata.a",
    ),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "metadata": {{"a": [1, -Infinity]}}}}',
        "metadata.a[1]",
    ),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "metadata": {{"\\ud800": 1}}}}',
        "metadata",
    ),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "metadata": {{"n": {TOO_BIG}}}}}',
        "metadata.n",
    ),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "validity_seconds": 1e308}}',
        "validity_seconds",
    ),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "validity_seconds": {TOO_BIG}}}',
        "validity_seconds",
    ),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "validity_seconds": 9223372036854775807}}',
        "validity_seconds",
    ),
    ("POST", "/v1/messages", f'{{"to": "{TO}", "body": "x", "send_at": 1e308}}', "send_at"),
    ("POST", "/v1/messages", f'{{"to": "{TO}", "body": "x", "send_at": -1e12}}', "send_at"),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "send_at": "9999-12-31T23:00:00-05:00"}}',
        "send_at",
    ),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "conversation": {{"timeout_seconds": 1e308}}}}',
        "conversation.timeout_seconds",
    ),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "conversation": {{"persona_id": 9223372036854775807}}}}',
        "conversation.persona_id",
    ),
    ("POST", "/v1/batches", f'{{"recipients": ["{TO}"], "body": "\\udfff"}}', "body"),
    (
        "POST",
        "/v1/messages",
        f'{{"to": "{TO}", "body": "x", "send_at": "9999-12-30T00:00:00Z", "validity_seconds": 60}}',
        "send_at",
    ),
    (
        "POST",
        "/v1/batches",
        f'{{"recipients": ["{TO}", "+14155550124"], "body": "x", '
        '"send_at": "9999-12-31T23:59:00Z", "spacing_seconds": 86400}',
        "recipients[1].send_at",
    ),
    (
        "POST",
        "/v1/batches",
        f'{{"recipients": [{{"to": "{TO}", "body": "a\\u0000b"}}]}}',
        "recipients[0].body",
    ),
    (
        "POST",
        "/v1/batches",
        f'{{"recipients": ["{TO}"], "body": "x", "spacing_seconds": 1e308}}',
        "spacing_seconds",
    ),
    (
        "POST",
        "/v1/batches",
        f'{{"recipients": ["{TO}"], "body": "x", "send_at": 1e308}}',
        "send_at",
    ),
    (
        "POST",
        "/v1/simulator/inbound",
        f'{{"from": "{TO}", "to": "{SENDER}", "body": "\\ud800"}}',
        "body",
    ),
    (
        "POST",
        "/v1/simulator/inbound",
        f'{{"from": "{TO}", "to": "{SENDER}", "body": "\\u0000"}}',
        "body",
    ),
    (
        "POST",
        "/v1/numbers",
        '{"number": "+14155550177", "price_per_segment": "1e30"}',
        "price_per_segment",
    ),
    (
        "POST",
        "/v1/numbers",
        '{"number": "+14155550177", "price_per_segment": "NaN"}',
        "price_per_segment",
    ),
    (
        "POST",
        "/v1/numbers",
        '{"number": "+14155550177", "throughput_mps": 1e309}',
        "throughput_mps",
    ),
    (
        "POST",
        "/v1/numbers",
        '{"number": "+14155550177", "throughput_mps": 1e300}',
        "throughput_mps",
    ),
    (
        "PATCH",
        "/v1/project",
        '{"settings": {"rate_limit_per_second": 9223372036854775807}}',
        "settings.rate_limit_per_second",
    ),
    ("PATCH", "/v1/project", '{"name": "a\\u0000b"}', "name"),
    ("GET", f"/v1/conversations?offset={TOO_BIG}", "", "offset"),
    ("GET", "/v1/conversations?offset=9223372036854775807", "", "offset"),
    ("GET", "/v1/conversations?persona_id=99999999999999999999999", "", None),
    ("GET", "/v1/messages?created_after=1e308", "", "created_after"),
    ("GET", f"/v1/messages?created_after={TOO_BIG}", "", "created_after"),
    ("GET", "/v1/messages?cursor=%00garbage", "", "cursor"),
    ("GET", "/v1/batches/batch_x/messages?cursor=%00", "", "cursor"),
    ("POST", "/v1/personas/99999999999/versions/99999999999/publish", "", "version"),
]


async def _stored(gateway: Gateway) -> dict[str, Any]:
    """What the project has stored: row counts and its settings."""
    counts: dict[str, Any] = {}
    async with gateway.db.read() as conn:
        for table in (
            tables.messages,
            tables.batches,
            tables.numbers,
            tables.conversations,
            tables.jobs,
        ):
            query = select(func.count()).select_from(table)
            if "project_id" in table.c:
                query = query.where(table.c.project_id == gateway.project_id)
            counts[table.name] = (await conn.execute(query)).scalar_one()
        project = tables.projects
        row = (
            await conn.execute(
                select(project.c.name, project.c.settings).where(project.c.id == gateway.project_id)
            )
        ).one()
    counts["project"] = (row.name, row.settings)
    return counts


def _problem_fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    body = response.json()
    assert body["status"] == response.status_code
    return [error["field"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("method", "path", "raw", "field"),
    NATIVE_CASES,
    ids=[f"{m} {p.split('?')[0]} {f}" for m, p, _, f in NATIVE_CASES],
)
async def test_live_found_bad_input_is_refused_naming_the_field(
    gateway: Gateway, method: str, path: str, raw: str, field: str | None
) -> None:
    before = await _stored(gateway)
    response = await gateway.client.request(
        method,
        path,
        content=raw.encode() if raw else None,
        headers={"Content-Type": "application/json"} if raw else {},
    )
    if field is None:  # a lookup that cannot match: an empty page, not a failure
        assert response.status_code == 200, response.text
        assert response.json()["data"] == []
    else:
        assert response.status_code == 422, response.text
        assert field in _problem_fields(response)
    assert await _stored(gateway) == before


async def test_metadata_is_bounded_in_size(gateway: Gateway) -> None:
    before = await _stored(gateway)
    big = {"note": "x" * 16_400}
    single = await gateway.client.post(
        "/v1/messages", json={"to": TO, "body": "x", "metadata": big}
    )
    assert single.status_code == 422
    assert _problem_fields(single) == ["metadata"]
    assert "the limit is 16384" in single.json()["detail"]
    batch = await gateway.client.post(
        "/v1/batches",
        json={"recipients": [TO, {"to": TO, "metadata": big}], "body": "x"},
    )
    assert batch.status_code == 422
    assert _problem_fields(batch) == ["recipients[1].metadata"]
    shared = await gateway.client.post(
        "/v1/batches", json={"recipients": [TO], "body": "x", "metadata": big}
    )
    assert shared.status_code == 422
    assert _problem_fields(shared) == ["metadata"]
    assert await _stored(gateway) == before
    in_conversation = await gateway.client.post(
        "/v1/messages", json={"to": TO, "body": "x", "conversation": {"metadata": big}}
    )
    assert in_conversation.status_code == 422
    assert _problem_fields(in_conversation) == ["conversation.metadata"]
    assert await _stored(gateway) == before
    fits = await gateway.client.post(
        "/v1/messages", json={"to": TO, "body": "x", "metadata": {"note": "x" * 16_000}}
    )
    assert fits.status_code == 202, fits.text
    conversation = f"/v1/conversations/{fits.json()['conversation_id']}"
    half = {"a": "x" * 9_000}
    assert (await gateway.client.patch(conversation, json={"metadata": half})).status_code == 200
    grown = await gateway.client.patch(conversation, json={"metadata": {"b": "x" * 9_000}})
    assert grown.status_code == 422
    assert _problem_fields(grown) == ["metadata"]
    assert (await gateway.client.get(conversation)).json()["metadata"] == half


async def test_text_with_escapes_that_can_be_stored_is_accepted(gateway: Gateway) -> None:
    """Valid escapes (an accent, a surrogate pair, a 3-digit exponent) pass the guard."""
    raw = (
        f'{{"to": "{TO}", "body": "h\\u00e9llo \\ud83d\\ude00", '
        '"metadata": {"tiny": 1e-300, "big": 1.5e300, "n": 9223372036854775807}}'
    )
    response = await gateway.client.post(
        "/v1/messages", content=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text
    message = response.json()
    assert message["body"] == "héllo \U0001f600"
    assert message["metadata"]["n"] == 2**63 - 1
    fetched = (await gateway.client.get(f"/v1/messages/{message['id']}")).json()
    assert fetched["body"] == message["body"]
    assert fetched["metadata"]["n"] == 2**63 - 1
    # PostgreSQL's JSONB gives it back as digits without the exponent.
    assert float(fetched["metadata"]["big"]) == 1.5e300


async def test_numbers_and_sends_still_work_after_refused_prices_and_throughputs(
    gateway: Gateway,
) -> None:
    for body in (
        {"number": "+14155550177", "price_per_segment": "1e30"},
        {"number": "+14155550177", "price_per_segment": "-0.01"},
        {"number": "+14155550177", "throughput_mps": 1_000_001},
    ):
        refused = await gateway.client.post("/v1/numbers", json=body)
        assert refused.status_code == 422, refused.text
    largest = await gateway.client.post(
        "/v1/numbers",
        json={"number": "+14155550177", "price_per_segment": "1000", "throughput_mps": 1_000_000},
    )
    assert largest.status_code == 201, largest.text
    listed = await gateway.client.get("/v1/numbers")
    assert listed.status_code == 200
    assert {n["number"] for n in listed.json()["data"]} == {SENDER, "+14155550177"}
    sent = await gateway.client.post("/v1/messages", json={"to": TO, "body": "still sending"})
    assert sent.status_code == 202, sent.text


async def test_dashboard_forms_refuse_bad_input_naming_the_field(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        refused = await person.post("/dashboard/settings", {"name": "a\x00b"})
        assert refused.status_code == 422
        assert _problem_fields(refused) == ["name"]
        huge = await person.post(
            "/dashboard/settings", {"name": "Fleet", "rate_limit_per_second": TOO_BIG}
        )
        assert huge.status_code == 422
        assert field_error(huge.text, "rate_limit_per_second") == (
            "must be a whole number from 1 to 1000000"
        )
        odd_digits = await person.post(
            "/dashboard/settings", {"name": "Fleet", "rate_limit_per_second": "\u00b2"}
        )
        assert odd_digits.status_code == 422
        late = await person.post(
            "/dashboard/compose/message",
            {"to": TO, "body": "x", "send_at": "9999-12-31T23:00:00-05:00"},
        )
        assert late.status_code == 422
        assert field_error(late.text, "send_at") is not None
    assert (await _stored(gateway))["project"][0] == "test"


async def test_dashboard_uploads_with_unstorable_text_are_refused(gateway: Gateway) -> None:
    """Uploaded files are not seen by the request guard (multipart): the CSV reader and the
    pathway loader refuse what cannot be stored, beside the file field."""
    async with signed_in(gateway) as person:
        csv = await person.http.post(
            "/dashboard/compose/batch",
            data={"csrf_token": person.csrf, "body": "Hi {{name}}"},
            files={"file": ("people.csv", f"to,name\n{TO},A\x00n\n".encode(), "text/csv")},
        )
        assert csv.status_code == 422
        assert field_error(csv.text, "file") == "must not contain NUL characters"
        for document in ('{"nodes": {"a": {"say": "\\ud800"}}}', 'nodes:\n  a:\n    say: "\\0"'):
            pathway = await person.http.post(
                "/dashboard/pathways",
                data={"csrf_token": person.csrf, "name": "Odd"},
                files={"file": ("flow.yaml", document.encode(), "application/yaml")},
            )
            assert pathway.status_code == 422, pathway.text
            assert "<li>nodes.a.say: " in pathway.text
    assert (await gateway.client.get("/v1/pathways")).json()["data"] == []


async def test_an_unexpected_error_answers_problem_json(backend_url: str) -> None:
    app = create_app(settings_for(backend_url))

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        response = await client.get("/v1/broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "internal_error"
    assert "a bug" not in response.text


# -- vendor surfaces --------------------------------------------------------------------------

# Text that cannot be stored, in the text field of each vendor's send ...
BAD_VALUES = {"lone surrogate": '"hi \\ud800"', "NUL": '"hi \\u0000"'}
# ... and the vendor's free-form and numeric fields with values found live as 500s.
BAD_FIELDS = {
    "bland": {
        "time_out": "1e308",
        "warning_time": "1e308",
        "persona_id": "9223372036854775807",
        "request_data": '{"a": NaN}',
        "metadata": f'{{"a": [{TOO_BIG}]}}',
    },
    "vida": {
        "agentId": "9223372036854775807",
        "scheduledFor": "1e308",
        "scheduleSpacingSec": "1e308",
        "meta": '{"a": 1e999}',
    },
}


def _bland(client: httpx.AsyncClient, gateway: Gateway, field: str, value: str) -> Any:
    fields = {"user_number": f'"{TO}"', "agent_number": f'"{SENDER}"', "agent_message": '"x"'}
    fields[field] = value
    return client.post(
        "/compat/bland/v1/sms/send",
        content=_object(fields),
        headers={"authorization": gateway.api_key, "content-type": "application/json"},
    )


def _vida(client: httpx.AsyncClient, gateway: Gateway, field: str, value: str) -> Any:
    fields = {"target": f'"{TO}"', "content": '"x"'}
    fields[field] = value
    return client.post(
        f"/compat/vida/api/v2/agent/outboundSms?token={gateway.api_key}",
        content=_object(fields),
        headers={"content-type": "application/json"},
    )


async def _agentphone(client: httpx.AsyncClient, gateway: Gateway, field: str, value: str) -> Any:
    auth = {"authorization": f"Bearer {gateway.api_key}"}
    agent = await client.post("/compat/agentphone/v1/agents", json={"name": "a"}, headers=auth)
    assert agent.status_code == 201, agent.text
    fields = {"agent_id": f'"{agent.json()["id"]}"', "to_number": f'"{TO}"', "body": '"x"'}
    fields[field] = value
    return await client.post(
        "/compat/agentphone/v1/messages",
        content=_object(fields),
        headers={**auth, "content-type": "application/json"},
    )


def _polyai(client: httpx.AsyncClient, gateway: Gateway, field: str, value: str) -> Any:
    fields = {"user_number": f'"{TO}"', "message": '"x"'}
    fields[field] = value
    return client.post(
        "/compat/polyai/v1/outbound-sms",
        content=_object(fields),
        headers={
            "X-PolyAi-Auth-Token": gateway.api_key,
            "X-TOKEN-ID": gateway.project_id,
            "content-type": "application/json",
        },
    )


async def _telegent(client: httpx.AsyncClient, gateway: Gateway, field: str, value: str) -> Any:
    exchanged = await client.post(
        "/compat/telegent/v1.0/oauth2/tokens",
        json={"AccountKey": gateway.project_id, "AccountSecret": gateway.api_key},
    )
    assert exchanged.status_code == 200, exchanged.text
    fields = {"To": f'[{{"Number": "{TO}"}}]', "From": f'"{SENDER}"', "Body": '"x"'}
    fields[field] = value
    return await client.post(
        "/compat/telegent/v1.0/message/outbound",
        content=_object(fields),
        headers={
            "authorization": f"Bearer {exchanged.json()['token']}",
            "content-type": "application/json",
        },
    )


def _object(fields: dict[str, str]) -> bytes:
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()


def _bland_shape(body: Any) -> bool:
    return set(body) == {"data", "errors"} and body["data"] is None and bool(body["errors"])


def _vida_shape(body: Any) -> bool:
    return set(body) == {"success", "message"} and body["success"] is False


def _agentphone_shape(body: Any) -> bool:
    return "error" in body and body["error"]["code"] == "VALIDATION_ERROR"


def _polyai_shape(body: Any) -> bool:
    return set(body) == {"detail"} and isinstance(body["detail"], str)


def _telegent_shape(body: Any) -> bool:
    return set(body) == {"StatusCode", "Message"}


Send = Callable[[httpx.AsyncClient, Gateway, str, str], Any]
VENDORS: dict[str, tuple[Send, str, Callable[[Any], bool]]] = {
    "bland": (_bland, "agent_message", _bland_shape),
    "vida": (_vida, "content", _vida_shape),
    "agentphone": (_agentphone, "body", _agentphone_shape),
    "polyai": (_polyai, "message", _polyai_shape),
    "telegent": (_telegent, "Body", _telegent_shape),
}
VENDOR_CASES = [
    (vendor, text_field, label, value)
    for vendor, (_, text_field, _) in VENDORS.items()
    for label, value in BAD_VALUES.items()
] + [
    (vendor, field, f"{field} out of range", value)
    for vendor, fields in BAD_FIELDS.items()
    for field, value in fields.items()
]


@pytest.mark.parametrize(
    ("vendor", "field", "label", "value"),
    VENDOR_CASES,
    ids=[f"{v}-{label}" for v, _, label, _ in VENDOR_CASES],
)
async def test_vendor_surfaces_refuse_bad_values_in_their_own_shape(
    gateway: Gateway, vendor: str, field: str, label: str, value: str
) -> None:
    send, _, shape = VENDORS[vendor]
    before = await _stored(gateway)
    response = await send(gateway.client, gateway, field, value)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert shape(body), body
    assert field in json.dumps(body), body
    assert await _stored(gateway) == before
