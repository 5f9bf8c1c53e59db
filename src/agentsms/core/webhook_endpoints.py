"""Webhook endpoints: create, list, update, delete, rotate secrets, read and resend deliveries,
send a test event.

The domain's rules about a customer's endpoints (the native API, the dashboard and the
vendor surfaces all manage them through here); ``webhooks/`` stores events and delivers
them. Functions take a connection and never commit (the API edge does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.config import Settings
from agentsms.errors import FieldError, NotFound, ValidationFailed, invalid
from agentsms.store.repositories import Row, webhook_log
from agentsms.store.repositories import webhooks as repo
from agentsms.store.types import utcnow
from agentsms.webhooks import events, formats, signing
from agentsms.webhooks.events import (
    EVENT_TYPES,
    GROUPS,
    cancel_deliveries,
    endpoint_id_new,
    enqueue_delivery,
    ensure_project_secret,
)
from agentsms.webhooks.signing import HMAC_TIMESTAMPED as HMAC_TIMESTAMPED

# Also how an edge checks a customer URL given with a send (e.g. Bland's ``webhook``).
from agentsms.webhooks.ssrf import check_url as check_url

ROTATION_GRACE = timedelta(hours=24)
MAX_URL_CHARS = 2048


@dataclass(slots=True)
class EndpointInput:
    """What a caller gives to create (all set) or update (``None`` = unchanged) an endpoint."""

    url: str | None = None
    event_types: Sequence[str] | None = None
    description: str | None = None
    enabled: bool | None = None
    signing_scheme: str | None = None
    """A name in ``signing.SCHEMES`` (default Standard Webhooks); set at creation only."""
    payload_format: str | None = None
    """A registered endpoint format (default ``native``); set at creation only."""
    timeout_seconds: float | None = None
    """How long one attempt may take (default ``Settings.webhook_timeout_seconds``)."""
    options: dict[str, Any] | None = None
    """The payload format's options (e.g. ``context_limit`` for ``agentphone``)."""


def normalize_event_types(values: Sequence[str], field: str = "event_types") -> list[str]:
    """Validated, de-duplicated types; ``[]`` means every event (``*`` or nothing given)."""
    errors: list[FieldError] = []
    kept: list[str] = []
    for index, value in enumerate(values):
        group = value[:-2] if value.endswith(".*") else None
        if value == "*" or value in EVENT_TYPES or (group is not None and group in GROUPS):
            if value not in kept:
                kept.append(value)
        else:
            errors.append(
                FieldError(
                    f"{field}[{index}]",
                    f"unknown event type {value!r}; known: *, "
                    + ", ".join(sorted(GROUPS)).replace(", ", ".*, ")
                    + ".*, "
                    + ", ".join(EVENT_TYPES),
                )
            )
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    return [] if "*" in kept else kept


def _check_url(url: str, settings: Settings) -> None:
    if len(url) > MAX_URL_CHARS:
        raise invalid("url", f"is longer than {MAX_URL_CHARS} characters")
    check_url(url, "url", settings)


async def create_endpoint(
    conn: AsyncConnection, project_id: str, spec: EndpointInput, settings: Settings
) -> Row:
    """A new endpoint with a fresh secret (returned in the row; shown to the caller once)."""
    if spec.url is None:
        raise invalid("url", "is required")
    _check_url(spec.url, settings)
    types = normalize_event_types(spec.event_types or [])
    _check_delivery_options(spec, settings)
    now = utcnow()
    row: dict[str, Any] = {
        "id": endpoint_id_new(),
        "project_id": project_id,
        "kind": repo.ENDPOINT,
        "url": spec.url,
        "description": spec.description,
        "event_types": types,
        "secret": signing.new_secret(),
        "previous_secret": None,
        "previous_secret_expires_at": None,
        "disabled_at": None if spec.enabled is not False else now,
        "disabled_reason": None if spec.enabled is not False else "disabled by the customer",
        "deleted_at": None,
        "created_at": now,
        "updated_at": now,
        "signing_scheme": spec.signing_scheme,
        "payload_format": spec.payload_format,
        "timeout_seconds": spec.timeout_seconds,
        "options": spec.options,
    }
    await repo.insert_endpoint(conn, row)
    return row


def _check_delivery_options(spec: EndpointInput, settings: Settings) -> None:
    errors: list[FieldError] = []
    if spec.signing_scheme is not None and spec.signing_scheme not in signing.SCHEMES:
        errors.append(FieldError("signing_scheme", f"must be one of {', '.join(signing.SCHEMES)}"))
    names = formats.endpoint_format_names()
    if spec.payload_format is not None and spec.payload_format not in names:
        errors.append(FieldError("payload_format", f"must be one of {', '.join(names)}"))
    most = settings.webhook_timeout_seconds
    if spec.timeout_seconds is not None and not 0 < spec.timeout_seconds <= most:
        errors.append(
            FieldError("timeout_seconds", f"must be more than 0 and at most {most:g} seconds")
        )
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


async def get_endpoint(conn: AsyncConnection, project_id: str, endpoint_id: str) -> Row:
    row = await repo.get_endpoint(conn, project_id, endpoint_id)
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return row


async def list_endpoints(
    conn: AsyncConnection,
    project_id: str,
    *,
    kind: str | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> Sequence[Row]:
    return await repo.list_endpoints(conn, project_id, kind=kind, before_id=before_id, limit=limit)


async def update_endpoint(
    conn: AsyncConnection,
    project_id: str,
    endpoint_id: str,
    spec: EndpointInput,
    settings: Settings,
) -> Row:
    """Change url, event types, description, format options, or enable / disable
    (re-enabling clears 410).

    Disabling drops the endpoint's queued deliveries; a new URL applies to every delivery
    not yet attempted.
    """
    row = await get_endpoint(conn, project_id, endpoint_id)
    values: dict[str, Any] = {}
    if spec.url is not None:
        if row["kind"] == repo.OVERRIDE:
            raise invalid("url", "the URL of a per-send webhook_url endpoint cannot change")
        _check_url(spec.url, settings)
        values["url"] = spec.url
    if spec.event_types is not None:
        if row["kind"] == repo.OVERRIDE:
            raise invalid("event_types", "a per-send webhook_url endpoint gets every event")
        values["event_types"] = normalize_event_types(spec.event_types)
    if spec.description is not None:
        values["description"] = spec.description
    if spec.options is not None:
        values["options"] = dict(spec.options)
    now = utcnow()
    if spec.enabled is True:
        values |= {"disabled_at": None, "disabled_reason": None}
    elif spec.enabled is False and row["disabled_at"] is None:
        values |= {"disabled_at": now, "disabled_reason": "disabled by the customer"}
    if values:
        values["updated_at"] = now
        await repo.update_endpoint(conn, endpoint_id, values)
    if spec.enabled is False:
        await cancel_deliveries(conn, endpoint_id)
    return await get_endpoint(conn, project_id, endpoint_id)


async def delete_endpoint(conn: AsyncConnection, project_id: str, endpoint_id: str) -> None:
    """Stop delivering to it at once: its queued deliveries are dropped, and one a worker
    has already claimed is dropped right before its attempt."""
    await get_endpoint(conn, project_id, endpoint_id)
    now = utcnow()
    await repo.update_endpoint(conn, endpoint_id, {"deleted_at": now, "updated_at": now})
    await cancel_deliveries(conn, endpoint_id)


async def rotate_secret(conn: AsyncConnection, project_id: str, endpoint_id: str) -> Row:
    """A new secret; the current one keeps signing beside it for 24 hours."""
    row = await get_endpoint(conn, project_id, endpoint_id)
    if row["kind"] == repo.OVERRIDE:
        raise invalid(
            "endpoint_id",
            "per-send webhook_url endpoints use the project signing secret; rotate that one",
        )
    now = utcnow()
    await repo.update_endpoint(
        conn,
        endpoint_id,
        {
            "secret": signing.new_secret(),
            "previous_secret": row["secret"],
            "previous_secret_expires_at": now + ROTATION_GRACE,
            "updated_at": now,
        },
    )
    return await get_endpoint(conn, project_id, endpoint_id)


async def project_secret(conn: AsyncConnection, project_id: str) -> Row:
    """The secret signing per-send ``webhook_url`` deliveries (created on first use)."""
    return await ensure_project_secret(conn, project_id)


async def rotate_project_secret(conn: AsyncConnection, project_id: str) -> Row:
    current = await ensure_project_secret(conn, project_id)
    now = utcnow()
    await repo.update_project_secret(
        conn,
        project_id,
        {
            "secret": signing.new_secret(),
            "previous_secret": current["secret"],
            "previous_secret_expires_at": now + ROTATION_GRACE,
        },
    )
    return await ensure_project_secret(conn, project_id)


async def list_deliveries(
    conn: AsyncConnection,
    project_id: str,
    endpoint_id: str,
    *,
    event_id: str | None = None,
    status: str | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> Sequence[Row]:
    """An endpoint's delivery attempts, newest first."""
    await get_endpoint(conn, project_id, endpoint_id)
    return await repo.list_deliveries(
        conn, endpoint_id, event_id=event_id, status=status, before_id=before_id, limit=limit
    )


async def resend(conn: AsyncConnection, project_id: str, endpoint_id: str, delivery_id: str) -> Row:
    """Queue one more attempt (no automatic retries) of the delivery's event, due now."""
    endpoint = await get_endpoint(conn, project_id, endpoint_id)
    delivery = await repo.get_delivery(conn, endpoint_id, delivery_id)
    if delivery is None:
        raise NotFound(f"delivery {delivery_id} not found")
    if endpoint["disabled_at"] is not None:
        raise invalid("endpoint_id", "the endpoint is disabled; enable it first")
    await enqueue_delivery(conn, str(delivery["event_id"]), endpoint_id, resend=True)
    return delivery


async def deliveries_about_message(
    conn: AsyncConnection, project_id: str, message_id: str
) -> Sequence[Row]:
    """Every delivery attempt of the webhook events about one message, newest first."""
    events = await webhook_log.events_about_message(conn, project_id, message_id)
    return await webhook_log.deliveries_of_events(conn, [row["id"] for row in events])


async def send_test_event(
    conn: AsyncConnection,
    project_id: str,
    endpoint_id: str,
    event_type: str,
    data: Mapping[str, Any],
) -> str:
    """A synthetic event (``"test": true`` in its payload) for the endpoint only, stored and
    delivered (signed, logged) like any other; returns the event's id."""
    return await events.emit_test(conn, project_id, endpoint_id, event_type, data)
