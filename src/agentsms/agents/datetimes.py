"""Reading a date/time phrase out of a text message ("can we do thurs at 3?").

``dateparser`` does the parsing; this module prepares SMS-style text for it and picks
the answer. Decisions (deterministic, relative to the time the person wrote):

- abbreviations people text are expanded (``thurs``, ``tues``, ``weds``, ``tmrw``);
- a bare hour is read as a business hour: 1-7 → PM, 8-11 → AM, 12 → noon; with
  ``tonight``/``evening``/``afternoon`` in the text it is PM;
- ``the 5th`` is the next 5th of a month (this month or the next);
- ``next tuesday`` is the Tuesday of next week (weeks start on Monday): said on a Monday
  it is eight days later, not tomorrow;
- a time earlier today without a day named (``3pm`` at 4 PM) means tomorrow;
- a phrase with a time gives an ISO datetime with offset in the zone; a bare day gives an
  ISO date.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_ABBREVIATIONS = [
    (re.compile(r"\bthu(?:rs?)?\b"), "thursday"),
    (re.compile(r"\btue(?:s)?\b"), "tuesday"),
    (re.compile(r"\bweds?\b"), "wednesday"),
    (re.compile(r"\b(?:tmrw?|tmr|tomoz|2morrow)\b"), "tomorrow"),
]
_PM_CONTEXT = re.compile(r"\b(?:tonight|evening|afternoon|night)\b")
_MERIDIEM = r"(?![\d:])(?!\s*(?:am|pm|a\.m|p\.m))"
_BARE_HOUR = re.compile(r"\b(at|@|around|by|about)\s+(\d{1,2})(?::(\d{2}))?" + _MERIDIEM)
_BARE_CLOCK = re.compile(r"(?<![\d/.:-])(\d{1,2}):(\d{2})" + _MERIDIEM)
_OCLOCK = re.compile(r"\s*o'?clock\b")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NEXT_WEEKDAY = re.compile(r"\bnext\s+(" + "|".join(_WEEKDAYS) + r")\b")
_ORDINAL_DAY = re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b(?!\s+of\b)")
_HAS_TIME = re.compile(
    r"\d\s*(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}:\d{2}|\b(?:noon|midday|midnight|morning|"
    r"afternoon|evening|tonight|o'?clock|hours?|minutes?)\b"
)
_TODAY = re.compile(r"\b(?:today|tonight|now|hours?|minutes?)\b")
# Single words that date parsers read as dates but people rarely mean as one.
_NOT_DATES = frozenset(
    {"we", "may", "mar", "march", "sat", "sun", "mon", "now", "second", "a", "i", "on", "at"}
)


def _meridiem(hour: int, pm_context: bool) -> str:
    if pm_context or 1 <= hour <= 7 or hour == 12:
        return "pm"
    return "am"


def _prepare(text: str, base: datetime) -> str:
    text = " ".join(text.casefold().replace("\u2019", "'").split())
    for pattern, replacement in _ABBREVIATIONS:
        text = pattern.sub(replacement, text)
    text = _OCLOCK.sub("", text)
    pm_context = _PM_CONTEXT.search(text) is not None

    def bare_hour(match: re.Match[str]) -> str:
        hour = int(match.group(2))
        if not 1 <= hour <= 12:
            return match.group(0)
        minutes = match.group(3) or "00"
        return f"{match.group(1)} {hour}:{minutes}{_meridiem(hour, pm_context)}"

    def bare_clock(match: re.Match[str]) -> str:
        hour = int(match.group(1))
        if not 1 <= hour <= 12:
            return match.group(0)
        return f"{hour}:{match.group(2)}{_meridiem(hour, pm_context)}"

    def ordinal_day(match: re.Match[str]) -> str:
        day = int(match.group(1))
        if not 1 <= day <= 31:
            return match.group(0)
        year, month = base.year, base.month
        if day < base.day:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        try:
            return date(year, month, day).strftime("%B %d %Y").lower()
        except ValueError:
            return match.group(0)

    def next_weekday(match: re.Match[str]) -> str:
        next_monday = base.date() + timedelta(days=7 - base.weekday())
        day = next_monday + timedelta(days=_WEEKDAYS.index(match.group(1)))
        return f"{match.group(1)} {day.strftime('%B %d %Y').lower()}"

    text = _NEXT_WEEKDAY.sub(next_weekday, text)
    text = _BARE_HOUR.sub(bare_hour, text)
    text = _BARE_CLOCK.sub(bare_clock, text)
    return _ORDINAL_DAY.sub(ordinal_day, text)


def find_datetime(text: str, base: datetime, tz: ZoneInfo) -> tuple[str, str] | None:
    """The date/time phrase in ``text`` as ``(ISO 8601, readable text)``, relative to ``base``.

    ``base`` (aware) is when the person wrote; ``tz`` is the zone the phrase is meant in.
    Answers are kept (``FOUND_KEPT``): every turn of a conversation reads the time of the
    agent's same earlier texts again, and a reply's proposals may be read more than once.
    """
    return _find_datetime(text, base, tz)


FOUND_KEPT = 1024


@functools.lru_cache(maxsize=FOUND_KEPT)
def _find_datetime(text: str, base: datetime, tz: ZoneInfo) -> tuple[str, str] | None:
    import dateparser
    from dateparser.search import search_dates

    local_base = base.astimezone(tz).replace(tzinfo=None)
    prepared = _prepare(text, local_base)
    settings: dict[str, object] = {
        "RELATIVE_BASE": local_base,
        "PREFER_DATES_FROM": "future",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    candidates = [
        (phrase, value)
        for phrase, value in search_dates(prepared, languages=["en"], settings=settings) or []
        if phrase.strip(" ,.!?").casefold() not in _NOT_DATES
    ]
    if not candidates:
        whole = prepared.strip(" ,.!?")
        value = dateparser.parse(whole, languages=["en"], settings=settings)
        if value is None or whole in _NOT_DATES:
            return None
        candidates = [(whole, value)]
    phrase, value = max(candidates, key=lambda item: len(item[0]))
    if _HAS_TIME.search(phrase) is None:
        day: date = value.date()
        return day.isoformat(), f"{day:%A, %B} {day.day}"
    if value < local_base and value.date() == local_base.date() and not _TODAY.search(phrase):
        value += timedelta(days=1)
    return described(value.replace(tzinfo=tz))


def described(moment: datetime) -> tuple[str, str]:
    """``(ISO 8601 with offset, "Thursday, December 10 at 3:00 PM")`` for an aware time."""
    hour = moment.strftime("%I:%M %p").lstrip("0")
    return moment.isoformat(), f"{moment:%A, %B} {moment.day} at {hour}"
