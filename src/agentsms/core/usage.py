"""A project's usage: messages and webhook deliveries over time, per number and per agent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row
from agentsms.store.repositories import conversations as conversations_repo
from agentsms.store.repositories import message_usage as repo
from agentsms.store.repositories import webhooks as webhooks_repo

MAX_DAYS = 366
MAX_MONTHS = 36
MAX_DELIVERY_ROWS = 1000


@dataclass(frozen=True, slots=True)
class Summary:
    """Message counts (all time and the last 24 h / 7 d / 30 d), outbound segments of the
    last 30 days, and webhook delivery attempts by outcome."""

    messages_total: int
    messages_24h: int
    messages_7d: int
    messages_30d: int
    segments_30d: int
    deliveries: int
    deliveries_succeeded: int
    deliveries_failed: int


@dataclass(frozen=True, slots=True)
class Point:
    """One day (``YYYY-MM-DD``) or month (``YYYY-MM``)."""

    period: str
    messages: int
    webhooks: int


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Delivery attempts of a window: ``pending`` failed but have a retry scheduled."""

    total: int
    succeeded: int
    failed: int
    pending: int
    by_event_type: dict[str, int]
    by_hour: dict[str, int]


async def summary(conn: AsyncConnection, project_id: str, now: datetime) -> Summary:
    total, (day, week, month) = await repo.message_counts(
        conn, project_id, [now - timedelta(days=n) for n in (1, 7, 30)]
    )
    segments = await repo.outbound_segments_since(conn, project_id, now - timedelta(days=30))
    counts = await repo.delivery_status_counts(conn, project_id, None)
    succeeded = sum(n for (status, _), n in counts.items() if status == "succeeded")
    return Summary(
        messages_total=total,
        messages_24h=day,
        messages_7d=week,
        messages_30d=month,
        segments_30d=segments,
        deliveries=sum(counts.values()),
        deliveries_succeeded=succeeded,
        deliveries_failed=sum(counts.values()) - succeeded,
    )


async def daily(conn: AsyncConnection, project_id: str, now: datetime, days: int) -> list[Point]:
    """The last ``days`` UTC days (today included), oldest first."""
    days = max(1, min(days, MAX_DAYS))
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    sent = await repo.messages_per(conn, project_id, "day", start)
    hooks = await repo.deliveries_per(conn, project_id, "day", start)
    labels = [(start + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
    return [Point(label, sent.get(label, 0), hooks.get(label, 0)) for label in labels]


async def monthly(
    conn: AsyncConnection, project_id: str, now: datetime, months: int
) -> list[Point]:
    """The last ``months`` UTC calendar months (this one included), oldest first."""
    months = max(1, min(months, MAX_MONTHS))
    year, month = now.year, now.month
    labels: list[str] = []
    for _ in range(months):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    labels.reverse()
    first_year, first_month = (int(part) for part in labels[0].split("-"))
    start = now.replace(
        year=first_year, month=first_month, day=1, hour=0, minute=0, second=0, microsecond=0
    )
    sent = await repo.messages_per(conn, project_id, "month", start)
    hooks = await repo.deliveries_per(conn, project_id, "month", start)
    return [Point(label, sent.get(label, 0), hooks.get(label, 0)) for label in labels]


async def by_number(
    conn: AsyncConnection, project_id: str, since: datetime
) -> dict[str, dict[str, int]]:
    """Per sender number id: messages since ``since`` per direction."""
    return await repo.messages_by_number(conn, project_id, since)


async def by_persona(conn: AsyncConnection, project_id: str, since: datetime) -> dict[str, int]:
    """Per persona id (conversations that name one): messages since ``since``."""
    counts = await repo.messages_by_conversation(conn, project_id, since)
    settings = await conversations_repo.settings_by_ids(conn, list(counts))
    found: dict[str, int] = {}
    for conversation_id, n in counts.items():
        persona = (settings.get(conversation_id) or {}).get("persona_id")
        if persona is not None:
            found[str(persona)] = found.get(str(persona), 0) + n
    return found


async def delivery_stats(conn: AsyncConnection, project_id: str, since: datetime) -> DeliveryStats:
    """Webhook delivery attempts since ``since`` (by outcome, event type and hour)."""
    counts = await repo.delivery_status_counts(conn, project_id, since)
    rows = await repo.delivery_rows_since(conn, project_id, since, MAX_DELIVERY_ROWS)
    by_type: dict[str, int] = {}
    by_hour: dict[str, int] = {}
    for row in rows:
        by_type[row["event_type"]] = by_type.get(row["event_type"], 0) + 1
        hour = row["created_at"].replace(minute=0, second=0, microsecond=0).isoformat()
        by_hour[hour.replace("+00:00", "Z")] = by_hour.get(hour.replace("+00:00", "Z"), 0) + 1
    succeeded = sum(n for (status, _), n in counts.items() if status == "succeeded")
    pending = sum(
        n for (status, retrying), n in counts.items() if status != "succeeded" and retrying
    )
    return DeliveryStats(
        total=sum(counts.values()),
        succeeded=succeeded,
        failed=sum(counts.values()) - succeeded - pending,
        pending=pending,
        by_event_type=by_type,
        by_hour=by_hour,
    )


async def delivery_events(conn: AsyncConnection, event_ids: Sequence[str]) -> dict[str, Row]:
    """The stored webhook events of those ids."""
    return await webhooks_repo.events_by_ids(conn, list(event_ids))


async def deliveries(
    conn: AsyncConnection, project_id: str, since: datetime | None, limit: int, offset: int
) -> tuple[Sequence[Row], dict[str, Row]]:
    """The project's newest delivery attempts (``limit`` from ``offset``) and their events."""
    rows = await repo.delivery_rows_since(conn, project_id, since, limit + offset)
    page = rows[offset : offset + limit]
    events = await webhooks_repo.events_by_ids(conn, list({row["event_id"] for row in page}))
    return page, events
