"""``/openapi.json`` documents every operation: summary, description, hand-written request
examples that the API accepts, and the problem codes of its error responses.

A route added later without documentation fails here, naming the operation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agentsms.agents import load_demo_pathway
from agentsms.api import openapi_docs
from tests.conftest import Gateway

PERSON = "+14155550179"

Operation = tuple[str, str]
SRC = Path(openapi_docs.__file__).resolve().parents[1]

# Unauthenticated and without input: nothing a caller can get wrong (readyz answers its
# own 503 JSON, not a problem).
NO_CALLER_ERRORS = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}

# Examples that cannot be sent here; each is still checked against its request schema.
NOT_SENT = {
    ("POST", "/v1/provider-accounts"): "the credentials are checked with the carrier",
    ("POST", "/v1/messages/{message_id}/reactions"): "needs a message sent over iMessage",
    ("POST", "/v1/simulator/reactions"): "needs a message sent over iMessage",
    ("POST", "/compat/telegent/v1.0/message/outbound"): "sends from Telegent's sample number",
    ("POST", "/compat/agentphone/v1/messages"): "names an AgentPhone agent id",
    ("POST", "/compat/agentphone/v1/messages/{message_id}/reactions"): "needs an iMessage message",
    ("PATCH", "/compat/agentphone/v1/conversations/{conversation_id}"): "needs a conversation id",
    ("PATCH", "/compat/agentphone/v1/numbers/{number_id}"): "needs a number id",
    ("PATCH", "/compat/agentphone/v1/contacts/{contact_id}"): "needs a contact id",
    ("PATCH", "/compat/agentphone/v1/agents/{agent_id}"): "needs an agent id",
    ("POST", "/compat/agentphone/v1/agents/{agent_id}/numbers"): "needs an agent id",
    ("POST", "/compat/agentphone/v1/agents/{agent_id}/webhook"): "needs an agent id",
    ("POST", "/compat/telegent/v1.0/numbers/provision"): "needs a Telegent token",
}


@pytest.fixture
async def schema(gateway: Gateway) -> dict[str, Any]:
    response = await gateway.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(schema: dict[str, Any]) -> Iterator[tuple[Operation, dict[str, Any]]]:
    for path, items in schema["paths"].items():
        for method, operation in items.items():
            yield (method.upper(), path), operation


def json_body(operation: dict[str, Any]) -> dict[str, Any] | None:
    body: dict[str, Any] | None = (
        operation.get("requestBody", {}).get("content", {}).get("application/json")
    )
    return body


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


async def test_every_operation_has_a_summary_and_a_description(schema: dict[str, Any]) -> None:
    found = list(operations(schema))
    assert len(found) > 90
    missing = [
        f"{method} {path}: {field}"
        for (method, path), operation in found
        for field in ("summary", "description")
        if not str(operation.get(field, "")).strip()
    ]
    assert missing == []
    # FastAPI's fallback summary is the function name in title case ("List Personas").
    generated = [
        f"{method} {path}: {operation['summary']}"
        for (method, path), operation in found
        if not path.startswith("/compat/")  # vendor operation names, as the vendors title them
        and operation["summary"] == operation["summary"].title()
        and operation["operationId"].startswith(operation["summary"].lower().replace(" ", "_"))
    ]
    assert generated == []


async def test_every_json_body_has_hand_written_examples(schema: dict[str, Any]) -> None:
    missing, generated = [], []
    for (method, path), operation in operations(schema):
        body = json_body(operation)
        if body is None:
            continue
        examples = body.get("examples", {})
        if not examples:
            missing.append(f"{method} {path}")
        for name, example in examples.items():
            assert example["summary"], name
            if "string" in list(leaves(example["value"])):
                generated.append(f"{method} {path} {name}")
    assert missing == []
    assert generated == []


async def test_every_path_and_header_parameter_has_an_example(schema: dict[str, Any]) -> None:
    missing = [
        f"{method} {path}: {parameter['name']}"
        for (method, path), operation in operations(schema)
        for parameter in operation.get("parameters", [])
        if parameter["in"] in ("path", "header") and parameter.get("example") in (None, "string")
    ]
    assert missing == []
    listing = dict(operations(schema))[("GET", "/v1/messages")]["parameters"]
    assert {p["name"]: p.get("example") for p in listing}["to"] == openapi_docs.PERSON


async def test_every_operation_documents_its_problems(schema: dict[str, Any]) -> None:
    undocumented = []
    for key, operation in operations(schema):
        responses = operation["responses"]
        if key[1].startswith("/compat/"):
            # Vendor surfaces answer in the vendor's error shape, documented by each module.
            if not any(status.startswith("4") for status in responses):
                undocumented.append(key)
            continue
        if key in NO_CALLER_ERRORS:
            continue
        problems = {
            status: response
            for status, response in responses.items()
            if status.startswith("4") and "application/problem+json" in response.get("content", {})
        }
        if not problems:
            undocumented.append(key)
        for response in problems.values():
            schema_ref = response["content"]["application/problem+json"]["schema"]["$ref"]
            assert schema_ref == "#/components/schemas/Problem"
            assert re.search(r"- `\w+`: ", response["description"]), response
    assert undocumented == []
    send = dict(operations(schema))[("POST", "/v1/messages")]["responses"]
    assert "`idempotency_key_in_flight`" in send["409"]["description"]
    assert "`spend_cap_reached`" in send["429"]["description"]
    assert "`unauthorized`" in send["401"]["description"]


async def test_documented_codes_are_the_codes_the_code_raises(schema: dict[str, Any]) -> None:
    """A code renamed or removed in the source shows up here, as does a stale table entry."""
    source = "\n".join(
        path.read_text()
        for path in SRC.rglob("*.py")
        if path.name != "openapi_docs.py" and "compat" not in path.parts
    )
    documented = {code for problems in openapi_docs.PROBLEMS.values() for _, code in problems}
    assert documented <= set(openapi_docs.MEANINGS)
    not_raised = [code for code in openapi_docs.MEANINGS if f'"{code}"' not in source]
    assert not_raised == []
    known = dict(operations(schema))
    assert [key for key in openapi_docs.EXAMPLES if key not in known] == []
    assert [key for key in openapi_docs.PROBLEMS if key not in known] == []


async def test_examples_match_their_request_schemas(schema: dict[str, Any]) -> None:
    components = {"components": schema["components"]}
    for (method, path), operation in operations(schema):
        body = json_body(operation)
        if body is None:
            continue
        validator = Draft202012Validator({**body["schema"], **components})
        for name, example in body.get("examples", {}).items():
            errors = [e.message for e in validator.iter_errors(example["value"])]
            assert errors == [], f"{method} {path} {name}: {errors}"


async def objects(gateway: Gateway) -> dict[str, str]:
    """Ids for the path parameters of the operations whose examples are sent."""
    client = gateway.client
    sent = await client.post(
        "/v1/messages", json={"to": "+14155550177", "body": "hi", "new_conversation": True}
    )
    endpoint = await client.post(
        "/v1/webhook-endpoints", json={"url": "https://hooks.example.com/x"}
    )
    flow = {"kind": "flow", "pathway": load_demo_pathway()}
    persona = await client.post("/v1/personas", json={"name": "p", "agent": flow})
    pathway = await client.post("/v1/pathways", json={"name": "w", "document": flow["pathway"]})
    contact = await client.post("/v1/contacts", json={"phone_number": PERSON, "name": "c"})
    for response in (sent, endpoint, persona, pathway, contact):
        assert response.status_code in (201, 202), response.text
    return {
        "conversation_id": sent.json()["conversation_id"],
        "endpoint_id": endpoint.json()["id"],
        "persona_id": persona.json()["id"],
        "pathway_id": pathway.json()["id"],
        "contact_id": contact.json()["id"],
        "number": "+14155550123",
    }


async def test_native_examples_are_accepted_by_the_api(
    gateway: Gateway, schema: dict[str, Any]
) -> None:
    ids = await objects(gateway)
    sendable = [
        (key, operation)
        for key, operation in operations(schema)
        if json_body(operation) is not None and key[1].startswith("/v1/") and key not in NOT_SENT
    ]
    # Ending the conversation comes last: the other conversation operations need it open.
    # The project's example lowers its request rate: that one goes after all the others.
    sendable.sort(key=lambda item: (item[0][1] == "/v1/project", item[0][1].endswith("/end")))
    assert len(sendable) >= 20
    for (method, path), operation in sendable:
        url = path.format(**ids)
        examples = operation["requestBody"]["content"]["application/json"]["examples"]
        for name, example in examples.items():
            response = await gateway.client.request(method, url, json=example["value"])
            assert 200 <= response.status_code < 300, f"{method} {path} {name}: {response.text}"


async def test_the_codes_the_api_answers_with_are_documented(
    gateway: Gateway, schema: dict[str, Any]
) -> None:
    """Real error answers: each one's code is listed under its status for its operation."""
    client = gateway.client
    documented = dict(operations(schema))

    async def check(method: str, path: str, url: str, **kwargs: Any) -> None:
        response = await client.request(method, url, **kwargs)
        assert response.status_code >= 400, response.text
        problem = response.json()
        described = documented[(method, path)]["responses"][str(response.status_code)]
        assert f"`{problem['code']}`" in described["description"], (method, path, problem)

    sent = await client.post("/v1/messages", json={"to": "+14155550178", "body": "hi"})
    message_id = sent.json()["id"]
    await check("GET", "/v1/messages/{message_id}", "/v1/messages/msg_missing")
    await check("POST", "/v1/messages", "/v1/messages", json={"body": "no recipient"})
    await check(
        "POST", "/v1/messages", "/v1/messages", json={"to": "+1"}, headers={"Idempotency-Key": ""}
    )
    await client.post(
        "/v1/messages", json={"to": "+14155550178", "body": "a"}, headers={"Idempotency-Key": "k1"}
    )
    await check(
        "POST",
        "/v1/messages",
        "/v1/messages",
        json={"to": "+14155550178", "body": "b"},
        headers={"Idempotency-Key": "k1"},
    )
    await client.post(f"/v1/messages/{message_id}/cancel")
    await check("POST", "/v1/messages/{message_id}/cancel", f"/v1/messages/{message_id}/cancel")
    await check("POST", "/v1/numbers", "/v1/numbers", json={"number": "+14155550100"})
    template = {"name": "t", "key": "welcome", "body": "Hi"}
    await client.post("/v1/templates", json=template)
    await check("POST", "/v1/templates", "/v1/templates", json=template)
    await check(
        "POST", "/v1/webhook-endpoints", "/v1/webhook-endpoints", json={"url": "http://127.0.0.1/x"}
    )
    await check("GET", "/v1/messages", "/v1/messages", headers={"Authorization": "Bearer nope"})


def vendor_auth(path: str, gateway: Gateway) -> dict[str, Any]:
    """Each vendor surface's own way of presenting the project's API key (request options)."""
    if path.startswith("/compat/bland/"):
        return {"headers": {"authorization": gateway.api_key}}
    if path.startswith("/compat/polyai/"):
        return {
            "headers": {"X-PolyAi-Auth-Token": gateway.api_key, "X-TOKEN-ID": gateway.project_id}
        }
    if path.startswith("/compat/vida/"):
        return {"params": {"token": gateway.api_key}}
    return {"headers": {"Authorization": f"Bearer {gateway.api_key}"}}


async def test_vendor_examples_are_accepted_by_their_surfaces(
    gateway: Gateway, schema: dict[str, Any]
) -> None:
    # The token example names a sample project id and key; this project's are sent instead.
    own = {
        "proj_01JH8Z3K4W5X6Y7Z8A9B0C1D2E": gateway.project_id,
        "ask_live_key": gateway.api_key,
    }
    sent = 0
    for (method, path), operation in operations(schema):
        body = json_body(operation)
        if body is None or not path.startswith("/compat/") or (method, path) in NOT_SENT:
            continue
        for name, example in body["examples"].items():
            value = example["value"]
            if isinstance(value, dict):
                value = {k: own.get(v, v) if isinstance(v, str) else v for k, v in value.items()}
            response = await gateway.client.request(
                method, path, json=value, **vendor_auth(path, gateway)
            )
            assert 200 <= response.status_code < 300, f"{method} {path} {name}: {response.text}"
            sent += 1
    assert sent >= 6
