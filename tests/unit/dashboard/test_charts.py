"""The hourly chart's geometry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentsms.core.stats import Hour
from agentsms.dashboard.charts import hourly


def test_bars_stack_by_status_and_scale_to_the_busiest_hour() -> None:
    start = datetime(2026, 11, 29, tzinfo=UTC)
    hours = [
        Hour(start, {"delivered": 3, "failed": 1}),
        Hour(start + timedelta(hours=1), {}),
        Hour(start + timedelta(hours=2), {"queued": 2}),
    ]
    chart = hourly(hours)
    assert chart.peak == 4
    first, empty, third = chart.bars
    assert [s.status for s in first.segments] == ["delivered", "failed"]
    assert sum(s.height for s in first.segments) == chart.plot_height
    assert first.segments[0].y + first.segments[0].height == chart.plot_height
    assert empty.segments == []
    assert third.segments[0].height == chart.plot_height / 2
    assert [b.label for b in chart.bars] == ["00", "01", "02"]
    assert chart.statuses == ["delivered", "queued", "failed"]


def test_no_traffic_draws_no_bars() -> None:
    chart = hourly([Hour(datetime(2026, 11, 29, tzinfo=UTC), {})])
    assert chart.peak == 0
    assert chart.bars[0].segments == []
