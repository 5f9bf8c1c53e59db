"""Understanding a reply to a yes / reschedule / cancel question, without an LLM.

:func:`understand` reads what people really text ("I'll be there", "cant make it",
"not tomorrow, how about Thursday at 2", "👍", "yse") and answers an :class:`Understanding`:
an intent, a confidence and, for a reschedule, the proposed time in the person's zone.

How it reads a reply:

1. **Normalisation** (:func:`normalize`): Unicode NFKC, case folding, zero-width characters
   and emoji skin tones removed, curly quotes straightened, 👍/👌/✅ read as "yes" and
   👎/❌ as "no", other emoji dropped.
2. **Clauses**: the text is cut at sentence punctuation, commas and "but" / "how about" /
   "instead", so "no, thursday at 2" is two clauses and "no" does not negate Thursday.
3. **Words**: each clause's words are put in a canonical form: contractions spelled out
   ("can't" → "can not", "ill be" → "i will be"), SMS spellings and loanwords mapped ("yep",
   "ya", "sí", "oui", "vale" → "yes"; "tmrw" → "tomorrow"; "appt" → "appointment"), letters
   typed three times squeezed ("yesss"), and near misses of the long key words (one edit,
   two for the longest: "confrim", "cancle", "reschedual") corrected.
4. **Signals** per clause, with negation scope: a negator (not, never, no, unable) turns the
   attendance phrase after it ("be there", "make it", "come") into a refusal; the scope ends
   at a new subject ("don't worry I'll be there") unless the verb is one of belief ("I don't
   think I can make it"). A clause that is negated, or calls a time bad ("tomorrow is bad"),
   rejects the times it names; a time anywhere else is a proposal.
5. **Decision**, precision first: an explicit cancellation, then a reschedule (a cue or a
   proposed time), then a refusal (which cancels), then a confirmation, then a question;
   a clause that asks confirms nothing ("is it still on?") and a yes beside a question goes
   to a person; hedges ("maybe", "I think so", "I'll try") and conflicting signals give
   ``unclear``.
   Only the closing intents (confirm, cancel, reschedule with a time) close a conversation,
   so a reply that is not plainly one of them is asked again.

Times are read with :func:`agentsms.agents.datetimes.find_datetime` from the proposing
clauses only, relative to when the person wrote, in their zone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from agentsms.agents.datetimes import described, find_datetime
from agentsms.agents.understanding_lexicon import (
    ALTERNATIVE,
    ASKING,
    ASKS_ABOUT,
    ASKS_ABOUT_BOOKING,
    ASKS_ABOUT_CHANGE,
    ATTEND,
    AUXILIARIES,
    BAD_TIME,
    BARE_NO,
    BELIEF,
    CANCEL,
    EMOJI_WORDS,
    EMPHATIC_NO,
    EXPANSIONS,
    FUZZY_TARGETS,
    HEDGE,
    HOUR_CONTEXT,
    HOUR_FILLERS,
    ILL_VERBS,
    LATER_INTENT,
    NEGATORS,
    NOT_HEDGES,
    NOT_NEGATIONS,
    NOT_TIME_PHRASE,
    NOT_TYPOS,
    OFFER,
    OTHER_ACTION,
    PAST,
    QUESTION_CUES,
    REFUSAL,
    RESCHEDULE,
    SOFT_RESCHEDULE,
    STRONG_CONFIRM,
    SUBJECTS,
    TIME_FILLERS,
    TIME_TARGETS,
    TIME_WORD,
    VOCABULARY,
    WEAK_CONFIRM,
)
from agentsms.wording import INVISIBLE

Intent = Literal["confirm", "cancel", "reschedule", "question", "unclear"]
INTENTS: tuple[Intent, ...] = ("confirm", "cancel", "reschedule", "question", "unclear")


@dataclass(frozen=True, slots=True)
class Understanding:
    """What a reply means: the intent, how sure, and a proposed time (reschedule)."""

    intent: Intent
    confidence: float
    when: str | None = None
    """ISO 8601 in the person's zone, with its offset (a date alone for a bare day)."""
    when_text: str | None = None
    """The same time for people: "Thursday, December 10 at 3:00 PM"."""
    names_booked_time: bool = False
    """The only time the reply names is the one the question was about ("3 works" to a
    reminder of 3 PM, "I have work at 3, can we change it?"): not a new time."""


# --- 1. normalisation ----------------------------------------------------------------------

_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})


def normalize(text: str) -> str:
    """NFKC, case-folded, invisible characters gone, emoji read as words or dropped."""
    text = unicodedata.normalize("NFKC", text).translate(INVISIBLE).translate(_QUOTES)
    text = _SKIN_TONES.sub("", text).casefold()
    out = []
    for char in text:
        if char in EMOJI_WORDS:
            out.append(EMOJI_WORDS[char])
        elif unicodedata.category(char) in ("So", "Sk", "Cs", "Co") or "\u2600" <= char <= "\u27bf":
            out.append(" ")
        else:
            out.append(char)
    return " ".join("".join(out).split())


# --- 2. clauses ------------------------------------------------------------------------------

_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening)|morning|evening)"
    r"(?: there)?\b[\s,.!:;-]*)+"
)
_CLAUSE_BREAK = re.compile(
    r"[!?;\n]+|(?<!\d)[.,:]+|[.,:]+(?!\d)|\s-\s"
    r"|\b(?=(?:but|though|however|how about|what about|otherwise|instead of|"
    r"(?:can|could) (?:we|i|you))\b)"
)


@dataclass(frozen=True, slots=True)
class _Clause:
    text: str  # normalised text of the clause (for times)
    words: tuple[str, ...]  # canonical words
    asks: bool  # ended with a question mark

    @property
    def line(self) -> str:
        return " ".join(self.words)


def _clauses(text: str) -> list[_Clause]:
    text = re.sub(r"\bre-(?=[a-z])", "re", _GREETING.sub("", text))
    text = re.sub(r"^10-4\b", "roger", text)  # radio for "understood"
    found: list[_Clause] = []
    position = 0
    for match in _CLAUSE_BREAK.finditer(text + "\n"):
        piece = text[position : match.start()].strip()
        position = match.end()
        if piece:
            found.append(_Clause(piece, tuple(_canonical(_tokens(piece))), "?" in match.group()))
    return found


# --- 3. words --------------------------------------------------------------------------------

_TOKEN = re.compile(r"[\w']+|@|&")


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, capped at ``limit + 1``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _known(word: str) -> str | None:
    if word in EXPANSIONS:
        return EXPANSIONS[word]
    if word in VOCABULARY:
        return word
    return None


def _correct(word: str) -> str:
    """A word in canonical spelling (typos of key words corrected)."""
    known = _known(word)
    if known is not None:
        return known
    squeezed = re.sub(r"(.)\1{2,}", r"\1", word)  # "yesss", "pleaseee"
    for candidate in (squeezed, re.sub(r"(.)\1+", r"\1", word)):  # "yess", "cancell"
        known = _known(candidate)
        if known is not None:
            return known
    if len(word) >= 5 and word not in NOT_TYPOS and word.isalpha():
        best: tuple[int, str] | None = None
        for target in FUZZY_TARGETS:
            limit = 2 if len(target) >= 9 and len(word) >= 8 else 1
            distance = _edit_distance(word, target, limit)
            if distance <= limit and (best is None or distance < best[0]):
                best = (distance, target)
        if best is not None:
            return best[1]
    return word


def _tokens(text: str) -> list[str]:
    return [t.strip("'") for t in _TOKEN.findall(text.replace("_", " ")) if t.strip("'")]


def _canonical(tokens: list[str]) -> list[str]:
    words: list[str] = []
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token == "ill" and following in ILL_VERBS:
            replacement = "i will"
        elif token in ("c", "see") and following in ("u", "you", "ya", "yah"):
            replacement = "see"
        elif token in ("ya", "yah") and words and words[-1] == "see":
            replacement = "you"
        elif token in ("y", "n") and len(tokens) > 1:
            replacement = token  # only a whole-reply "y"/"n" is yes/no
        else:
            replacement = _correct(token)
        words.extend(replacement.split())
    return words


# --- 4. negation scope ------------------------------------------------------------------------

_SCOPE = 4
"""Words after a negator that it can reach (attendance phrases are short)."""


def _negated(words: tuple[str, ...], pattern: re.Pattern[str]) -> tuple[bool, bool]:
    """Whether ``pattern`` occurs in ``words`` plainly, and whether within a negation scope."""
    plain = negated = False
    line = " ".join(words)
    starts = [len(" ".join(words[:i])) + (1 if i else 0) for i in range(len(words))]
    for match in pattern.finditer(line):
        index = next(i for i, start in enumerate(starts) if start >= match.start())
        if _in_scope(words, index):
            negated = True
        else:
            plain = True
    return plain, negated


def _in_scope(words: tuple[str, ...], index: int) -> bool:
    """Whether the word at ``index`` is reached by a negator before it (auxiliaries such as
    "going to be able to" do not count against the reach)."""
    budget, at = _SCOPE, index
    while budget > 0:
        at -= 1
        back = index - at
        if at < 0:
            return False
        word = words[at]
        if word not in AUXILIARIES:
            budget -= 1
        if word in NEGATORS:
            # "no, I ..." is an interjection, not the negation of what follows
            return not (word == "no" and at + 1 < len(words) and words[at + 1] in SUBJECTS)
        if word in SUBJECTS and back > 1:
            previous = words[at - 1] if at >= 1 else ""
            if previous not in BELIEF and previous not in NEGATORS:
                return False
    return False


# --- 5. times ----------------------------------------------------------------------------------

_BARE_NUMBER = re.compile(
    r"(?<![\d/:.$#-])(?<!\bthe )(?<!\bin )\b(1[0-2]|0?[1-9])\b(?![:/.\d])"
    r"(?!\s*(?:am|pm|a\.m|p\.m|st|nd|rd|th|min|mins|minutes|hours|hrs|hr|days|weeks|people|"
    r"kids|of us|percent|%|x|o'?clock))"
)
_OTHER_NUMBER = re.compile(
    r"(?<![\d/:.-])\b(?:1[3-9]|[2-9]\d|\d{3,})\b(?![:/.\d])"
    r"(?!\s*(?:st|nd|rd|th|am|pm|a\.m|p\.m|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))"
)
"""A number that is neither an hour nor part of a date ("room 15", "$50")."""
_COMPACT_CLOCK = re.compile(r"\b(\d{1,2})[.:]?(\d{2})\s?(am|pm|a\.m\.|p\.m\.)")
_DOT_CLOCK = re.compile(r"\b(\d{1,2})\.(\d{2})\b")
_INSTEAD_OF = re.compile(r"\b(?:instead of|rather than|not) (?:at |on )?[\w:]+(?:\s?(?:am|pm))?")
_MONTH_BEFORE = re.compile(
    r"\b(?:jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august|"
    r"sep|sept|september|oct|october|nov|november|dec|december)\.?\s*$"
)
_TYPO_WORD = re.compile(r"\b[a-z0-9]{3,}\b")


def _fix_time_word(match: re.Match[str]) -> str:
    """A misspelt day ("wendsday", "tommorow") spelt right for the date parser."""
    corrected = _correct(match.group(0))
    return corrected if corrected in TIME_TARGETS else match.group(0)


def _proposes(line: str, reschedule: bool) -> bool:
    """Whether the time in a clause is offered as the new time: the clause asks for a change
    or offers to come then, or holds little but the time ("Thursday at 2?", "4pm then")."""
    offered = reschedule or SOFT_RESCHEDULE.search(line) or OFFER.search(line)
    if PAST.search(line) or (OTHER_ACTION.search(line) and not offered):
        return False
    if offered:
        return True
    rest = [
        word
        for word in line.split()
        if word not in TIME_FILLERS and not TIME_WORD.fullmatch(word) and not word[0].isdigit()
    ]
    return len(rest) <= 1


def _time_text(clause: str, *, rejected: bool = False) -> str | None:
    """The clause prepared for the date parser, or ``None`` when it names no time.

    Times the clause itself puts aside ("instead of 3", "not at 3") are left out, unless
    ``rejected`` (the clause is read for the times it rejects).
    """
    text = NOT_TIME_PHRASE.sub(" ", _TYPO_WORD.sub(_fix_time_word, clause)).replace("@", " at ")
    if not rejected:
        text = _INSTEAD_OF.sub(" ", text)
    if not TIME_WORD.search(text):
        return None
    text = _COMPACT_CLOCK.sub(r"\1:\2\3", text)
    text = _DOT_CLOCK.sub(r"\1:\2", text)

    def hour(match: re.Match[str]) -> str:
        before = text[: match.start()]
        if _MONTH_BEFORE.search(before) or re.search(r"\bat\s*$|@\s*$", before):
            return match.group(0)
        previous = re.search(r"([a-z]+)\W*$", before)
        alone = set(_tokens(before + " " + text[match.end() :])) <= HOUR_FILLERS
        if alone or (previous is not None and previous.group(1) in HOUR_CONTEXT):
            return f"at {match.group(1)}"
        return " "  # "room 5", "bring 2 forms": not an hour

    text = _OTHER_NUMBER.sub(
        lambda m: m.group(0) if _MONTH_BEFORE.search(text[: m.start()]) else " ", text
    )
    return _BARE_NUMBER.sub(hour, text)


def _proposed_time(texts: Iterable[str], now: datetime, zone: ZoneInfo) -> tuple[str, str] | None:
    joined = " ".join(texts).strip()
    if not joined:
        return None
    return find_datetime(joined, now, zone)


def extract_time(text: str, now: datetime, zone: ZoneInfo) -> tuple[str, str] | None:
    """The time a reply proposes (times in negated or "bad" clauses left out), or ``None``.

    ``(ISO 8601 with offset, readable)`` in ``zone``, relative to ``now`` (when the person
    wrote); see :func:`agentsms.agents.datetimes.find_datetime`.
    """
    proposing = [t for c in _clauses(normalize(text)) if (t := _proposal(c)) is not None]
    return _proposed_time(proposing, now, zone)


def _proposal(clause: _Clause) -> str | None:
    """The clause's time text when it proposes a time (not rejecting it)."""
    prepared = _time_text(clause.text)
    if prepared is None or _rejects(clause):
        return None
    return prepared


def _rejects(clause: _Clause) -> bool:
    words = set(clause.words)
    if BAD_TIME.search(clause.line) or CANCEL.search(clause.line):
        return True
    if words & {"not", "never", "unable"} and not NOT_NEGATIONS.search(clause.line):
        return True
    return bool(REFUSAL.search(clause.line))


# --- 6. decision -------------------------------------------------------------------------------


@dataclass
class _Signals:
    strong: bool = False
    weak: bool = False
    refusal: bool = False
    bare_no: bool = False
    cancel: bool = False
    reschedule: bool = False
    soft_reschedule: bool = False
    hedge: bool = False
    question: bool = False
    asks_booking: bool = False
    rejected_time: bool = False
    confirm_with_time: bool = False
    said_yes: bool = False
    weak_apart: bool = False
    """A weak yes in a clause that names no time."""


def _read(clauses: list[_Clause]) -> tuple[_Signals, list[str]]:
    signals = _Signals()
    proposals: list[str] = []
    for clause in clauses:
        line = clause.line
        if not line:
            continue
        positive = EMPHATIC_NO.sub(" not ", NOT_NEGATIONS.sub(" ", line))
        words = tuple(positive.split())
        if line in ("cancel", "reschedule") and clause.asks:
            continue  # an echo ("cancel? no way, ...")
        strong, strong_negated = _negated(words, STRONG_CONFIRM)
        weak, weak_negated = _negated(words, WEAK_CONFIRM)
        if clause.asks or ASKING.match(positive):
            strong = weak = False
        _, attend_negated = _negated(words, ATTEND)
        cancel, cancel_negated = _negated(words, CANCEL)
        reschedule = RESCHEDULE.search(LATER_INTENT.sub(" ", positive)) is not None
        if clause.asks or ASKING.match(line):  # "is there a fee if I cancel?": a question
            cancel = cancel and not (ASKS_ABOUT.search(line) or ASKS_ABOUT_CHANGE.search(line))
            reschedule = reschedule and not ASKS_ABOUT_CHANGE.search(line)
        hedge = HEDGE.search(NOT_HEDGES.sub(" ", line)) is not None
        if "not sure" in line or "not really" in line:
            weak_negated = attend_negated = False
        signals.strong |= strong
        signals.weak |= weak or cancel_negated or bool(NOT_NEGATIONS.search(line))
        signals.cancel |= cancel
        signals.refusal |= (
            strong_negated or weak_negated or attend_negated or bool(REFUSAL.search(line))
        ) and not hedge
        signals.bare_no |= BARE_NO.match(line) is not None
        signals.reschedule |= reschedule
        signals.soft_reschedule |= SOFT_RESCHEDULE.search(line) is not None
        signals.hedge |= hedge
        signals.said_yes |= words[:1] == ("yes",)
        if clause.asks or ASKING.match(positive) or QUESTION_CUES.search(positive):
            signals.question |= len(words) > 1 or QUESTION_CUES.search(positive) is not None
        if ASKS_ABOUT_BOOKING.search(line):
            signals.asks_booking = True
        if _rejects(clause):
            signals.rejected_time |= _time_text(clause.text, rejected=True) is not None
            continue
        prepared = _time_text(clause.text)
        if prepared is not None and not _proposes(line, reschedule):
            continue  # "my birthday is on Friday", "I'll call tomorrow": context
        if prepared is None:
            signals.rejected_time |= _time_text(clause.text, rejected=True) is not None
            signals.weak_apart |= weak
        else:
            proposals.append(prepared)
            if strong or signals.said_yes:
                signals.confirm_with_time = True  # "yes, tomorrow at 3"
    return signals, proposals


_NAMES_DAY = re.compile(
    r"\b(?:today|tomorrow|tonight|mon|monday|tue|tues|tuesday|wed|weds|wednesday|thu|thur|"
    r"thurs|thursday|fri|friday|sat|saturday|sun|sunday|week|jan|january|feb|february|mar|"
    r"march|apr|april|may|jun|june|jul|july|aug|august|sep|sept|september|oct|october|nov|"
    r"november|dec|december)\b|\d{1,2}/\d{1,2}|\b\d{1,2}(?:st|nd|rd|th)\b"
)


_NEAR = timedelta(days=14)


def _is_booked(when: str, booked: str, proposals: Iterable[str]) -> bool:
    """Whether the time a reply names is ``booked`` (ISO, the time the question is about):
    the same moment or day, or the same time of day when the reply names no day."""
    if when == booked:
        return True
    mine, theirs = datetime.fromisoformat(when), datetime.fromisoformat(booked)
    if len(when) == 10:  # a bare day
        return mine.date() == theirs.date()
    if len(booked) == 10:
        return False
    if mine == theirs:
        return True
    named_day = any(_NAMES_DAY.search(text) for text in proposals)
    return not named_day and mine.time() == theirs.astimezone(mine.tzinfo).time()


def understand(
    text: str,
    now: datetime,
    zone: ZoneInfo,
    *,
    booked: str | Callable[[], str | None] | None = None,
) -> Understanding:
    """What ``text`` answers to a confirm / reschedule / cancel question.

    ``now`` (aware) is when the person wrote and ``zone`` their time zone: a proposed time
    is read relative to them and returned with its offset. ``booked`` (ISO 8601) is the
    time the question is about, when it names one: a reply naming that time proposes
    nothing new ("3 works" confirms a 3 PM appointment; "I have work at 3, can we change
    it?" asks for another time). It may be given as a function that finds it, called only
    when the reply proposes a time (reading the question's time is the costly part).
    """
    clauses = _clauses(normalize(text))
    if not clauses:
        return Understanding("unclear", 0.0)
    signals, proposals = _read(clauses)
    when = _proposed_time(proposals, now, zone) if proposals else None
    if callable(booked):
        booked = None if when is None else booked()  # without a proposed time, not needed
    if when is not None and booked is not None and _is_booked(when[0], booked, proposals):
        # "I have work at 3, could we do 5 instead?": the other clause's time is the new one
        others = [
            text
            for text in proposals
            if (own := _proposed_time([text], now, zone)) is None
            or not _is_booked(own[0], booked, [text])
        ]
        when = _proposed_time(others, now, zone) if others else None
        if when is None or _is_booked(when[0], booked, others):
            return _booked_time(signals, clauses)
        proposals = others
    if when is not None and booked is not None:
        when = _on_booked_day(when, booked, proposals, now, zone)
    return _decide(signals, clauses, when)


def _on_booked_day(
    when: tuple[str, str], booked: str, proposals: Iterable[str], now: datetime, zone: ZoneInfo
) -> tuple[str, str]:
    """A time of day proposed without a day ("can we do 4pm instead?") is on the booked
    day, when that day is still to come and near (a reminder of tomorrow at 3 asks about
    tomorrow; a date read a year ahead from a stale text is left alone)."""
    if len(when[0]) == 10 or len(booked) == 10 or any(_NAMES_DAY.search(t) for t in proposals):
        return when
    mine = datetime.fromisoformat(when[0]).astimezone(zone)
    day = datetime.fromisoformat(booked).astimezone(zone).date()
    moved = mine.replace(year=day.year, month=day.month, day=day.day, fold=0)
    if moved <= now or moved.date() == mine.date() or moved - now > _NEAR:
        return when
    return described(moved)


def _booked_time(signals: _Signals, clauses: list[_Clause]) -> Understanding:
    """A reply whose only time is the booked one: a confirmation when it approves it ("3pm
    tomorrow is fine"), a request for another time when it asks for a change."""
    changing = signals.reschedule or signals.soft_reschedule or signals.rejected_time
    if not (changing or signals.refusal or signals.cancel or signals.hedge):
        if signals.question:
            return Understanding("question", 0.6, names_booked_time=True)
        if signals.strong or signals.weak or signals.said_yes:
            return Understanding("confirm", 0.85, names_booked_time=True)
        return Understanding("unclear", 0.3, names_booked_time=True)
    return replace(_decide(signals, clauses, None), names_booked_time=True)


def _decide(
    signals: _Signals, clauses: list[_Clause], when: tuple[str, str] | None
) -> Understanding:
    if when is not None and signals.asks_booking and not signals.reschedule:
        return Understanding("question", 0.8)
    if signals.cancel:
        if signals.reschedule or (when is not None and signals.soft_reschedule):
            return _reschedule(when)
        if signals.strong or signals.hedge:
            return Understanding("unclear", 0.3)
        return Understanding("cancel", 0.95)
    if signals.reschedule or signals.rejected_time or when is not None:
        if (
            when is not None
            and not signals.reschedule
            and not signals.soft_reschedule
            and not signals.refusal
        ):
            # "see you at 3", "yes, I'll be there. I finish work at 5": the time is context
            if signals.confirm_with_time or signals.strong:
                return Understanding("confirm", 0.85)
            if (signals.weak_apart or signals.hedge) and not signals.rejected_time:
                # "ok. 4pm", "possibly, I'll let you know tomorrow": not plainly an answer
                return Understanding("unclear", 0.3)
        if when is None and not signals.reschedule and signals.question:
            return Understanding("question", 0.6)
        return _reschedule(when)
    if signals.refusal or signals.bare_no:
        if signals.hedge:
            return Understanding("unclear", 0.3)
        if signals.strong and not _only_interjection(clauses):
            return Understanding("unclear", 0.3)
        if signals.strong:
            return Understanding("confirm", 0.75)
        if signals.weak and not signals.refusal:
            return Understanding("unclear", 0.3)
        if signals.question and not signals.refusal:
            return Understanding("question", 0.6)
        if any(ALTERNATIVE.search(c.line) for c in clauses):
            return Understanding("reschedule", 0.6)  # "that doesn't work, can we change?"
        return Understanding("cancel", 0.85)
    if signals.strong or signals.weak:
        if signals.hedge:
            return Understanding("unclear", 0.3)
        if signals.question:  # "ok, where do I park?": a person answers it
            return Understanding("question", 0.6)
        return Understanding("confirm", 0.95 if signals.strong else 0.85)
    if signals.question:
        return Understanding("question", 0.7)
    return Understanding("unclear", 0.0)


def _reschedule(when: tuple[str, str] | None) -> Understanding:
    if when is None:
        return Understanding("reschedule", 0.8)
    return Understanding("reschedule", 0.9, when[0], when[1])


def _only_interjection(clauses: list[_Clause]) -> bool:
    """Whether the negative part of a reply is a bare "no" (as in "no way, I'll be there")."""
    return any(BARE_NO.match(c.line) for c in clauses) and not any(
        _negated(tuple(NOT_NEGATIONS.sub(" ", c.line).split()), ATTEND)[1] for c in clauses
    )
