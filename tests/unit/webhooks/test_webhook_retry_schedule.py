"""The retry schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h ..., jittered."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentsms.config import Settings
from agentsms.webhooks.delivery import JITTER, retry_delay

DEFAULT = Settings().webhook_retry_schedule


def test_default_schedule_and_limit_match_the_spec() -> None:
    assert DEFAULT == [5, 300, 1800, 7200, 18000, 36000]
    assert Settings().webhook_max_attempts == 8
    assert Settings().webhook_timeout_seconds == 15


@pytest.mark.parametrize(
    ("attempt", "base"),
    [(1, 5), (2, 300), (3, 1800), (4, 7200), (5, 18000), (6, 36000), (7, 36000), (20, 36000)],
)
def test_delay_after_each_attempt_is_the_schedule_with_jitter(attempt: int, base: float) -> None:
    delays = {retry_delay(attempt, DEFAULT) for _ in range(200)}
    assert all(base * (1 - JITTER) <= d <= base * (1 + JITTER) for d in delays)
    assert len(delays) > 1  # jittered, not a constant


def test_schedule_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSMS_WEBHOOK_RETRY_SCHEDULE", "[1, 2.5]")
    monkeypatch.setenv("AGENTSMS_WEBHOOK_MAX_ATTEMPTS", "3")
    settings = Settings()
    assert settings.webhook_retry_schedule == [1, 2.5]
    assert settings.webhook_max_attempts == 3
    monkeypatch.setenv("AGENTSMS_WEBHOOK_RETRY_SCHEDULE", "[-1]")
    with pytest.raises(ValidationError):
        Settings()


def test_an_empty_schedule_retries_at_once() -> None:
    assert retry_delay(3, []) == 0.0
