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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from agentsms.agents.datetimes import find_datetime

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


# --- 1. normalisation ----------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\ufe0e\ufe0f\u200e\u200f"), None
)
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")
_EMOJI_WORDS = {
    "👍": " yes ",
    "👌": " yes ",
    "✅": " yes ",
    "✔": " yes ",
    "☑": " yes ",
    "🆗": " ok ",
    "🙌": " yes ",
    "👎": " no ",
    "❌": " no ",
    "✖": " no ",
    "🚫": " no ",
}
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})


def normalize(text: str) -> str:
    """NFKC, case-folded, invisible characters gone, emoji read as words or dropped."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_QUOTES)
    text = _SKIN_TONES.sub("", text).casefold()
    out = []
    for char in text:
        if char in _EMOJI_WORDS:
            out.append(_EMOJI_WORDS[char])
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
_EXPANSIONS: dict[str, str] = {
    # contractions, with and without the apostrophe
    **{w: "can not" for w in ("can't", "cant", "cannot", "cnt", "caint")},
    **{w: "will not" for w in ("won't", "wont", "wo'nt")},
    **{w: "do not" for w in ("don't", "dont", "dnt")},
    **{w: "does not" for w in ("doesn't", "doesnt")},
    **{w: "did not" for w in ("didn't", "didnt")},
    **{w: "is not" for w in ("isn't", "isnt", "ain't", "aint")},
    **{w: "are not" for w in ("aren't", "arent")},
    **{w: "was not" for w in ("wasn't", "wasnt")},
    **{w: "would not" for w in ("wouldn't", "wouldnt")},
    **{w: "could not" for w in ("couldn't", "couldnt")},
    **{w: "should not" for w in ("shouldn't", "shouldnt")},
    **{w: "have not" for w in ("haven't", "havent")},
    **{w: "i am" for w in ("i'm", "im", "iam")},
    **{w: "i will" for w in ("i'll", "i'l", "ima", "imma")},
    "we'll": "we will",
    "you'll": "you will",
    "i've": "i have",
    "ive": "i have",
    "i'd": "i would",
    "we're": "we are",
    "we'd": "we would",
    **{w: "it is" for w in ("it's", "its")},
    **{w: "that is" for w in ("that's", "thats", "thts")},
    **{w: "what is" for w in ("what's", "whats", "wats", "wuts")},
    **{w: "where is" for w in ("where's", "wheres")},
    **{w: "who is" for w in ("who's", "whos")},
    "there's": "there is",
    "let's": "let us",
    "gonna": "going to",
    "gona": "going to",
    "wanna": "want to",
    "gotta": "got to",
    "y'all": "you all",
    # SMS spellings
    **{w: "you" for w in ("u", "ya'll", "yu", "yoo")},
    "ur": "your",
    **{w: "please" for w in ("pls", "plz", "plez", "plse", "pleas", "plss", "pl", "pleaze")},
    **{
        w: "thanks"
        for w in ("thx", "thnx", "thanx", "tnx", "ty", "tysm", "thks", "tx", "thanku", "gracias")
    },
    "merci": "thanks",
    "danke": "thanks",
    **{w: "can make it" for w in ("puedo", "podemos")},
    **{w: "i will be there" for w in ("estare", "estaré", "estaremos", "alli", "allí")},
    **{w: "" for w in ("ahí", "ahi", "que")},
    "mak": "make",
    **{
        w: "tomorrow"
        for w in ("tmrw", "tmr", "tmrow", "tmw", "tomoz", "2morrow", "2moro", "tmro", "tomo")
    },
    **{w: "tonight" for w in ("tonite", "2nite", "2night")},
    "2day": "today",
    **{w: "see you" for w in ("cu", "cya", "seeya", "cyah", "cye")},
    **{
        w: "appointment"
        for w in ("appt", "apt", "appmt", "appointmt", "apointment", "appointement", "appts")
    },
    **{w: "definitely" for w in ("def", "deff", "deffo", "defo", "defs", "defintely")},
    "abs": "absolutely",
    **{w: "of course" for w in ("ofc", "ofcourse", "course")},
    **{w: "i do not know" for w in ("idk", "dunno", "dno", "idek")},
    "nvm": "never mind",
    "rn": "right now",
    **{w: "sorry" for w in ("sry", "srry", "soz", "sori")},
    "omw": "on my way",
    "np": "no problem",
    **{w: "because" for w in ("bc", "cuz", "coz", "cause", "bcuz", "bcz")},
    "tho": "though",
    **{w: "until" for w in ("till", "til", "untill")},
    "wk": "week",
    "wknd": "weekend",
    "@": "at",
    "&": "and",
    "w": "with",
    "rly": "really",
    "prob": "probably",
    "probs": "probably",
    "lmk": "let me know",
    "asap": "as soon as possible",
    "re-schedule": "reschedule",
    "re-book": "rebook",
    "cancelar": "cancel",
    **{w: "cancel" for w in ("cancelling", "canceling", "cancelled", "canceled")},
    "annuler": "cancel",
    "cancela": "cancel",
    # yes / ok / no, and loanwords
    **{
        w: "yes"
        for w in (
            "y",
            "ya",
            "yah",
            "yeah",
            "yea",
            "yeh",
            "yep",
            "yup",
            "yas",
            "ye",
            "yis",
            "yesh",
            "yse",
            "ys",
            "yez",
            "yeas",
            "yeppers",
            "yessir",
            "yupp",
            "yepp",
            "aye",
            "si",
            "sí",
            "oui",
            "ja",
            "vale",
            "claro",
            "dale",
            "bueno",
            "affirmative",
            "yeap",
            "yus",
        )
    },
    **{
        w: "ok"
        for w in (
            "okay",
            "k",
            "kk",
            "kay",
            "okey",
            "okie",
            "oki",
            "okies",
            "okk",
            "okok",
            "d'accord",
            "dac",
            "dacc",
            "alright",
            "alrighty",
            "allright",
            "aight",
            "alrite",
            "allrite",
            "okey-dokey",
            "okie-dokie",
            "okidoki",
            "okaay",
            "oky",
        )
    },
    **{w: "" for w in ("dokie", "dokey", "doke", "lol", "haha", "lmao", "xx", "x", "xo", "xoxo")},
    **{w: "no" for w in ("nope", "nah", "naw", "nay", "nop", "non", "nein", "negative", "noo")},
    "n": "no",
    "b": "be",
    "c": "see",
    "r": "are",
    "gd": "good",
    "gr8": "great",
    "comin": "coming",
    "sched": "schedule",
    "resched": "reschedule",
    "reschedul": "reschedule",
    "unsure": "not sure",
}
_ILL_VERBS = frozenset(
    [
        "be",
        "make",
        "come",
        "see",
        "do",
        "need",
        "take",
        "call",
        "try",
        "have",
        "pass",
        "go",
        "get",
        "let",
        "text",
        "bring",
    ]
)
# Long key words whose typos are corrected (one edit; two for the longest).
_FUZZY_TARGETS = (
    "cancel",
    "reschedule",
    "confirm",
    "confirmed",
    "confirming",
    "absolutely",
    "definitely",
    "appointment",
    "perfect",
    "tomorrow",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "postpone",
    "available",
    "instead",
    "please",
    "certainly",
    "interested",
    "schedule",
    "different",
    "another",
    "anymore",
    "sounds",
)
_NOT_TYPOS = frozenset(
    {"cancer", "council", "counsel", "conform", "pleased", "sound", "another's", "cancels"}
)


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
    if word in _EXPANSIONS:
        return _EXPANSIONS[word]
    if word in _VOCABULARY:
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
    if len(word) >= 5 and word not in _NOT_TYPOS and word.isalpha():
        best: tuple[int, str] | None = None
        for target in _FUZZY_TARGETS:
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
        if token == "ill" and following in _ILL_VERBS:
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


# --- 4. lexicons -------------------------------------------------------------------------------
# Patterns match a clause's canonical words joined by single spaces.

_NEGATORS = frozenset({"not", "never", "unable", "no", "nor", "without"})
_BELIEF = frozenset({"think", "believe", "expect", "guess", "reckon", "suppose"})
_SUBJECTS = frozenset({"i", "we", "you", "he", "she", "they", "it", "that", "this", "see"})
_SCOPE = 4
_AUXILIARIES = frozenset(
    {"to", "be", "able", "going", "have", "got", "get", "really", "even", "actually", "quite"}
)
"""Words after a negator that it can reach (attendance phrases are short)."""

# Saying one will attend (negated: a refusal).
_ATTEND = re.compile(
    r"\b(?:be there|be here|make it|make the appointment|come|coming|attend|attending|"
    r"show up|showing up|go|going|be able|able to|be on time|keep (?:it|the appointment)|"
    r"think so|work|works|working for me|good|fine|possible|do it|do that|"
    r"be in|be available|available)\b"
)
_STRONG_CONFIRM = re.compile(
    r"\b(?:be there|be here|make it|see you|i will come|we will come|i am coming|we are coming|"
    r"i will be on time|still coming|coming|on my way|count me in|looking forward|"
    r"planning on it|plan on it|plan to be there|still on|i confirm|confirmed|confirm|"
    r"i will attend|we will attend|attending|i am in$|we are in$|can not wait|sounds like a plan|"
    r"as planned|as scheduled|as booked|still (?:good|fine|works|ok|planning)|"
    r"plan(?:ning)? to (?:come|be there|attend|make it)|"
    r"confirming|will do|you bet|for sure|of course|absolutely|definitely|certainly|"
    r"will come|will be coming|^can do$|roger|^bet$|^deal$|^done$|"
    r"(?:will|would|am going to) not (?:miss|forget) (?:it|this|that|the appointment))\b"
)
_WEAK_CONFIRM = re.compile(
    r"\b(?:yes|ok|sure|correct|perfect|great|fine|good|cool|works|work for me|sounds good|"
    r"sounds great|sounds perfect|sounds fine|all good|all set|agreed|got it|noted|"
    r"no problem|no worries|not a problem|no prob|excellent|wonderful|awesome|lovely|"
    r"that works|it works|will work|right on|ma am|sir)\b"
)
# "no problem", "no worries": positive although they start with "no".
_NOT_NEGATIONS = re.compile(
    r"\b(?:no (?:problem|problemo|prob|probs|worries|worry|biggie|doubt|question)|"
    r"not a problem|no need to (?:cancel|reschedule|worry)|not to worry|"
    r"do not (?:worry|cancel)|never mind|can not wait|why not)\b"
)
_EMPHATIC_NO = re.compile(r"\b(?:absolutely|definitely|certainly|of course|really|sure) not\b")
_BARE_NO = re.compile(r"^(?:no|no thanks|no thank you|no sorry|sorry no|no way|nope|no no)$")
_REFUSAL = re.compile(
    r"\b(?:i will pass|pass|not interested|i can not|we can not|i could not|"
    r"not for me|count me out|do not think so|no can do|not happening)$|"
    r"\b(?:absolutely|definitely|certainly|of course|really|sure|hell) (?:not|no)\b|"
    r"\b(?:not interested|count me out|i will pass|can not go|can not come)\b"
)
_CANCEL = re.compile(
    r"\b(?:cancel|call (?:it|this|that|the appointment)? ?off|"
    r"(?:do not|no longer|not) (?:really |even )?need (?:it|this|that|the appointment|"
    r"my appointment|an appointment|the visit|to come|to be seen)|"
    r"(?:do not|no longer) need (?:it )?(?:anymore|any more)|no longer need|no longer needed|"
    r"not needed|no longer necessary|not necessary anymore|will not be needing|"
    r"(?:remove|delete|drop|scrap) (?:my|the|this) appointment|"
    r"(?:do not|no longer) want (?:it|this|that|the appointment|my appointment)|"
    r"no longer interested|"
    r"(?:take|remove) me (?:off|from) (?:the|your) (?:schedule|calendar|books)|"
    r"no need for (?:it|the appointment|this appointment|the visit)|"
    r"skip (?:it|the appointment|this one|this appointment))\b"
)
_RESCHEDULE = re.compile(
    r"\b(?:reschedule|rebook|postpone|push (?:it |this |that |the appointment )?"
    r"(?:back|out|forward|later)|move (?:it|this|that|the appointment|my appointment|the time)|"
    r"move to|change (?:it|the time|the day|the date|my appointment|the appointment|times)|"
    r"switch (?:it|the time|days|times)|"
    r"(?:another|different|other|new|later|earlier|better) (?:time|times|day|days|date|slot|"
    r"slots|week|appointment)|be later|be earlier|do later|do earlier|make it later|"
    r"make it earlier|anything later|anything earlier|anything else|something later|"
    r"something earlier|other availability|too early|too late|push (?:it|this)$|"
    r"anything (?:available|open)|any (?:openings|availability|slots|times)|openings|"
    r"(?:morning|afternoon|evening) instead|instead in the (?:morning|afternoon|evening)|"
    r"(?:do|be) (?:in )?the (?:morning|afternoon|evening)|"
    r"(?:do|make|be|come|come in|move|push|get there|see you) (?:it |that |this |me )?"
    r"(?:a bit |a little |a little bit )?(?:earlier|later)|"
    r"(?:time|day|date|slot|hour|then)\b.*\b(?:does|do|will|would|is|is going to) not "
    r"(?:work|be good|be possible))\b"
)
_SOFT_RESCHEDULE = re.compile(
    r"\b(?:instead|how about|what about|can we do|could we do|can i do|could i do|can we make|"
    r"any chance|possible|available|open|better|prefer|rather|would rather|works better|"
    r"do you have|is there|can it be|could it be|change|move|switch|like|maybe|but)\b"
)
_LATER_INTENT = re.compile(
    r"\b(?:call|contact|text|reach out|get back to you)(?: you| back)? (?:to|and) "
    r"(?:rebook|reschedule)|(?:rebook|reschedule) (?:later|another time|some other time)\b"
)
_HEDGE = re.compile(
    r"\b(?:maybe|might|perhaps|probably|possibly|hopefully|hope so|i hope|i think|think so|"
    r"i guess|guess so|not sure|i do not know|not certain|let you know|let me (?:check|see|know)|"
    r"check (?:my|with)|get back to you|will try|i will try|try to|depends|depending|"
    r"if i can|not yet|not really|kind of|sort of|i am good$|yes and no|we will see$|"
    r"i will see$)\b"
)
_NOT_HEDGES = re.compile(
    r"\b(?:do not think so|(?:might|may) be (?:a bit |a little |a few minutes |\d+ minutes )?"
    r"late)\b"
)
"""Not doubts about the answer ("I'll be there, but might be 10 minutes late")."""
# A clause that calls a time bad rejects the times it names.
_BAD_TIME = re.compile(
    r"\b(?:bad|busy|booked|conflict|stuck|working|away|out of town|no good|not good|"
    r"too early|too late|impossible|tough|hard|difficult|rough|not great)\b"
)
_ASKS_ABOUT_BOOKING = re.compile(
    r"^(?:is|was) (?:it|that|this|the appointment|my appointment) (?:still )?(?:at|on|for)\b|"
    r"\bwhat time\b|\bwhen is\b|\bwhat day\b"
)
_FILLERS = r"^(?:(?:ok|so|and|um|umm|well|hey|hi|also|yes|sure|then|sorry|quick question) )*"
_ASKING = re.compile(
    _FILLERS + r"(?:what|where|when|who|which|why|how|is|are|am|do|does|did|was|were)\b(?! not\b)"
)
"""A clause that asks: its "still on", "ok" or "good" confirms nothing ("is it still on?")."""
_ASKS_ABOUT = re.compile(
    r"^(?:what|how|when|where|why|who|which|is there|are there|will there|do you|does it)\b|"
    r"\bif (?:i|we)\b"
)
_QUESTION_CUES = re.compile(
    r"\b(?:call me|give me a call|ring me|quick question|question|address|directions|"
    r"parking|price|cost|insurance|who is this|where)\b"
)
# Words that make a text time-like: only then is the date parser asked.
_TIME_WORD = re.compile(
    r"\d|\b(?:today|tomorrow|tonight|morning|afternoon|evening|noon|midday|midnight|mornings|"
    r"afternoons|evenings|weekdays|weekends|"
    r"mon|monday|tue|tues|tuesday|wed|weds|wednesday|thu|thur|thurs|thursday|fri|friday|sat|"
    r"saturday|sun|sunday|jan|january|feb|february|mar|march|apr|april|"
    r"may|jun|june|jul|july|aug|august|sep|sept|september|oct|october|nov|november|dec|"
    r"december)\b"
)
_NOT_TIME_PHRASE = re.compile(
    r"\b(?:good (?:morning|afternoon|evening|night)|have a (?:good|great|nice) \w+|"
    r"this morning|right now|a week|one week|\$ ?\d+(?:[.,]\d+)?|"
    r"\d+ ?(?:dollars|bucks|percent|%)|(?:this|next|the|that|a) (?:week|weekend|month)|"
    r"(?:in )?\d+ ?(?:min|mins|minutes|hours|hrs|hr|"
    r"secs?|seconds)|"
    r"on my way)\b"
)
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
_HOUR_CONTEXT = frozenset(
    [
        "at",
        "around",
        "about",
        "by",
        "for",
        "to",
        "do",
        "make",
        "how",
        "what",
        "maybe",
        "like",
        "or",
        "until",
        "till",
        "after",
        "before",
        "instead",
        "is",
        "it",
        "but",
        "say",
        "from",
        "and",
        "between",
        "than",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "mon",
        "tue",
        "tues",
        "wed",
        "weds",
        "thu",
        "thur",
        "thurs",
        "fri",
        "sat",
        "sun",
        "tomorrow",
        "today",
        "tonight",
        "morning",
        "afternoon",
        "evening",
        "noon",
        "tmrw",
        "try",
        "could",
        "can",
    ]
)
"""Words after which a bare 1-12 is an hour ("can we do 4", "friday 10", "maybe 9")."""
_HOUR_FILLERS = frozenset(
    [
        "instead",
        "please",
        "pls",
        "ok",
        "okay",
        "maybe",
        "then",
        "works",
        "work",
        "better",
        "would",
        "be",
        "good",
        "fine",
        "possible",
        "is",
        "it",
        "that",
        "but",
    ]
)
"""Words that may stand beside a bare hour in a reply that is just the hour ("4 instead?")."""
_OTHER_ACTION = re.compile(
    r"\b(?:call|phone|text|email|let you know|get back|pay|send|work|leave|leaving|fly|"
    r"flying|travel|traveling|back|off)\b"
)
"""A time beside another errand ("I'll call tomorrow", "I work until 5") proposes nothing."""
_PAST = re.compile(r"\b(?:last|ago|yesterday|was|were|had|did|got|since|used to)\b")
_OFFER = re.compile(
    r"\b(?:come|come in|be there|make it|do|go|available|free|open|book|fit me in|fit in|"
    r"works?|better|ok|fine|good|possible|instead|prefer|rather|switch|change|move|push|bump|"
    r"shift)\b"
)
_TIME_FILLERS = frozenset(
    [
        "at",
        "on",
        "the",
        "this",
        "next",
        "in",
        "of",
        "am",
        "pm",
        "a",
        "p",
        "m",
        "o'clock",
        "noon",
        "midday",
        "morning",
        "afternoon",
        "evening",
        "tonight",
        "today",
        "tomorrow",
        "same",
        "time",
        "day",
        "ok",
        "okay",
        "yes",
        "please",
        "pls",
        "then",
        "instead",
        "maybe",
        "sure",
        "is",
        "it",
        "but",
        "and",
        "or",
        "so",
        "let",
        "us",
        "just",
    ]
)
"""Words a reply that is only a time may hold beside it ("ok thursday at 2 then")."""
_COMPACT_CLOCK = re.compile(r"\b(\d{1,2})[.:]?(\d{2})\s?(am|pm|a\.m\.|p\.m\.)")
_DOT_CLOCK = re.compile(r"\b(\d{1,2})\.(\d{2})\b")
_INSTEAD_OF = re.compile(r"\b(?:instead of|rather than|not) (?:at |on )?[\w:]+(?:\s?(?:am|pm))?")
_MONTH_BEFORE = re.compile(
    r"\b(?:jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august|"
    r"sep|sept|september|oct|october|nov|november|dec|december)\.?\s*$"
)


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
        if word not in _AUXILIARIES:
            budget -= 1
        if word in _NEGATORS:
            # "no, I ..." is an interjection, not the negation of what follows
            return not (word == "no" and at + 1 < len(words) and words[at + 1] in _SUBJECTS)
        if word in _SUBJECTS and back > 1:
            previous = words[at - 1] if at >= 1 else ""
            if previous not in _BELIEF and previous not in _NEGATORS:
                return False
    return False


# --- 5. times ----------------------------------------------------------------------------------


_TYPO_WORD = re.compile(r"\b[a-z]{5,}\b")
_TIME_TARGETS = frozenset(
    {"tomorrow", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)


def _fix_time_word(match: re.Match[str]) -> str:
    """A misspelt day ("wendsday", "tommorow") spelt right for the date parser."""
    corrected = _correct(match.group(0))
    return corrected if corrected in _TIME_TARGETS else match.group(0)


def _proposes(line: str, reschedule: bool) -> bool:
    """Whether the time in a clause is offered as the new time: the clause asks for a change
    or offers to come then, or holds little but the time ("Thursday at 2?", "4pm then")."""
    offered = reschedule or _SOFT_RESCHEDULE.search(line) or _OFFER.search(line)
    if _PAST.search(line) or (_OTHER_ACTION.search(line) and not offered):
        return False
    if offered:
        return True
    rest = [
        word
        for word in line.split()
        if word not in _TIME_FILLERS and not _TIME_WORD.fullmatch(word) and not word[0].isdigit()
    ]
    return len(rest) <= 1


def _time_text(clause: str, *, rejected: bool = False) -> str | None:
    """The clause prepared for the date parser, or ``None`` when it names no time.

    Times the clause itself puts aside ("instead of 3", "not at 3") are left out, unless
    ``rejected`` (the clause is read for the times it rejects).
    """
    text = _NOT_TIME_PHRASE.sub(" ", _TYPO_WORD.sub(_fix_time_word, clause)).replace("@", " at ")
    if not rejected:
        text = _INSTEAD_OF.sub(" ", text)
    if not _TIME_WORD.search(text):
        return None
    text = _COMPACT_CLOCK.sub(r"\1:\2\3", text)
    text = _DOT_CLOCK.sub(r"\1:\2", text)

    def hour(match: re.Match[str]) -> str:
        before = text[: match.start()]
        if _MONTH_BEFORE.search(before) or re.search(r"\bat\s*$|@\s*$", before):
            return match.group(0)
        previous = re.search(r"([a-z]+)\W*$", before)
        alone = set(_tokens(before + " " + text[match.end() :])) <= _HOUR_FILLERS
        if alone or (previous is not None and previous.group(1) in _HOUR_CONTEXT):
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
    if _BAD_TIME.search(clause.line) or _CANCEL.search(clause.line):
        return True
    if words & {"not", "never", "unable"} and not _NOT_NEGATIONS.search(clause.line):
        return True
    return bool(_REFUSAL.search(clause.line))


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
        positive = _EMPHATIC_NO.sub(" not ", _NOT_NEGATIONS.sub(" ", line))
        words = tuple(positive.split())
        if line in ("cancel", "reschedule") and clause.asks:
            continue  # an echo ("cancel? no way, ...")
        strong, strong_negated = _negated(words, _STRONG_CONFIRM)
        weak, weak_negated = _negated(words, _WEAK_CONFIRM)
        if clause.asks or _ASKING.match(positive):
            strong = weak = False
        _, attend_negated = _negated(words, _ATTEND)
        cancel, cancel_negated = _negated(words, _CANCEL)
        if cancel and (clause.asks or _ASKING.match(line)) and _ASKS_ABOUT.search(line):
            cancel = False  # "is there a fee if I cancel?"
        if _LATER_INTENT.search(line):
            line = _LATER_INTENT.sub(" ", line)
        reschedule = _RESCHEDULE.search(line) is not None
        hedge = _HEDGE.search(_NOT_HEDGES.sub(" ", line)) is not None
        if "not sure" in line or "not really" in line:
            weak_negated = attend_negated = False
        signals.strong |= strong
        signals.weak |= weak or cancel_negated or bool(_NOT_NEGATIONS.search(line))
        signals.cancel |= cancel
        signals.refusal |= (
            strong_negated or weak_negated or attend_negated or bool(_REFUSAL.search(line))
        ) and not hedge
        signals.bare_no |= _BARE_NO.match(line) is not None
        signals.reschedule |= reschedule
        signals.soft_reschedule |= _SOFT_RESCHEDULE.search(line) is not None
        signals.hedge |= hedge
        signals.said_yes |= words[:1] == ("yes",)
        if clause.asks or _ASKING.match(positive) or _QUESTION_CUES.search(positive):
            signals.question |= len(words) > 1 or _QUESTION_CUES.search(positive) is not None
        if _ASKS_ABOUT_BOOKING.search(line):
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
            if _STRONG_CONFIRM.search(line) or signals.said_yes:
                signals.confirm_with_time = True  # "yes, tomorrow at 3"
    return signals, proposals


def understand(text: str, now: datetime, zone: ZoneInfo) -> Understanding:
    """What ``text`` answers to a confirm / reschedule / cancel question.

    ``now`` (aware) is when the person wrote and ``zone`` their time zone: a proposed time
    is read relative to them and returned with its offset.
    """
    clauses = _clauses(normalize(text))
    if not clauses:
        return Understanding("unclear", 0.0)
    signals, proposals = _read(clauses)
    when = _proposed_time(proposals, now, zone) if proposals else None
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
    return any(_BARE_NO.match(c.line) for c in clauses) and not any(
        _negated(tuple(_NOT_NEGATIONS.sub(" ", c.line).split()), _ATTEND)[1] for c in clauses
    )


_VOCABULARY = frozenset(
    word
    for pattern in (
        _STRONG_CONFIRM,
        _WEAK_CONFIRM,
        _CANCEL,
        _RESCHEDULE,
        _SOFT_RESCHEDULE,
        _HEDGE,
        _REFUSAL,
        _ATTEND,
        _BAD_TIME,
        _TIME_WORD,
        _QUESTION_CUES,
    )
    for word in re.findall(r"[a-z]{2,}", pattern.pattern)
) | frozenset(
    [
        "the",
        "a",
        "an",
        "i",
        "we",
        "you",
        "it",
        "is",
        "am",
        "are",
        "be",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "my",
        "me",
        "and",
        "or",
        "not",
        "no",
        "will",
        "would",
        "can",
        "could",
        "should",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "this",
        "that",
        "there",
        "here",
        "then",
        "thanks",
        "thank",
        "please",
        "sorry",
        "appointment",
        "tomorrow",
        "today",
    ]
)
