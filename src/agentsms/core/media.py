"""Stored media, served at ``GET /media/{token}`` (an unguessable 256-bit token).

Inbound MMS media is fetched from the carrier with a strict client and stored, so the
message points at agentsms instead of a carrier URL that expires. Outbound media a
caller uploads (``POST /v1/media``, or inline base64 in a vendor API) is stored the same
way, and its URL is what the carrier is given to fetch. Only the media types of
``core.media_types`` are stored: an upload of another type is refused, and inbound media of
another type is kept as ``application/octet-stream`` (served as a download, never as a page)
so that nothing the person sent is lost.

Media URLs use ``AGENTSMS_MEDIA_BASE_URL`` when it is set (a separate origin, so that media
never shares one with the dashboard), else ``AGENTSMS_PUBLIC_URL``.

``fetch`` is the one place that reaches out; it refuses what the SSRF guard refuses
(non-https URLs and inside addresses, unless ``AGENTSMS_ALLOW_INSECURE_URLS`` or the
operator's ``AGENTSMS_TRUSTED_PRIVATE_HOSTS``), follows at most a few redirects (each
re-checked, the carrier's credentials only sent to the carrier's own API host), and stops
at ``media_max_bytes`` and ``media_fetch_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.config import Settings
from agentsms.core import media_types
from agentsms.errors import FieldError, ValidationFailed
from agentsms.store.repositories import provider_accounts as repo
from agentsms.store.types import utcnow
from agentsms.webhooks.ssrf import BlockedRequest, ResponseTooLarge, safe_client, url_problem

MAX_REDIRECTS = 3
AuthFor = Callable[[str], httpx.Auth | None]
log = structlog.get_logger("agentsms.media")


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
    """The public URL of stored media ``token`` (on the media origin when one is set)."""
    base = (settings.media_base_url or settings.public_url or "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/media/{token}"


_TOKEN = r"[A-Za-z0-9!#$&^_.+-]{1,100}"
_CONTENT_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
UPLOAD_SOURCE = "upload"


@dataclass(frozen=True, slots=True)
class Upload:
    """Media a caller sent with its request, checked and ready to store."""

    content_type: str
    data: bytes


def check_upload(
    field: str, content_type: str | None, data: bytes | None, max_bytes: int
) -> tuple[Upload | None, list[FieldError]]:
    """An upload, or what is wrong with it: errors name ``{field}.content_type`` and
    ``{field}.data``; ``data`` is None when the caller's encoding of it was unreadable."""
    errors: list[FieldError] = []
    kind = media_types.normalise(content_type or "")
    if not _CONTENT_TYPE.fullmatch(kind):
        errors.append(FieldError(f"{field}.content_type", "must be a MIME type like image/png"))
    elif (refused := media_types.type_problem(kind)) is not None:
        errors.append(FieldError(f"{field}.content_type", refused))
    if data is None:
        errors.append(FieldError(f"{field}.data", "is not valid base64"))
    elif not data:
        errors.append(FieldError(f"{field}.data", "must not be empty"))
    elif len(data) > max_bytes:
        errors.append(
            FieldError(f"{field}.data", f"is {len(data)} bytes; the limit is {max_bytes}")
        )
    elif not errors and (refused := media_types.problem(kind, data)) is not None:
        errors.append(FieldError(f"{field}.data", refused))
    if errors or data is None:
        return None, errors
    return Upload(kind, data), errors


def decode_base64(value: str) -> bytes | None:
    """Standard or URL-safe base64 (padding optional, whitespace ignored); None if not."""
    compact = "".join(value.split()).replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


async def store_uploads(
    conn: AsyncConnection, settings: Settings, project_id: str, uploads: Sequence[Upload]
) -> list[str]:
    """Store ``uploads`` for ``project_id``; their public URLs, in order."""
    now = utcnow()
    tokens = [new_token() for _ in uploads]
    rows = [
        {
            "token": token,
            "project_id": project_id,
            "content_type": upload.content_type,
            "size": len(upload.data),
            "data": upload.data,
            "source_url": UPLOAD_SOURCE,
            "created_at": now,
        }
        for token, upload in zip(tokens, uploads, strict=True)
    ]
    await repo.insert_media(conn, rows)
    return [media_url(settings, token) for token in tokens]


def require_uploads(
    checked: Sequence[tuple[Upload | None, list[FieldError]]],
) -> list[Upload]:
    """The uploads of ``checked``, or one ``ValidationFailed`` naming every fault."""
    errors = [error for _, faults in checked for error in faults]
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    return [upload for upload, _ in checked if upload is not None]


def _check_url(url: str, settings: Settings) -> None:
    problem = url_problem(url, settings)
    if problem is not None:
        raise MediaFetchError(f"refused: {problem}")


async def fetch(url: str, settings: Settings, auth_for: AuthFor | None = None) -> FetchedMedia:
    """Download one media URL within the size and time caps."""
    try:
        async with asyncio.timeout(settings.media_fetch_timeout_seconds):
            return await _fetch(url, settings, auth_for)
    except TimeoutError:
        raise MediaFetchError("timed out") from None
    except ResponseTooLarge:
        raise MediaFetchError(f"larger than {settings.media_max_bytes} bytes") from None
    except BlockedRequest as error:
        raise MediaFetchError(f"refused: {error}") from None
    except httpx.HTTPError as error:
        raise MediaFetchError(f"transport error: {error!r}") from None


async def _fetch(url: str, settings: Settings, auth_for: AuthFor | None) -> FetchedMedia:
    cap = settings.media_max_bytes
    current = url
    # Every hop goes through the SSRF-safe transport (resolved addresses vetted, the vetted
    # address dialled); redirects are followed here so that credentials stay on the first.
    client = safe_client(
        settings,
        follow_redirects=False,
        timeout=settings.media_fetch_timeout_seconds,
        max_bytes=cap,
    )
    async with client:
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
                data = b"".join(chunks)
                kind = media_types.normalise(
                    response.headers.get("content-type", media_types.OCTET_STREAM)
                )[:200]
                refused = media_types.problem(kind, data)
                if refused is not None:
                    log.warning("media.kept_as_download", url=url, reason=refused)
                return FetchedMedia(
                    token=new_token(),
                    content_type=kind if refused is None else media_types.OCTET_STREAM,
                    data=data,
                    source_url=url,
                )
            finally:
                await response.aclose()
    raise MediaFetchError("too many redirects")


def media_url_problem(url: str, settings: Settings) -> str | None:
    """Why an outbound ``media_urls`` entry can never be fetched, or ``None``.

    The carrier fetches these, not agentsms, and carriers take http too: only hosts that
    always name an inside address (``localhost``, literal loopback, private, link-local,
    metadata addresses) are refused, unless ``AGENTSMS_ALLOW_INSECURE_URLS`` is on.
    """
    if url.startswith(media_url(settings, "")):
        return None  # our own stored media, served at an unguessable URL
    try:
        parsed = httpx.URL(url)
        return url_problem(str(parsed.copy_with(scheme="https")), settings)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        return f"is not a valid URL ({error})"
