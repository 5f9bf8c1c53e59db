from __future__ import annotations

from agentsms.jobs.backoff import retry_delay


def test_delay_grows_exponentially_within_jitter() -> None:
    for attempt in range(1, 6):
        ceiling = 2.0 * 2 ** (attempt - 1)
        for _ in range(50):
            delay = retry_delay(attempt, base=2.0, cap=1000.0)
            assert ceiling / 2 <= delay <= ceiling


def test_delay_is_capped() -> None:
    assert all(retry_delay(40, base=2.0, cap=60.0) <= 60.0 for _ in range(50))


def test_retry_after_is_a_floor() -> None:
    assert all(retry_delay(1, base=0.1, cap=1.0, retry_after=30.0) == 30.0 for _ in range(10))
