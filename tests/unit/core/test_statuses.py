from __future__ import annotations

from agentsms.core import statuses


def test_statuses_only_move_forward() -> None:
    assert statuses.before(statuses.SENDING) == (statuses.SCHEDULED, statuses.QUEUED)
    assert statuses.SENT not in statuses.before(statuses.SENT)
    assert set(statuses.before(statuses.DELIVERED)) == {
        statuses.SCHEDULED,
        statuses.QUEUED,
        statuses.SENDING,
        statuses.SENT,
    }


def test_final_statuses_never_move() -> None:
    for final in statuses.FINAL:
        for target in statuses.ALL:
            assert final not in statuses.before(target)
