"""A person's time zone: one rule for reading the times in their replies and for quiet hours.

Most specific first:

1. the project's contact for the person's number (``contacts.timezone``);
2. what the conversation says: its ``timezone`` metadata (for a flow agent, also a
   ``timezone`` flow variable or an extract node's own ``timezone``);
3. the zone the project configured for the purpose (the ``quiet_hours`` setting's
   ``timezone``, a pathway's ``timezone`` variable);
4. the zones the person's number implies (a country or area code spanning several zones
   gives several);
5. UTC.

A configured zone outranks the number because the operator wrote it knowing their
audience, while the number is a guess (people keep their numbers when they move); it does
not outrank what is known of the person.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

UTC_ZONE = ZoneInfo("UTC")
METADATA_KEY = "timezone"


class UnknownZone(ValueError):
    """A name that is not an IANA time zone."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown time zone {name!r}")
        self.name = name


def zone(name: object) -> ZoneInfo:
    """The IANA zone ``name``; :class:`UnknownZone` when there is none by that name."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownZone(name)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownZone(name) from None


def zone_problem(name: object) -> str | None:
    """Why ``name`` is not an IANA zone name (``"America/Los_Angeles"``), or ``None``."""
    if not isinstance(name, str) or not name.strip():
        return "must be an IANA time zone name such as America/New_York"
    if len(name) > 64:
        return "at most 64 characters"
    try:
        if name != name.strip():
            raise UnknownZone(name)
        zone(name)
    except UnknownZone:
        return f"unknown time zone {name!r}; use an IANA name such as America/New_York"
    return None


def zones_for(e164: str) -> list[ZoneInfo]:
    """The zones a phone number implies (UTC when the number says nothing)."""
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
    return zones or [UTC_ZONE]


def metadata_zone(metadata: Mapping[str, Any] | None) -> str | None:
    """The ``timezone`` a conversation's metadata names, if any."""
    value = (metadata or {}).get(METADATA_KEY)
    return value if isinstance(value, str) and value.strip() else None


def person_zones(
    number: str | None,
    *,
    contact: str | None = None,
    conversation: str | None = None,
    configured: str | None = None,
    strict: bool = False,
) -> list[ZoneInfo]:
    """The person's zones in the order of the module docstring: one zone when it is known
    (``contact``, ``conversation``, ``configured``), else those of ``number``, else UTC.

    A name that is not a zone is passed over, or raises :class:`UnknownZone` when
    ``strict`` (an agent reading a reply says so rather than guess).
    """
    for name in (contact, conversation, configured):
        if not name:
            continue
        try:
            return [zone(name)]
        except UnknownZone:
            if strict:
                raise
    return zones_for(number) if number else [UTC_ZONE]
