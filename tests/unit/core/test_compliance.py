"""Compliance rules without a database: keywords and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agentsms.core.compliance import (
    QuietHours,
    classify,
    maybe_opt_out,
    next_allowed,
    parse_quiet_hours,
    quiet_hours_problem,
    setting_problem,
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
        ("", None),
        # normalised: punctuation around it, padding, case, width, invisible characters
        ("Stop.", "opt_out"),
        ("stop!", "opt_out"),
        ("STOP please", "opt_out"),
        ("stop it", "opt_out"),
        ("unsubscribe me", "opt_out"),
        ("opt out", "opt_out"),
        ("opt-out", "opt_out"),
        ("OPT-OUT", "opt_out"),
        ("\uff33\uff34\uff2f\uff30", "opt_out"),  # full-width STOP
        ("S\u200bTOP", "opt_out"),
        ("\ufeffquit", "opt_out"),
        ("END.", "opt_out"),
        ("revoke", "opt_out"),
        ("please stop texting me", "opt_out"),
        ("remove me from this list", "opt_out"),
        ("take me off your list", "opt_out"),
        ("don't text me anymore", "opt_out"),
        ("no more texts please", "opt_out"),
        ("Help!", "help"),
        ("help me", "help"),
        ("INFO?", "help"),
        ("yes please", "opt_in"),
        # CANCEL: only the bare word opts out; with words it is about the appointment
        ("cancel", "opt_out"),
        ("CANCEL.", "opt_out"),
        ("please cancel", None),
        ("cancel it", None),
        ("cancel my appointment", None),
        ("cancel these texts", "opt_out"),
        # a keyword in another sense
        ("I'll stop by at 3", None),
        ("cancel? no way, I'll be there", None),
        ("I need help rescheduling", None),
        ("see you at the end of the day", None),
    ],
)
def test_classify_keywords_as_people_type_them(text: str, kind: str | None) -> None:
    assert classify(text, {}) == kind


def test_configured_keywords_replace_the_defaults() -> None:
    settings = {"opt_out_keywords": ["arret", "no more"], "help_keywords": ["aide"]}
    assert classify("ARRET", settings) == "opt_out"
    assert classify("Arret!", settings) == "opt_out"
    assert classify("No more!", settings) == "opt_out"
    assert classify("nomore please", settings) == "opt_out"
    assert classify("STOP", settings) is None
    assert classify("aide", settings) == "help"
    assert classify("please stop texting me", settings) == "opt_out"  # plainly revoking


@pytest.mark.parametrize(
    ("text", "unclear"),
    [
        ("no stop", True),
        ("stop. who is this", True),
        ("why won't you quit", True),
        ("I'll stop by at 3", False),
        ("see you at the end of the day", False),
        ("can't stop smiling, see you then", False),
        ("please cancel", False),
        ("stop texting me and call my lawyer about the bill from last week", False),
    ],
)
def test_short_texts_that_may_be_an_opt_out_are_asked_about(text: str, unclear: bool) -> None:
    assert classify(text, {}) is None
    assert maybe_opt_out(text, {}) is unclear


def test_keyword_settings_take_phrases() -> None:
    assert setting_problem("opt_out_keywords", ["opt out", "STOP"]) is None
    assert setting_problem("opt_out_keywords", ["  ", "STOP"]) is not None
    assert setting_problem("opt_out_keywords", []) is not None


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
