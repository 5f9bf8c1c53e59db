"""Webhook events: the known types and ``emit``, which stores an event and fans it out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection
from ulid import ULID

from agentsms.ids import new_id
from agentsms.jobs import queue
from agentsms.jobs.queue import NewJob
from agentsms.store.repositories import Row
from agentsms.store.repositories import webhooks as repo
from agentsms.store.types import utcnow
from agentsms.webhooks import formats, signing

DELIVER_JOB: Final = "webhook.deliver"
# The handler counts attempts itself (Settings.webhook_max_attempts); this only bounds a
# job whose handler keeps crashing.
JOB_MAX_ATTEMPTS: Final = 100

MESSAGE_EVENTS: Final = (
    "message.scheduled",
    "message.queued",
    "message.sent",
    "message.delivered",
    "message.undelivered",
    "message.failed",
    "message.received",
    "message.canceled",
    "message.expired",
)
EVENT_TYPES: Final = (
    *MESSAGE_EVENTS,
    "conversation.started",
    "conversation.warning_sent",
    "conversation.ended",
    "conversation.needs_attention",
    "recipient.opted_out",
    "recipient.opted_in",
    "reaction.received",
)
GROUPS: Final = frozenset(name.split(".", 1)[0] for name in EVENT_TYPES)


def endpoint_id_new() -> str:
    """``whe_<ULID>``: a webhook endpoint id."""
    return f"whe_{ULID()}"


def delivery_id_new() -> str:
    """``whd_<ULID>``: one delivery attempt's id."""
    return f"whd_{ULID()}"


def subscribed(event_types: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint with ``event_types`` ([] = all, ``group.*``) gets ``event_type``."""
    if not event_types:
        return True
    group = event_type.split(".", 1)[0]
    return event_type in event_types or f"{group}.*" in event_types


@dataclass(frozen=True, slots=True)
class Event:
    """One event to send: its type, its ``data``, and an optional per-send URL with the
    payload format it wants (see ``webhooks.formats``; ``None`` is the standard one)."""

    type: str
    data: Mapping[str, Any]
    webhook_url: str | None = None
    webhook_format: str | None = None


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z``, as in every payload."""
    return moment.isoformat().replace("+00:00", "Z")


async def emit(
    conn: AsyncConnection,
    *,
    project_id: str,
    event_type: str,
    data: Mapping[str, Any],
    webhook_url: str | None = None,
    webhook_format: str | None = None,
) -> None:
    """Record ``event_type`` for ``project_id`` and enqueue its deliveries (caller's tx).

    One delivery job per enabled endpoint of the project subscribed to ``event_type``,
    plus one to ``webhook_url`` when given (a per-send or per-conversation override, which
    gets every event of its conversation, in ``webhook_format`` when given). Nothing is
    written when nobody listens.
    """
    await emit_many(conn, project_id, [Event(event_type, data, webhook_url, webhook_format)])


async def emit_many(
    conn: AsyncConnection,
    project_id: str,
    events: Sequence[Event],
    *,
    endpoints: Sequence[Row] | None = None,
) -> int:
    """``emit`` for many events of one project; returns how many deliveries were queued.

    ``endpoints`` (from ``repo.active_endpoints``) saves the lookup when the caller has it.
    """
    if not events:
        return 0
    if endpoints is None:
        endpoints = await repo.active_endpoints(conn, project_id)
    overrides: dict[str, str] = {}
    for url in {event.webhook_url for event in events if event.webhook_url}:
        overrides[url] = await _override_endpoint(conn, project_id, url)
    now = utcnow()
    event_rows: list[dict[str, Any]] = []
    jobs: list[NewJob] = []
    for event in events:
        targets = [
            e["id"]
            for e in endpoints
            if e["kind"] == repo.ENDPOINT and subscribed(e["event_types"], event.type)
        ]
        formatted = bool(event.webhook_url and event.webhook_format)
        if event.webhook_url and not formatted:
            targets.append(overrides[event.webhook_url])
        if not targets and not formatted:
            continue
        event_id = new_id("evt")
        payload = {
            "id": event_id,
            "type": event.type,
            "created_at": timestamp(now),
            "data": dict(event.data),
        }
        if targets:
            event_rows.append(_event_row(event_id, project_id, event.type, payload, now))
            jobs.extend(_jobs(event_id, targets))
        if event.webhook_url and event.webhook_format:
            # The URL gets its own stored event: the body its format makes of this one.
            shaped = formats.apply(event.webhook_format, payload)
            if shaped is not None:
                own_id = new_id("evt")
                event_rows.append(_event_row(own_id, project_id, event.type, shaped, now))
                jobs.extend(_jobs(own_id, [overrides[event.webhook_url]]))
    if event_rows:
        await repo.insert_events(conn, event_rows)
        await queue.enqueue_many(conn, jobs)
    return len(jobs)


def _event_row(
    event_id: str, project_id: str, event_type: str, payload: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "id": event_id,
        "project_id": project_id,
        "type": event_type,
        "payload": dict(payload),
        "created_at": now,
    }


def _jobs(event_id: str, endpoint_ids: Iterable[str], *, resend: bool = False) -> list[NewJob]:
    extra = {"resend": True} if resend else {}
    return [
        NewJob(
            kind=DELIVER_JOB,
            ref=event_id,
            payload={"event_id": event_id, "endpoint_id": endpoint_id, **extra},
            max_attempts=JOB_MAX_ATTEMPTS,
        )
        for endpoint_id in endpoint_ids
    ]


async def enqueue_delivery(
    conn: AsyncConnection, event_id: str, endpoint_id: str, *, resend: bool = False
) -> None:
    """Queue one more delivery of a stored event to an endpoint, due now.

    A ``resend`` is a single attempt: it is not retried when it fails.
    """
    await queue.enqueue_many(conn, _jobs(event_id, [endpoint_id], resend=resend))


async def cancel_deliveries(conn: AsyncConnection, endpoint_id: str) -> int:
    """Drop an endpoint's queued deliveries (caller's tx), when it is deleted or disabled.

    A delivery already claimed by a worker reads the endpoint again right before its attempt
    and is dropped there.
    """
    return await queue.cancel_by_payload(conn, DELIVER_JOB, "endpoint_id", endpoint_id)


async def emit_test(
    conn: AsyncConnection,
    project_id: str,
    endpoint_id: str,
    event_type: str,
    data: Mapping[str, Any],
) -> str:
    """A synthetic event (``"test": true`` in its payload) for one endpoint only; returns its
    id. It is stored and delivered (signed, logged) like any other."""
    now = utcnow()
    event_id = new_id("evt")
    payload = {
        "id": event_id,
        "type": event_type,
        "created_at": timestamp(now),
        "data": dict(data),
        "test": True,
    }
    await repo.insert_events(conn, [_event_row(event_id, project_id, event_type, payload, now)])
    await queue.enqueue_many(conn, _jobs(event_id, [endpoint_id]))
    return event_id


async def _override_endpoint(conn: AsyncConnection, project_id: str, url: str) -> str:
    """The id of the project's implicit endpoint for a per-send ``webhook_url``."""
    found = await repo.find_override(conn, project_id, url)
    if found is not None:
        if found["disabled_at"] is not None:
            # Re-enabled by being used again: the customer asked for this URL on a new send.
            await repo.update_endpoint(
                conn, found["id"], {"disabled_at": None, "disabled_reason": None}
            )
        return str(found["id"])
    await ensure_project_secret(conn, project_id)
    now = utcnow()
    endpoint_id = endpoint_id_new()
    await repo.insert_endpoint(
        conn,
        {
            "id": endpoint_id,
            "project_id": project_id,
            "kind": repo.OVERRIDE,
            "url": url,
            "description": "per-send webhook_url",
            "event_types": [],
            "secret": None,
            "previous_secret": None,
            "previous_secret_expires_at": None,
            "disabled_at": None,
            "disabled_reason": None,
            "deleted_at": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    return endpoint_id


async def ensure_project_secret(conn: AsyncConnection, project_id: str) -> Row:
    """The project's signing secret for per-send ``webhook_url`` deliveries (made on demand)."""
    row = await repo.get_project_secret(conn, project_id)
    if row is None:
        values = {
            "project_id": project_id,
            "secret": signing.new_secret(),
            "previous_secret": None,
            "previous_secret_expires_at": None,
            "created_at": utcnow(),
        }
        await repo.insert_project_secret(conn, values)
        return values
    return row
