"""Compliance rules without a database: keywords and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agentsms.core.compliance import (
    QuietHours,
    classify,
    next_allowed,
    parse_quiet_hours,
    quiet_hours_problem,
    zones_for,
)

QUIET = QuietHours(start=datetime(2000, 1, 1, 21).time(), end=datetime(2000, 1, 1, 8).time())


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("STOP", "opt_out"),
        ("  stop\n", "opt_out"),
        ("Unsubscribe", "opt_out"),
        ("optout", "opt_out"),
        ("start", "opt_in"),
        ("YES", "opt_in"),
        ("unstop", "opt_in"),
        ("help", "help"),
        ("Info", "help"),
        ("stop it", None),
        ("yes please", None),
        ("", None),
        ("STOP.", None),
    ],
)
def test_classify_exact_single_words_any_case(text: str, kind: str | None) -> None:
    assert classify(text, {}) == kind


def test_configured_keywords_replace_the_defaults() -> None:
    settings = {"opt_out_keywords": ["arret"], "help_keywords": ["aide"]}
    assert classify("ARRET", settings) == "opt_out"
    assert classify("STOP", settings) is None
    assert classify("aide", settings) == "help"


def test_the_zone_comes_from_the_number() -> None:
    assert zones_for("+14155552671") == [ZoneInfo("America/Los_Angeles")]
    assert zones_for("+442071234567") == [ZoneInfo("Europe/London")]


def test_a_send_at_night_in_los_angeles_waits_for_8am_there() -> None:
    # 23:30 in Los Angeles on 15 Jan 2026 (UTC-8) is 07:30 UTC on the 16th.
    night = datetime(2026, 1, 16, 7, 30, tzinfo=UTC)
    allowed = next_allowed(night, "+14155552671", QUIET)
    assert allowed == datetime(2026, 1, 16, 8, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    # Mid-afternoon there: unchanged.
    day = datetime(2026, 1, 16, 22, 0, tzinfo=UTC)
    assert next_allowed(day, "+14155552671", QUIET) == day
    # The same moment for a London number is 07:30 in London: wait until 08:00 London.
    assert next_allowed(night, "+442071234567", QUIET) == datetime(2026, 1, 16, 8, 0, tzinfo=UTC)


def test_an_explicit_zone_overrides_the_number() -> None:
    quiet = parse_quiet_hours({"start": "21:00", "end": "08:00", "timezone": "Asia/Tokyo"})
    assert quiet is not None
    # 23:00 UTC is 08:00 in Tokyo: allowed.
    moment = datetime(2026, 1, 16, 23, 0, tzinfo=UTC)
    assert next_allowed(moment, "+14155552671", quiet) == moment


@pytest.mark.parametrize(
    "value",
    [
        {"start": "9pm", "end": "08:00"},
        {"start": "21:00"},
        {"start": "21:00", "end": "21:00"},
        {"start": "21:00", "end": "08:00", "timezone": "Mars/Olympus"},
        {"start": "21:00", "end": "08:00", "zone": "UTC"},
        "21-08",
    ],
)
def test_bad_quiet_hours_are_explained(value: object) -> None:
    assert quiet_hours_problem(value) is not None
