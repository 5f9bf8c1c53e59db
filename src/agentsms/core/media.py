"""Inbound MMS media: fetched from the carrier with a strict client and stored, so the
message points at agentsms (``GET /media/{token}``) instead of a carrier URL that expires.

``fetch`` is the one place that reaches out; it refuses non-https URLs (unless
``AGENTSMS_ALLOW_INSECURE_URLS``), follows at most a few redirects (each re-checked, the
carrier's credentials only sent to the carrier's own API host), and stops at
``media_max_bytes`` and ``media_fetch_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from agentsms.config import Settings

MAX_REDIRECTS = 3
AuthFor = Callable[[str], httpx.Auth | None]


class MediaFetchError(Exception):
    """The media could not be fetched within the caps."""


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    """One media file, ready to store."""

    token: str
    content_type: str
    data: bytes
    source_url: str


def new_token() -> str:
    """An unguessable media token (256 bits)."""
    return secrets.token_urlsafe(32)


def media_url(settings: Settings, token: str) -> str:
    base = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/media/{token}"


def _check_url(url: str, settings: Settings) -> None:
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.allow_insecure_urls else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise MediaFetchError(f"refusing to fetch {parts.scheme or 'a relative'} URL")


async def fetch(url: str, settings: Settings, auth_for: AuthFor | None = None) -> FetchedMedia:
    """Download one media URL within the size and time caps."""
    try:
        async with asyncio.timeout(settings.media_fetch_timeout_seconds):
            return await _fetch(url, settings, auth_for)
    except TimeoutError:
        raise MediaFetchError("timed out") from None
    except httpx.HTTPError as error:
        raise MediaFetchError(f"transport error: {error!r}") from None


async def _fetch(url: str, settings: Settings, auth_for: AuthFor | None) -> FetchedMedia:
    cap = settings.media_max_bytes
    current = url
    async with httpx.AsyncClient(follow_redirects=False, timeout=5.0) as client:
        for _ in range(MAX_REDIRECTS + 1):
            _check_url(current, settings)
            auth = auth_for(current) if auth_for else None
            request = client.build_request("GET", current)
            response = await client.send(
                request, auth=auth or httpx.USE_CLIENT_DEFAULT, stream=True
            )
            try:
                if response.is_redirect:
                    current = urljoin(current, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise MediaFetchError(f"answered {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise MediaFetchError(f"larger than {cap} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise MediaFetchError(f"larger than {cap} bytes")
                    chunks.append(chunk)
                content_type = response.headers.get("content-type", "application/octet-stream")
                return FetchedMedia(
                    token=new_token(),
                    content_type=content_type.split(";")[0].strip()[:200],
                    data=b"".join(chunks),
                    source_url=url,
                )
            finally:
                await response.aclose()
    raise MediaFetchError("too many redirects")
