"""Compliance: opt-out, opt-in and help keywords, the opt-out list, quiet hours.

Project settings (``PATCH /v1/project``) that tune it: ``opt_out_keywords``,
``opt_in_keywords``, ``help_keywords`` (lists of words or phrases such as "opt out"),
``opt_out_message``, ``opt_in_message``, ``help_message`` (texts) and ``quiet_hours``
(``{"start": "21:00", "end": "08:00", "timezone": "America/New_York"}``; the zone is
optional: the person's zone is read as :mod:`agentsms.core.zones` says, their contact's
and their conversation's before this one, the one their number implies after it).

Keywords are recognised the way people type them (FCC 47 CFR 64.1200(a)(10): revocation
"by any reasonable means"). The text is normalised (Unicode NFKC, case-folded, zero-width
characters gone, surrounding punctuation and emoji removed; "opt-out", "opt out" and
"optout" are one word) and is a keyword when it is one, or plainly consists of one with
polite padding ("STOP please", "unsubscribe me", "help?"), or is one of the common ways of
saying it ("please stop texting me", "remove me from this list", "take me off your list",
"don't text me anymore"). A long text that merely contains a keyword in another sense
("I'll stop by at 3") is not one; a short one that is genuinely unclear ("no stop",
"stop. who is this") gets :data:`OPT_OUT_QUESTION` (the one text the rule allows) and is
not handed to an agent.

CANCEL is both an opt-out keyword (CTIA) and the way people cancel an appointment: the bare
word ("cancel", "CANCEL.") opts out, as carriers expect; "please cancel", "cancel it" or
"cancel my appointment" are about the appointment and go to the conversation's agent,
and "cancel these texts" or "cancel my subscription" opt out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentsms.core.zones import person_zones
from agentsms.core.zones import zones_for as zones_for
from agentsms.errors import FieldError
from agentsms.wording import INVISIBLE, strip_padding

RECIPIENT_OPTED_OUT = "recipient_opted_out"
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
OPT_OUT_QUESTION = "Reply STOP to confirm you want no more texts from us."
"""Sent when a short text may be an opt-out but is not plainly one."""

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


_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_LEADING = re.compile(
    r"^(?:i (?:want|would like|wish|need) to |i want you to |can you |could you )"
)
_AMBIGUOUS = frozenset({"cancel"})
"""Keywords that opt out only as the bare word (see the module docstring)."""
_PADDING_RE = r"(?: (?:please|pls|plz|now|thanks|thank you|thx|asap|ok|already|immediately))*"
_OPT_OUT_PHRASES = re.compile(
    r"^(?:please |pls |plz |ok |hi |hey )*(?:"
    r"(?:stop|quit|cease|end|enough) (?:texting|txting|messaging|msging|sending|contacting|"
    r"calling|spamming|bothering)(?: me)?(?: (?:texts|messages|msgs|sms|these))?"
    r"(?: anymore| any more| again)?"
    r"|(?:stop|cancel|end|quit|unsubscribe|remove me from)(?: me from)? (?:all |the |these |"
    r"your |ur |my |this |those )?(?:texts|text messages|messages|msgs|sms|reminders|"
    r"notifications|alerts|subscription|marketing|promotions)"
    r"|(?:remove|delete|take|drop|unsubscribe) me (?:off|from|out of)(?: of)? (?:this|your|ur|"
    r"the|all|these|that|all your|the mailing|your mailing|this mailing|your texting|"
    r"the texting|this texting|your contact|the contact)? ?(?:list|lists|texts|messages|"
    r"contacts|database|system)"
    r"|remove me|take me off|opt me out|sign me out|count me out of these"
    r"|(?:do not|dont|don't|never) (?:text|txt|message|msg|contact|sms) (?:me|this number)"
    r"(?: again| anymore| any more| ever again| ever)?"
    r"|no more (?:texts|text messages|messages|msgs|sms|reminders)"
    r"|leave me alone|(?:lose|delete|remove|erase) (?:my|this) number|unsub"
    r"|(?:i )?(?:revoke|withdraw) (?:my )?consent"
    r"|how (?:do|can) i (?:stop|unsubscribe|opt out)(?: of| from)?(?: these| the| your| all)?"
    r"(?: texts| messages| msgs)?"
    r")" + _PADDING_RE + r"$"
)
_OTHER_SENSE = re.compile(
    r"\b(?:stop (?:by|in|at|over|off|for|on my way|to)|end (?:of|up)|the end|at the end|"
    r"quit (?:my|smoking|drinking|the)|(?:do not|don't|dont|can't|cant|won't|wont|never) stop|"
    r"stop worrying|(?:bus|full|last|next|pit|non) stop|weekend|week end)\b"
)
_UNCLEAR_WORDS = 6


def normalize_text(body: str) -> str:
    """NFKC, case-folded, zero-width characters removed, whitespace collapsed, and the
    punctuation and emoji around the text stripped."""
    text = unicodedata.normalize("NFKC", body).translate(INVISIBLE).casefold()
    text = " ".join(text.split())
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def _squash(text: str) -> str:
    """Letters and digits only: "opt-out", "opt out" and "optout" are one."""
    return "".join(ch for ch in text if ch.isalnum())


def _words(text: str) -> list[str]:
    return _WORD.findall(text.replace("\u2019", "'"))


def _is_keyword(text: str, keywords: Iterable[str]) -> bool:
    squashed = _squash(text)
    wanted = {_squash(normalize_text(w)): normalize_text(w) for w in keywords}
    if squashed in wanted:
        return True  # the bare keyword
    core = strip_padding(_words(_LEADING.sub("", text)))
    squashed_core = _squash(" ".join(core))
    if squashed_core not in wanted:  # "STOP STOP STOP"
        repeated = {_squash(word) for word in core}
        squashed_core = repeated.pop() if len(repeated) == 1 else squashed_core
    return squashed_core in wanted and wanted[squashed_core] not in _AMBIGUOUS


def _keywords(settings: Mapping[str, Any], kind: Keyword) -> Sequence[str]:
    given: Sequence[str] = settings.get(f"{kind}_keywords") or default_keywords(kind)
    return given


def classify(body: str, settings: Mapping[str, Any]) -> Keyword | None:
    """The compliance keyword a text is, or plainly consists of (see the module docstring)."""
    text = normalize_text(body)
    if not text:
        return None
    for kind in ("opt_out", "opt_in", "help"):
        if _is_keyword(text, _keywords(settings, kind)):
            return kind
    if _OPT_OUT_PHRASES.match(" ".join(_words(text))):
        return "opt_out"
    return None


def maybe_opt_out(body: str, settings: Mapping[str, Any]) -> bool:
    """Whether a text that is no keyword is short and names an opt-out word in no other
    sense ("no stop", "stop. who is this"): it is then asked about (:data:`OPT_OUT_QUESTION`)."""
    text = normalize_text(body)
    words = _words(text)
    if not words or len(words) > _UNCLEAR_WORDS or _OTHER_SENSE.search(" ".join(words)):
        return False
    joined = f" {' '.join(words)} "
    for keyword in _keywords(settings, "opt_out"):
        phrase = normalize_text(keyword)
        if phrase in _AMBIGUOUS:
            continue
        spaced = " ".join(_words(phrase))
        if f" {spaced} " in joined or _squash(phrase) in words:
            return True
    return False


def default_keywords(kind: Keyword) -> tuple[str, ...]:
    """The keywords of ``kind`` a project has when its settings name none."""
    return {"opt_out": OPT_OUT_KEYWORDS, "opt_in": OPT_IN_KEYWORDS, "help": HELP_KEYWORDS}[kind]


def message_for(kind: Keyword, settings: Mapping[str, Any]) -> str:
    """The project's answer to a keyword of ``kind`` (its setting, else the default)."""
    defaults = {"opt_out": OPT_OUT_MESSAGE, "opt_in": OPT_IN_MESSAGE, "help": HELP_MESSAGE}
    return str(settings.get(f"{kind}_message") or defaults[kind])


def setting_problem(key: str, value: Any) -> str | None:
    """Why a compliance project setting is invalid, or ``None``."""
    if key.endswith("_keywords"):
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(w, str) and normalize_text(w) for w in value)
        ):
            return "must be a non-empty list of words or phrases"
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


def next_allowed(
    moment: datetime,
    recipient: str,
    quiet: QuietHours,
    *,
    contact_zone: str | None = None,
    conversation_zone: str | None = None,
) -> datetime:
    """``moment`` itself, or the first time after it outside quiet hours for the recipient,
    in the recipient's zone (:func:`agentsms.core.zones.person_zones`: their contact's, the
    conversation's, the quiet hours' own, then their number's).

    A number whose country spans several zones gets a time allowed in all of them (when
    there is one within a few steps).
    """
    zones = person_zones(
        recipient, contact=contact_zone, conversation=conversation_zone, configured=quiet.timezone
    )
    current = moment
    for _ in range(len(zones) + 2):
        later = max(_end_of_quiet(current, zone, quiet) for zone in zones)
        if later == current:
            break
        current = later
    return current
