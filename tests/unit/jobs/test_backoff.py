from __future__ import annotations

import email.utils
import time

from agentsms.jobs.backoff import retry_after_seconds, retry_delay


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


def test_retry_after_reads_seconds_and_http_dates_within_the_cap() -> None:
    assert retry_after_seconds("120", cap=3600) == 120
    assert retry_after_seconds(" 1.5 ", cap=3600) == 1.5
    assert retry_after_seconds("-5", cap=3600) == 0
    assert retry_after_seconds("86400", cap=3600) == 3600
    assert retry_after_seconds("inf", cap=3600) == 3600
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 58 <= (retry_after_seconds(in_a_minute, cap=3600) or 0) <= 60
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after_seconds(past, cap=3600) == 0
    far = email.utils.formatdate(time.time() + 7 * 86400, usegmt=True)
    assert retry_after_seconds(far, cap=3600) == 3600
    for unreadable in (None, "", "soon", "nan", "Wed, 99 Foo 2026 00:00:00 GMT"):
        assert retry_after_seconds(unreadable, cap=3600) is None
