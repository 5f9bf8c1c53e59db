"""Reading date/time phrases out of text messages, relative to when the person wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agentsms.agents.datetimes import find_datetime

SUNDAY_4PM_NEW_YORK = datetime(2026, 11, 29, 21, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("text", "iso", "readable"),
    [
        (
            "how about thursday at 3pm",
            "2026-12-03T15:00:00-05:00",
            "Thursday, December 3 at 3:00 PM",
        ),
        ("Thurs at 3", "2026-12-03T15:00:00-05:00", "Thursday, December 3 at 3:00 PM"),
        (
            "can we move it to friday 10am?",
            "2026-12-04T10:00:00-05:00",
            "Friday, December 4 at 10:00 AM",
        ),
        ("we could do wed 9am", "2026-12-02T09:00:00-05:00", "Wednesday, December 2 at 9:00 AM"),
        ("3pm", "2026-11-30T15:00:00-05:00", "Monday, November 30 at 3:00 PM"),  # 3pm has passed
        ("tonight at 8", "2026-11-29T20:00:00-05:00", "Sunday, November 29 at 8:00 PM"),
        ("tmrw at 10", "2026-11-30T10:00:00-05:00", "Monday, November 30 at 10:00 AM"),
        ("tomorrow at 9:30am", "2026-11-30T09:30:00-05:00", "Monday, November 30 at 9:30 AM"),
        ("at 4 o'clock on friday", "2026-12-04T16:00:00-05:00", "Friday, December 4 at 4:00 PM"),
        ("friday 9:45", "2026-12-04T09:45:00-05:00", "Friday, December 4 at 9:45 AM"),
        ("the 5th at noon", "2026-12-05T12:00:00-05:00", "Saturday, December 5 at 12:00 PM"),
        ("12/10 2pm", "2026-12-10T14:00:00-05:00", "Thursday, December 10 at 2:00 PM"),
        ("Dec 10th, 2:30", "2026-12-10T14:30:00-05:00", "Thursday, December 10 at 2:30 PM"),
        ("may 5 10am", "2027-05-05T10:00:00-04:00", "Wednesday, May 5 at 10:00 AM"),
        ("wednesday", "2026-12-02", "Wednesday, December 2"),
        ("monday works", "2026-11-30", "Monday, November 30"),
        ("tomorrow", "2026-11-30", "Monday, November 30"),
    ],
)
def test_phrases(text: str, iso: str, readable: str) -> None:
    assert find_datetime(text, SUNDAY_4PM_NEW_YORK, NEW_YORK) == (iso, readable)


@pytest.mark.parametrize(
    "text",
    ["I need to reschedule", "dunno", "whenever", "may I change it", "yes", "r", "we will see"],
)
def test_no_date_in_the_text(text: str) -> None:
    assert find_datetime(text, SUNDAY_4PM_NEW_YORK, NEW_YORK) is None


def test_the_zone_decides_the_day_and_offset() -> None:
    # 21:00 UTC is already Monday 06:00 in Tokyo: "tomorrow" is Tuesday there.
    assert find_datetime("tomorrow at 9am", SUNDAY_4PM_NEW_YORK, ZoneInfo("Asia/Tokyo")) == (
        "2026-12-01T09:00:00+09:00",
        "Tuesday, December 1 at 9:00 AM",
    )


def test_a_phrase_read_again_is_the_same_answer_relative_to_its_own_moment() -> None:
    """Answers are kept per (text, moment, zone): the same moment in another zone's clock is
    the same moment, another moment is read afresh."""
    first = find_datetime("tomorrow at 10", SUNDAY_4PM_NEW_YORK, NEW_YORK)
    again = find_datetime("tomorrow at 10", SUNDAY_4PM_NEW_YORK.astimezone(NEW_YORK), NEW_YORK)
    assert first == again == ("2026-11-30T10:00:00-05:00", "Monday, November 30 at 10:00 AM")
    a_day_later = SUNDAY_4PM_NEW_YORK.replace(day=30)
    assert find_datetime("tomorrow at 10", a_day_later, NEW_YORK) == (
        "2026-12-01T10:00:00-05:00",
        "Tuesday, December 1 at 10:00 AM",
    )
    # Already Monday morning in Tokyo: tomorrow is Tuesday there.
    assert find_datetime("tomorrow at 10", SUNDAY_4PM_NEW_YORK, ZoneInfo("Asia/Tokyo")) == (
        "2026-12-01T10:00:00+09:00",
        "Tuesday, December 1 at 10:00 AM",
    )
