"""A phone number's time zones (for quiet hours and for dates a person writes)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

__all__ = ["zones_for"]


def zones_for(e164: str) -> list[ZoneInfo]:
    """The recipient's time zones, from the number (UTC when the number says nothing)."""
    try:
        names = phone_timezone.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        names = ()
    zones: list[ZoneInfo] = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return zones or [ZoneInfo("UTC")]
