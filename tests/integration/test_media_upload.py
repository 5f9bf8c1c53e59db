"""``POST /v1/media``: outbound media stored by agentsms and served at an unguessable URL,
and ``literal`` bodies sent as written."""

from __future__ import annotations

import re

import httpx

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, count, message_rows, problem_fields

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


async def test_upload_is_served_back_and_can_be_sent(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/media", content=PNG, headers={"Content-Type": "image/png"}
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["content_type"] == "image/png"
    assert stored["size"] == len(PNG)
    path = httpx.URL(stored["url"]).path
    assert re.fullmatch(r"/media/[A-Za-z0-9_-]{43}", path)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url="http://testserver"
    ) as anonymous:  # the carrier fetches it without credentials
        served = await anonymous.get(path)
    assert served.status_code == 200
    assert served.content == PNG
    assert served.headers["content-type"] == "image/png"

    sent = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552671", "media_urls": [stored["url"]]}
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["channel"] == "mms"
    assert sent.json()["media_urls"] == [stored["url"]]


async def test_bad_uploads_are_422_and_store_nothing(gateway: Gateway) -> None:
    cases = [
        (PNG, {"Content-Type": "not a type"}, "Content-Type"),
        (b"", {"Content-Type": "image/png"}, "body"),
        (b"x" * (gateway.settings.media_max_bytes + 1), {"Content-Type": "image/png"}, "body"),
    ]
    for content, headers, field in cases:
        response = await gateway.client.post("/v1/media", content=content, headers=headers)
        assert field in problem_fields(assert_problem(response, 422, "validation_failed"))
    unauthenticated = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url="http://testserver"
    )
    async with unauthenticated:
        refused = await unauthenticated.post(
            "/v1/media", content=PNG, headers={"Content-Type": "image/png"}
        )
    assert_problem(refused, 401, "unauthorized")
    media = tables.media
    assert await count(gateway, media, media.c.project_id == gateway.project_id) == 0


async def test_literal_bodies_keep_their_braces(gateway: Gateway) -> None:
    plain = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552671", "body": "Hi {{name}}", "literal": True}
    )
    assert plain.status_code == 202, plain.text
    assert plain.json()["body"] == "Hi {{name}}"
    templated = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552671", "body": "Hi {{name}}"}
    )
    assert_problem(templated, 422, "validation_failed")
    batch = await gateway.client.post(
        "/v1/batches",
        json={"recipients": ["+14155552672"], "body": "{{x}}", "literal": True},
    )
    assert batch.status_code == 202, batch.text
    bodies = sorted(row["body"] for row in await message_rows(gateway))
    assert bodies == ["Hi {{name}}", "{{x}}"]
