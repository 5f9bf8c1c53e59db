"""The capped backoff of loops that keep failing, and which errors mean "database unavailable"."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc

from agentsms.jobs.backoff import Backoff, is_unavailable


def test_delays_double_up_to_the_cap_and_start_over_after_a_success() -> None:
    backoff = Backoff(first=0.1, cap=1.0)
    assert [backoff.next_delay() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def _wrapped(driver_error: Exception) -> exc.DBAPIError:
    try:
        raise exc.DBAPIError("SELECT 1", None, driver_error) from driver_error
    except exc.DBAPIError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        _wrapped(sqlite3.OperationalError("database is locked")),
        _wrapped(ConnectionResetError("connection reset")),
    ],
)
def test_connection_level_errors_count_as_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize("error", [ValueError("bad"), _wrapped(sqlite3.IntegrityError("dup"))])
def test_bugs_and_data_errors_do_not(error: BaseException) -> None:
    assert not is_unavailable(error)
