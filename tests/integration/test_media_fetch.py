"""The strict inbound-media fetch against a real loopback server: scheme, size and time
caps, redirects, and carrier credentials only where the adapter allows them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from agentsms.config import Settings
from agentsms.core.media import MediaFetchError, fetch
from tests.fakes.carriers.server import MEDIA_BYTES, FakeCarrier


class MediaHost(FakeCarrier):
    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route("/redirect", self.redirect),
            Route("/loop", self.loop),
            Route("/big", self.big),
            Route("/big-chunked", self.big_chunked),
            Route("/slow", self.slow),
        ]

    async def redirect(self, request: Request) -> Response:
        await self.record(request)
        return RedirectResponse(f"{self.base_url}/media/photo.png", status_code=302)

    async def loop(self, request: Request) -> Response:
        await self.record(request)
        return RedirectResponse(f"{self.base_url}/loop", status_code=302)

    async def big(self, request: Request) -> Response:
        return Response(b"x" * 5000, media_type="image/jpeg")

    async def big_chunked(self, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 500

        return StreamingResponse(chunks(), media_type="image/jpeg")

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(2)
        return Response(b"late")


@pytest.fixture(scope="module")
def host() -> Iterator[MediaHost]:
    server = MediaHost()
    server.start()
    yield server
    server.stop()


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"allow_insecure_urls": True, "media_max_bytes": 4096}
    values.update(overrides)
    return Settings.model_validate(values)


async def test_fetches_and_keeps_the_content_type(host: MediaHost) -> None:
    got = await fetch(host.media_url(), settings())
    assert got.data == MEDIA_BYTES
    assert got.content_type == "image/png"
    assert len(got.token) >= 40


async def test_plain_http_is_refused_unless_allowed(host: MediaHost) -> None:
    with pytest.raises(MediaFetchError, match="refused: must be an https URL"):
        await fetch(host.media_url(), settings(allow_insecure_urls=False))
    with pytest.raises(MediaFetchError, match="refused"):
        await fetch("file:///etc/passwd", settings())
    trusted = settings(allow_insecure_urls=False, trusted_private_hosts="127.0.0.1")
    assert (await fetch(host.media_url(), trusted)).data == MEDIA_BYTES


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_size_cap(host: MediaHost, path: str) -> None:
    with pytest.raises(MediaFetchError, match="larger than 4096"):
        await fetch(f"{host.base_url}{path}", settings())


async def test_time_cap(host: MediaHost) -> None:
    with pytest.raises(MediaFetchError, match="timed out"):
        await fetch(f"{host.base_url}/slow", settings(media_fetch_timeout_seconds=0.3))


async def test_redirects_are_followed_and_credentials_stay_with_the_carrier(
    host: MediaHost,
) -> None:
    first = f"{host.base_url}/redirect"
    host.requests.clear()

    def auth_for(url: str) -> httpx.Auth | None:
        return httpx.BasicAuth("AC1", "token") if url == first else None

    got = await fetch(first, settings(), auth_for)
    assert got.data == MEDIA_BYTES
    assert got.source_url == first
    [hop1, hop2] = host.requests
    assert hop1.path == "/redirect"
    assert hop1.headers.get("authorization", "").startswith("Basic")
    assert hop2.path == "/media/photo.png"
    assert "authorization" not in hop2.headers
    with pytest.raises(MediaFetchError, match="too many redirects"):
        await fetch(f"{host.base_url}/loop", settings())


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:9/photo.png",
        "https://[::1]:9/photo.png",
        "https://2130706433:9/photo.png",  # 127.0.0.1 in decimal
        "https://169.254.169.254/latest/meta-data",
        "https://localhost:9/photo.png",
    ],
)
async def test_media_urls_that_reach_inside_are_refused(url: str) -> None:
    """The fetch goes through the SSRF-safe client: no private or loopback address."""
    with pytest.raises(MediaFetchError, match="refused"):
        await fetch(url, settings(allow_insecure_urls=False))
