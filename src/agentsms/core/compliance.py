"""Compliance: opt-out, opt-in and help keywords, the opt-out list, quiet hours.

Project settings (``PATCH /v1/project``) that tune it: ``opt_out_keywords``,
``opt_in_keywords``, ``help_keywords`` (lists of single words), ``opt_out_message``,
``opt_in_message``, ``help_message`` (texts) and ``quiet_hours``
(``{"start": "21:00", "end": "08:00", "timezone": "America/New_York"}``; the zone is
optional and derived from the recipient's number when absent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

from agentsms.core.errors import FieldError

RECIPIENT_OPTED_OUT = "RECIPIENT_OPTED_OUT"
COMPLIANCE = "compliance"
OPTED_OUT_REASON = "has opted out of messages from this project"

OPT_OUT_KEYWORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT")
OPT_IN_KEYWORDS = ("START", "YES", "UNSTOP")
HELP_KEYWORDS = ("HELP", "INFO")
OPT_OUT_MESSAGE = (
    "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
)
OPT_IN_MESSAGE = "You have been resubscribed. Reply STOP to unsubscribe."
HELP_MESSAGE = "Reply STOP to unsubscribe. Msg&data rates may apply."

SETTINGS_KEYS = (
    "opt_out_keywords",
    "opt_in_keywords",
    "help_keywords",
    "opt_out_message",
    "opt_in_message",
    "help_message",
    "quiet_hours",
)
Keyword = Literal["opt_out", "opt_in", "help"]
_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def classify(body: str, settings: Mapping[str, Any]) -> Keyword | None:
    """The compliance keyword a text is, if it is exactly one (any case, trimmed)."""
    word = body.strip().upper()
    if not word or any(ch.isspace() for ch in word):
        return None
    lists: tuple[tuple[Keyword, str, Sequence[str]], ...] = (
        ("opt_out", "opt_out_keywords", OPT_OUT_KEYWORDS),
        ("opt_in", "opt_in_keywords", OPT_IN_KEYWORDS),
        ("help", "help_keywords", HELP_KEYWORDS),
    )
    for kind, key, default in lists:
        if word in {w.upper() for w in settings.get(key) or default}:
            return kind
    return None


def default_keywords(kind: Keyword) -> tuple[str, ...]:
    """The keywords of ``kind`` a project has when its settings name none."""
    return {"opt_out": OPT_OUT_KEYWORDS, "opt_in": OPT_IN_KEYWORDS, "help": HELP_KEYWORDS}[kind]


def message_for(kind: Keyword, settings: Mapping[str, Any]) -> str:
    defaults = {"opt_out": OPT_OUT_MESSAGE, "opt_in": OPT_IN_MESSAGE, "help": HELP_MESSAGE}
    return str(settings.get(f"{kind}_message") or defaults[kind])


def setting_problem(key: str, value: Any) -> str | None:
    """Why a compliance project setting is invalid, or ``None``."""
    if key.endswith("_keywords"):
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(w, str) and w.strip() and " " not in w.strip() for w in value)
        ):
            return "must be a non-empty list of single words"
        return None
    if key.endswith("_message"):
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty text"
        return None
    if key == "quiet_hours":
        return quiet_hours_problem(value)
    return "unknown setting"


def opted_out_fields(
    rows: Sequence[Mapping[str, Any]], prefixes: Sequence[str], opted_out: set[str]
) -> list[FieldError]:
    """An error naming ``<prefix>to`` for each row whose recipient opted out (compliance
    answers excepted)."""
    if not opted_out:
        return []
    return [
        FieldError(f"{prefix}to", f"{row['to_number']} {OPTED_OUT_REASON}")
        for row, prefix in zip(rows, prefixes, strict=True)
        if row["to_number"] in opted_out and row.get("purpose") != COMPLIANCE
    ]


# --- quiet hours -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Sends to a person are deferred while their local clock is in [start, end)."""

    start: clock_time
    end: clock_time
    timezone: str | None = None


def quiet_hours_problem(value: Any) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        return 'must be an object like {"start": "21:00", "end": "08:00"} or false'
    for key in ("start", "end"):
        if not isinstance(value.get(key), str) or not _HH_MM.match(value[key]):
            return f"{key} must be a time HH:MM"
    if value["start"] == value["end"]:
        return "start and end must differ"
    zone = value.get("timezone")
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            return f"unknown time zone {zone!r}"
    unknown = set(value) - {"start", "end", "timezone"}
    if unknown:
        return f"unknown key {sorted(unknown)[0]!r}; allowed: start, end, timezone"
    return None


def parse_quiet_hours(value: Any) -> QuietHours | None:
    if not isinstance(value, Mapping) or quiet_hours_problem(value) is not None:
        return None
    start_h, start_m = (int(x) for x in value["start"].split(":"))
    end_h, end_m = (int(x) for x in value["end"].split(":"))
    return QuietHours(clock_time(start_h, start_m), clock_time(end_h, end_m), value.get("timezone"))


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


def _quiet_at(local: datetime, quiet: QuietHours) -> bool:
    now = local.time()
    if quiet.start < quiet.end:
        return quiet.start <= now < quiet.end
    return now >= quiet.start or now < quiet.end


def _end_of_quiet(moment: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    local = moment.astimezone(zone)
    if not _quiet_at(local, quiet):
        return moment
    candidate = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + timedelta(days=1)).replace(
            hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0
        )
    return candidate.astimezone(UTC)


def next_allowed(moment: datetime, recipient: str, quiet: QuietHours) -> datetime:
    """``moment`` itself, or the first time after it outside quiet hours for the recipient.

    A number whose country spans several zones gets a time allowed in all of them (when
    there is one within a few steps).
    """
    zones = [ZoneInfo(quiet.timezone)] if quiet.timezone else zones_for(recipient)
    current = moment
    for _ in range(len(zones) + 2):
        later = max(_end_of_quiet(current, zone, quiet) for zone in zones)
        if later == current:
            break
        current = later
    return current
