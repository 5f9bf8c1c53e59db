"""The person's time zone: contact, conversation, configured zone, number, UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agentsms.core.compliance import next_allowed, parse_quiet_hours
from agentsms.core.conversations import quiet_until
from agentsms.core.zones import UnknownZone, metadata_zone, person_zones, zone_problem
from agentsms.store.records import DispatchMessage

NEW_YORK_NUMBER = "+12125550100"


def test_the_most_specific_known_zone_wins() -> None:
    everything = {
        "contact": "America/Los_Angeles",
        "conversation": "America/Chicago",
        "configured": "Europe/Paris",
    }
    assert person_zones(NEW_YORK_NUMBER, **everything) == [ZoneInfo("America/Los_Angeles")]
    del everything["contact"]
    assert person_zones(NEW_YORK_NUMBER, **everything) == [ZoneInfo("America/Chicago")]
    del everything["conversation"]
    assert person_zones(NEW_YORK_NUMBER, **everything) == [ZoneInfo("Europe/Paris")]
    assert person_zones(NEW_YORK_NUMBER) == [ZoneInfo("America/New_York")]
    assert person_zones(None) == [ZoneInfo("UTC")]


def test_a_name_that_is_no_zone_is_passed_over_or_refused() -> None:
    assert person_zones(NEW_YORK_NUMBER, conversation="Mars/Olympus") == [
        ZoneInfo("America/New_York")
    ]
    with pytest.raises(UnknownZone):
        person_zones(NEW_YORK_NUMBER, conversation="Mars/Olympus", strict=True)


@pytest.mark.parametrize("name", ["America/Los_Angeles", "UTC", "Asia/Kolkata"])
def test_iana_names_are_zones(name: str) -> None:
    assert zone_problem(name) is None


@pytest.mark.parametrize("name", ["", "Mars/Olympus", " UTC", "../etc/passwd", 3, "x" * 65])
def test_other_names_are_explained(name: object) -> None:
    assert zone_problem(name)


def test_metadata_names_a_zone_only_as_a_string() -> None:
    assert metadata_zone({"timezone": "Asia/Tokyo"}) == "Asia/Tokyo"
    assert metadata_zone({"timezone": 9}) is None
    assert metadata_zone(None) is None


QUIET = parse_quiet_hours({"start": "21:00", "end": "08:00"})
# 03:00 UTC on 16 Jan 2026: 22:00 in New York (quiet), 19:00 in Los Angeles (not).
EVENING = datetime(2026, 1, 16, 3, 0, tzinfo=UTC)


def test_quiet_hours_are_kept_in_the_contacts_zone() -> None:
    assert QUIET is not None
    assert next_allowed(EVENING, NEW_YORK_NUMBER, QUIET) == datetime(
        2026, 1, 16, 8, 0, tzinfo=ZoneInfo("America/New_York")
    )
    assert next_allowed(EVENING, NEW_YORK_NUMBER, QUIET, contact_zone="America/Los_Angeles") == (
        EVENING
    )
    assert (
        next_allowed(EVENING, NEW_YORK_NUMBER, QUIET, conversation_zone="America/Los_Angeles")
        == EVENING
    )


def test_dispatch_defers_by_the_contacts_zone() -> None:
    blank = dict.fromkeys(DispatchMessage._fields)
    # A Los Angeles number.
    message = DispatchMessage(**(blank | {"to_number": "+14155550100", "purpose": "api"}))
    project = {"quiet_hours": {"start": "21:00", "end": "08:00"}}
    assert quiet_until(message, project, {}, {}, EVENING) is None
    deferred = quiet_until(message, project, {}, {}, EVENING, contact_zone="America/New_York")
    assert deferred == datetime(2026, 1, 16, 8, 0, tzinfo=ZoneInfo("America/New_York"))
