"""Chart geometry for server-rendered SVG (the template draws what these compute)."""

from __future__ import annotations

from dataclasses import dataclass

from agentsms.core import statuses
from agentsms.core.stats import Hour

WIDTH = 720
HEIGHT = 200
AXIS = 24  # room below the bars for hour labels
STACK_ORDER = (
    statuses.DELIVERED,
    statuses.SENT,
    statuses.SENDING,
    statuses.QUEUED,
    statuses.SCHEDULED,
    statuses.UNDELIVERED,
    statuses.FAILED,
    statuses.EXPIRED,
    statuses.CANCELED,
)


@dataclass(frozen=True, slots=True)
class Segment:
    status: str
    count: int
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    label: str
    total: int
    segments: list[Segment]


@dataclass(frozen=True, slots=True)
class StackedBars:
    width: int
    height: int
    plot_height: int
    peak: int
    bars: list[Bar]
    statuses: list[str]


def hourly(hours: list[Hour]) -> StackedBars:
    """One bar per hour, stacked by status, scaled to the busiest hour."""
    plot = HEIGHT - AXIS
    peak = max((hour.total for hour in hours), default=0)
    slot = WIDTH / max(len(hours), 1)
    bars: list[Bar] = []
    seen: set[str] = set()
    for index, hour in enumerate(hours):
        y = float(plot)
        segments: list[Segment] = []
        order = [*STACK_ORDER, *(s for s in hour.counts if s not in STACK_ORDER)]
        for status in order:
            count = hour.counts.get(status, 0)
            if not count:
                continue
            seen.add(status)
            height = plot * count / peak
            y -= height
            segments.append(Segment(status, count, round(y, 2), round(height, 2)))
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                label=hour.start.strftime("%H"),
                total=hour.total,
                segments=segments,
            )
        )
    legend = [s for s in (*STACK_ORDER, *sorted(seen)) if s in seen]
    return StackedBars(WIDTH, HEIGHT, plot, peak, bars, list(dict.fromkeys(legend)))
