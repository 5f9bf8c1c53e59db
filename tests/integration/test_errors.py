"""Errors as RFC 9457 problems: auth, other projects' objects, validation, size, rate limit."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
from sqlalchemy import select, update

from agentsms.store import tables
from agentsms.store.types import utcnow
from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, count, message_rows, problem_fields


async def _messages(gateway: Gateway) -> int:
    return await count(gateway, tables.messages, tables.messages.c.project_id == gateway.project_id)


def _client(gateway: Gateway, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url="http://testserver",
        headers=headers,
    )


async def test_missing_or_bad_key_is_401(gateway: Gateway) -> None:
    payload = {"to": "+14155552901", "body": "x"}
    cases = [
        {},
        {"Authorization": "Bearer ask_not_a_real_key"},
        {"Authorization": f"Basic {gateway.api_key}"},
        {"Authorization": "Bearer "},
    ]
    for headers in cases:
        async with _client(gateway, headers) as client:
            post = await client.post("/v1/messages", json=payload)
            listing = await client.get("/v1/messages")
            project = await client.get("/v1/project")
        for response in (post, listing, project):
            body = assert_problem(response, 401, "unauthorized")
            assert "key" in body["detail"].lower()
    assert await _messages(gateway) == 0


async def test_keys_are_stored_hashed_and_a_revoked_key_is_401(gateway: Gateway) -> None:
    keys = tables.api_keys
    async with gateway.db.read() as conn:
        rows = (
            (await conn.execute(select(keys).where(keys.c.project_id == gateway.project_id)))
            .mappings()
            .all()
        )
    (row,) = rows
    assert row["key_hash"] == hashlib.sha256(gateway.api_key.encode()).hexdigest()
    assert gateway.api_key not in {str(value) for value in row.values()}
    assert (await gateway.client.get("/v1/project")).status_code == 200

    async with gateway.db.write() as conn:
        await conn.execute(update(keys).where(keys.c.id == row["id"]).values(revoked_at=utcnow()))
    gateway.app.state.agentsms.key_cache.clear()  # keys are cached for a few seconds

    assert_problem(await gateway.client.get("/v1/project"), 401, "unauthorized")


async def test_another_projects_objects_are_404(gateway: Gateway) -> None:
    message = (
        await gateway.client.post(
            "/v1/messages", json={"to": "+14155552902", "body": "x", "send_at": 4102444800}
        )
    ).json()
    batch = (
        await gateway.client.post(
            "/v1/batches", json={"recipients": ["+14155552903"], "body": "x", "send_at": 4102444800}
        )
    ).json()
    number = (await gateway.client.post("/v1/numbers", json={"number": "+14155550113"})).json()
    _, other = await gateway.new_project()
    async with other:
        responses = [
            await other.get(f"/v1/messages/{message['id']}"),
            await other.get(f"/v1/messages/{message['id']}/events"),
            await other.post(f"/v1/messages/{message['id']}/cancel"),
            await other.get(f"/v1/batches/{batch['id']}"),
            await other.get(f"/v1/batches/{batch['id']}/messages"),
            await other.get(f"/v1/numbers/{number['id']}"),
            await other.delete(f"/v1/numbers/{number['id']}"),
        ]
        listed = (await other.get("/v1/messages", params={"batch_id": batch["id"]})).json()
    for response in responses:
        body = assert_problem(response, 404, "not_found")
        assert "not found" in body["detail"]
    assert listed["data"] == []
    # Nothing changed for the owner.
    rows = {row["id"]: row for row in await message_rows(gateway)}
    assert rows[message["id"]]["status"] == "scheduled"
    owner_number = await gateway.client.get(f"/v1/numbers/{number['id']}")
    assert owner_number.status_code == 200
    for row in rows.values():
        await gateway.client.post(f"/v1/messages/{row['id']}/cancel")


async def test_unknown_fields_are_refused(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552904", "body": "x", "colour": "red", "tO": "y"}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert problem_fields(body) == {"colour": "unknown field", "tO": "unknown field"}
    assert "colour" in body["detail"]
    nested = await gateway.client.post(
        "/v1/batches", json={"body": "x", "recipients": [{"to": "+14155552904", "colour": "red"}]}
    )
    assert problem_fields(assert_problem(nested, 422, "validation_failed")) == {
        "recipients[0].colour": "unknown field"
    }
    assert await _messages(gateway) == 0


async def test_bad_e164_says_why(gateway: Gateway) -> None:
    cases = {
        "4155552671": "must start with + and country code",
        "+1415555": "too short for US",
        "+11235550100": "not a valid number for US",
        "+999123456": "unknown country code",
        "+44 20 7183 8750 12": "too long for GB",
        "+1 415 CALL NOW": "may only contain digits, spaces, dashes, dots and parentheses after +",
    }
    for to, reason in cases.items():
        response = await gateway.client.post("/v1/messages", json={"to": to, "body": "x"})
        body = assert_problem(response, 422, "validation_failed")
        assert problem_fields(body) == {"to": reason}, to
        assert reason in body["detail"]
    missing = await gateway.client.post("/v1/messages", json={"body": "x"})
    assert problem_fields(assert_problem(missing, 422, "validation_failed")) == {
        "to": "is required"
    }
    assert await _messages(gateway) == 0


async def test_empty_body_without_media_is_refused(gateway: Gateway) -> None:
    for payload in (
        {"to": "+14155552905"},
        {"to": "+14155552905", "body": ""},
        {"to": "+14155552905", "body": "", "media_urls": []},
    ):
        response = await gateway.client.post("/v1/messages", json=payload)
        assert problem_fields(assert_problem(response, 422, "validation_failed")) == {
            "body": "must not be empty unless media_urls is given"
        }
    assert await _messages(gateway) == 0


async def test_body_over_1600_characters_is_refused(gateway: Gateway) -> None:
    over = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552906", "body": "é" * 1601}
    )
    assert problem_fields(assert_problem(over, 422, "validation_failed")) == {
        "body": "is 1601 characters; the limit is 1600"
    }
    assert await _messages(gateway) == 0
    at_limit = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552906", "body": "a" * 1600}
    )
    assert at_limit.status_code == 202
    assert at_limit.json()["segments"] == 11  # 1600 / 153, rounded up
    assert await _messages(gateway) == 1


async def test_several_problems_are_reported_together(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages",
        json={"to": "+1415555", "body": "", "media_urls": ["not a url"], "from": "+14155550114"},
    )
    fields = problem_fields(assert_problem(response, 422, "validation_failed"))
    assert fields == {
        "to": "too short for US",
        "media_urls[0]": "must be an http or https URL",
        "from": "is not a number in this project's sender pool",
    }


async def test_oversized_request_is_413(gateway: Gateway) -> None:
    limit = gateway.settings.max_request_bytes
    big = b'{"to": "+14155552907", "body": "' + b"a" * limit + b'"}'
    response = await gateway.client.post(
        "/v1/messages", content=big, headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 413, "request_too_large")
    assert str(limit) in body["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"a" * (limit // 3)

    streamed = await gateway.client.post(
        "/v1/messages", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(streamed, 413, "request_too_large")
    assert await _messages(gateway) == 0


async def test_rate_limit_is_429_with_retry_after(gateway: Gateway) -> None:
    patched = await gateway.client.patch(
        "/v1/project", json={"settings": {"rate_limit_per_second": 3}}
    )
    assert patched.status_code == 200
    assert patched.json()["settings"]["rate_limit_per_second"] == 3

    responses = [
        await gateway.client.post("/v1/messages", json={"to": "+14155552908", "body": f"{i}"})
        for i in range(10)
    ]

    limited = [r for r in responses if r.status_code == 429]
    accepted = [r for r in responses if r.status_code == 202]
    assert limited
    assert accepted
    assert len(accepted) + len(limited) == 10
    assert len(accepted) <= 6  # 3 a second, even if the window turned over once
    for response in limited:
        body = assert_problem(response, 429, "rate_limited")
        assert "3 requests per second" in body["detail"]
        assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert await _messages(gateway) == len(accepted)

    # The limit is per project: another project is not slowed down.
    _, other = await gateway.new_project()
    async with other:
        theirs = [await other.get("/v1/project") for _ in range(8)]
    assert {r.status_code for r in theirs} == {200}


async def test_a_body_not_sent_as_json_names_the_content_type_header(gateway: Gateway) -> None:
    payload = '{"to": "+14155551301", "body": "hi"}'
    for headers in (
        {"Content-Type": "text/plain"},
        # curl -d without -H: a form-encoded body.
        {"Content-Type": "application/x-www-form-urlencoded"},
        {},
    ):
        response = await gateway.client.post(
            "/v1/messages", content=payload.encode(), headers=headers
        )
        body = assert_problem(response, 415, "unsupported_media_type")
        (error,) = body["errors"]
        assert error["field"] == "Content-Type"
        assert error["message"].startswith(
            "send the body as JSON with Content-Type: application/json"
        )
        assert "valid dictionary" not in body["detail"]
    # The message's own body field still gets its own error when the JSON lacks it.
    missing = await gateway.client.post("/v1/messages", json={"to": "+14155551301"})
    assert assert_problem(missing, 422, "validation_failed")["errors"][0]["field"] == "body"
