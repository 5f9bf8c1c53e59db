"""The overview figures: messages per hour by status, delivery rate, time to delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import statuses
from agentsms.store.repositories import messages as repo

MAX_ROWS = 100_000
FAILED_STATUSES = (statuses.UNDELIVERED, statuses.FAILED, statuses.EXPIRED)


@dataclass(frozen=True, slots=True)
class Hour:
    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Overview:
    """Outbound traffic of the last ``len(hours)`` hours (the newest ``MAX_ROWS`` at most)."""

    hours: list[Hour]
    total: int
    delivered: int
    failed: int
    delivery_rate: float | None
    median_seconds: float | None
    p95_seconds: float | None
    truncated: bool


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


async def overview(
    conn: AsyncConnection, project_id: str, now: datetime, *, hours: int = 24
) -> Overview:
    """Per-hour counts by current status, the share delivered among messages that reached a
    final carrier answer, and the median and p95 time from acceptance to delivery."""
    top = now.replace(minute=0, second=0, microsecond=0)
    since = top - timedelta(hours=hours - 1)
    rows = await repo.outbound_timings(conn, project_id, since, MAX_ROWS + 1)
    truncated = len(rows) > MAX_ROWS
    buckets = [Hour(since + timedelta(hours=i), {}) for i in range(hours)]
    durations: list[float] = []
    delivered = failed = 0
    for row in rows[:MAX_ROWS]:
        index = int((row["created_at"] - since).total_seconds() // 3600)
        if 0 <= index < hours:
            counts = buckets[index].counts
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        if row["status"] == statuses.DELIVERED:
            delivered += 1
            if row["delivered_at"] is not None:
                durations.append((row["delivered_at"] - row["created_at"]).total_seconds())
        elif row["status"] in FAILED_STATUSES:
            failed += 1
    durations.sort()
    answered = delivered + failed
    return Overview(
        hours=buckets,
        total=min(len(rows), MAX_ROWS),
        delivered=delivered,
        failed=failed,
        delivery_rate=delivered / answered if answered else None,
        median_seconds=percentile(durations, 0.5),
        p95_seconds=percentile(durations, 0.95),
        truncated=truncated,
    )
