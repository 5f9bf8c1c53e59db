from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agentsms.core.events import SETTLE, SettleWindow

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def event(seq: int, age_seconds: float) -> dict[str, Any]:
    return {"seq": seq, "created_at": NOW - timedelta(seconds=age_seconds)}


def test_a_late_committing_event_is_still_sent_once() -> None:
    window = SettleWindow(floor=0)
    first = window.take([event(1, 0.1), event(3, 0.1)], NOW)
    assert [row["seq"] for row in first] == [1, 3]
    # seq 2 commits after 3 was read: the next poll still finds and sends it, once.
    second = window.take([event(1, 0.3), event(2, 0.2), event(3, 0.3)], NOW)
    assert [row["seq"] for row in second] == [2]
    assert window.floor == 0


def test_floor_moves_past_settled_events_only() -> None:
    old = SETTLE.total_seconds() + 1
    window = SettleWindow(floor=10)
    sent = window.take([event(11, old), event(12, old), event(13, 0.5)], NOW)
    assert [row["seq"] for row in sent] == [11, 12, 13]
    assert window.floor == 12
    assert window.sent == {13}
    assert window.take([event(13, 0.6)], NOW) == []
