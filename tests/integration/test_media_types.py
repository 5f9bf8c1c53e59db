"""Media never runs on the dashboard's origin: only the types carriers carry are stored,
``/media/{token}`` serves with ``nosniff``, a sandbox and (but for raster images) as a
download, and media URLs may live on an origin of their own (``AGENTSMS_MEDIA_BASE_URL``)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from agentsms.app import create_app
from agentsms.store import tables
from agentsms.store.repositories import provider_accounts as media_repo
from agentsms.store.types import utcnow
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for
from tests.integration.helpers import assert_problem, count, problem_fields

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
HTML = b"<!doctype html><script>fetch('/dashboard/api-keys')</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
SANDBOX = "sandbox; default-src 'none'"


def anonymous(app: FastAPI) -> httpx.AsyncClient:
    """What a browser or a carrier is: no credentials."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def upload(gateway: Gateway, content: bytes, content_type: str) -> httpx.Response:
    return await gateway.client.post(
        "/v1/media", content=content, headers={"Content-Type": content_type}
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/html; charset=utf-8",
        "image/svg+xml",
        "application/xhtml+xml",
        "application/xml",
        "text/xml",
        "application/javascript",
        "text/javascript",
        "text/plain",
        "application/octet-stream",
        "image/x-unknown",
        "video/vnd.example+xml",
    ],
)
async def test_active_or_unknown_types_are_refused(gateway: Gateway, content_type: str) -> None:
    response = await upload(gateway, b"GIF89a" + bytes(16), content_type)
    fields = problem_fields(assert_problem(response, 422, "validation_failed"))
    assert "is not accepted" in fields["Content-Type"]
    media = tables.media
    assert await count(gateway, media, media.c.project_id == gateway.project_id) == 0


@pytest.mark.parametrize(
    "content",
    [
        HTML,
        SVG,
        b"\xef\xbb\xbf \n<html>",  # UTF-8 byte-order mark, whitespace
        "\ufeff<svg>".encode("utf-16-le"),
        b"<?xml version='1.0'?>",
    ],
)
async def test_markup_is_refused_whatever_type_it_claims(gateway: Gateway, content: bytes) -> None:
    response = await upload(gateway, content, "image/png")
    fields = problem_fields(assert_problem(response, 422, "validation_failed"))
    assert fields["body"] == "the content is HTML or XML, not image/png"
    media = tables.media
    assert await count(gateway, media, media.c.project_id == gateway.project_id) == 0


@pytest.mark.parametrize(
    ("content_type", "content", "disposition"),
    [
        ("image/png", PNG, "inline"),
        ("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(32), "inline"),
        ("image/heic", b"\x00\x00\x00\x18ftypheic" + bytes(16), "attachment"),
        ("audio/amr", b"#!AMR\n" + bytes(32), "attachment"),
        ("video/mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(16), "attachment"),
        ("text/vcard", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n", "attachment"),
        ("application/pdf", b"%PDF-1.7\n" + bytes(32), "attachment"),
    ],
)
async def test_carrier_types_are_stored_and_served_safely(
    gateway: Gateway, content_type: str, content: bytes, disposition: str
) -> None:
    response = await upload(gateway, content, content_type)
    assert response.status_code == 201, response.text
    async with anonymous(gateway.app) as browser:
        served = await browser.get(httpx.URL(response.json()["url"]).path)
    assert served.status_code == 200
    assert served.content == content
    assert served.headers["content-type"].split(";")[0] == content_type
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"] == SANDBOX
    assert served.headers["content-disposition"] == disposition


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/html", HTML),
        ("image/svg+xml", SVG),
        ("application/xhtml+xml", HTML),
        ("image/png", HTML),  # a lie about its type
        ("Text/HTML; charset=utf-8", HTML),
    ],
)
async def test_media_stored_before_the_rules_is_served_as_a_download(
    gateway: Gateway, content_type: str, content: bytes
) -> None:
    token = f"legacy-{gateway.project_id}"
    async with gateway.db.write() as conn:
        await media_repo.insert_media(
            conn,
            [
                {
                    "token": token,
                    "project_id": gateway.project_id,
                    "content_type": content_type,
                    "size": len(content),
                    "data": content,
                    "source_url": "upload",
                    "created_at": utcnow(),
                }
            ],
        )
    async with anonymous(gateway.app) as browser:
        served = await browser.get(f"/media/{token}")
    assert served.status_code == 200
    assert served.content == content
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"] == "attachment"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"] == SANDBOX


async def test_media_urls_use_the_media_origin_when_one_is_set(backend_url: str) -> None:
    media_origin = "https://media.agentsms.example"
    settings = settings_for(
        backend_url, public_url="https://agentsms.example", media_base_url=f"{media_origin}/"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), open_gateway(app, "media origin") as gateway:
        response = await upload(gateway, PNG, "image/png")
        assert response.status_code == 201, response.text
        url = httpx.URL(response.json()["url"])
        assert str(url).startswith(f"{media_origin}/media/")
        async with anonymous(app) as browser:
            assert (await browser.get(url.path)).content == PNG
        # Its own stored media is always a valid media URL to send.
        sent = await gateway.client.post(
            "/v1/messages", json={"to": "+14155552671", "media_urls": [str(url)]}
        )
        assert sent.status_code == 202, sent.text
        assert sent.json()["media_urls"] == [str(url)]
