"""The words and phrases :mod:`agentsms.agents.understanding` reads replies with.

Patterns match a clause's canonical words (see ``understanding._canonical``) joined by
single spaces: "can't" is already "can not", "tmrw" "tomorrow", "yep" "yes".
"""

from __future__ import annotations

import re

EMOJI_WORDS = {
    "👍": " yes ",
    "👌": " yes ",
    "✅": " yes ",
    "✔": " yes ",
    "☑": " yes ",
    "🆗": " ok ",
    "🙌": " yes ",
    "💯": " yes ",
    "👎": " no ",
    "❌": " no ",
    "✖": " no ",
    "🚫": " no ",
}

EXPANSIONS: dict[str, str] = {
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
    "ther": "there",
    "sûr": "sure",
    **{
        w: "tomorrow"
        for w in ("tmrw", "tmr", "tmrow", "tmw", "tomoz", "2morrow", "2moro", "tmro", "tomo")
    },
    **{w: "tonight" for w in ("tonite", "2nite", "2night")},
    **{
        w: "wednesday"
        for w in ("wensday", "wednsday", "wedensday", "wedsday", "wenesday", "wendsay")
    },
    **{w: "tuesday" for w in ("tusday", "tuseday", "teusday", "tuesdy")},
    **{w: "thursday" for w in ("thursdy", "thurday", "thirsday")},
    **{w: "friday" for w in ("fryday", "firday", "frday", "fridy")},
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
            "certo",
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

ILL_VERBS = frozenset(
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
FUZZY_TARGETS = (
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

NOT_TYPOS = frozenset(
    {"cancer", "council", "counsel", "conform", "pleased", "sound", "another's", "cancels"}
)

NEGATORS = frozenset({"not", "never", "unable", "no", "nor", "without"})

BELIEF = frozenset({"think", "believe", "expect", "guess", "reckon", "suppose"})

SUBJECTS = frozenset({"i", "we", "you", "he", "she", "they", "it", "that", "this", "see"})

AUXILIARIES = frozenset(
    {"to", "be", "able", "going", "have", "got", "get", "really", "even", "actually", "quite"}
)
"""Words between a negator and what it negates that do not count against its reach."""

# Saying one will attend (negated: a refusal).
ATTEND = re.compile(
    r"\b(?:be there|be here|make it|make the appointment|come|coming|attend|attending|"
    r"show up|showing up|go|going|be able|able to|be on time|keep (?:it|the appointment)|"
    r"think so|work|works|working for me|good|fine|possible|do it|do that|"
    r"be in|be available|available)\b"
)

STRONG_CONFIRM = re.compile(
    r"\b(?:be there|be here|make it|see you|i will come|we will come|i am coming|we are coming|"
    r"i will be on time|still coming|coming|on my way|count me in|looking forward|"
    r"planning on it|plan on it|plan to be there|still on|i confirm|confirmed|confirm|"
    r"i will attend|we will attend|attending|i am in$|we are in$|can not wait|sounds like a plan|"
    r"as planned|as scheduled|as booked|still (?:good|fine|works|ok|planning)|"
    r"plan(?:ning)? to (?:come|be there|attend|make it)|"
    r"confirming|will do|you bet|for sure|of course|absolutely|definitely|certainly|"
    r"keep (?:it|the appointment|my appointment|the time|that)|"
    r"will come|will be coming|^can do$|roger|^bet$|^deal$|^done$|count on me|"
    r"(?:will|would|am going to) not (?:miss|forget) (?:it|this|that|the appointment))\b"
)

WEAK_CONFIRM = re.compile(
    r"\b(?:yes|ok|sure|correct|perfect|great|fine|good|cool|works|work for me|sounds good|"
    r"sounds great|sounds perfect|sounds fine|all good|all set|agreed|got it|noted|"
    r"no problem|no worries|not a problem|no prob|excellent|wonderful|awesome|lovely|"
    r"that works|it works|will work|right on|ma am|sir)\b"
)

# "no problem", "no worries": positive although they start with "no".
NOT_NEGATIONS = re.compile(
    r"\b(?:no (?:problem|problemo|prob|probs|worries|worry|biggie|doubt|question)|"
    r"not a problem|no need to (?:cancel|reschedule|worry)|not to worry|"
    r"do not (?:worry|cancel)|never mind|can not wait|why not)\b"
)

EMPHATIC_NO = re.compile(r"\b(?:absolutely|definitely|certainly|of course|really|sure) not\b")

BARE_NO = re.compile(r"^(?:no|no thanks|no thank you|no sorry|sorry no|no way|nope|no no)$")

REFUSAL = re.compile(
    r"\b(?:i will pass|pass|not interested|i can not|we can not|i could not|"
    r"not for me|count me out|do not think so|no can do|not happening)$|^can not$|"
    r"\b(?:absolutely|definitely|certainly|of course|really|sure|hell) (?:not|no)\b|"
    r"\b(?:not interested|count me out|i will pass|can not go|can not come)\b"
)

CANCEL = re.compile(
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

RESCHEDULE = re.compile(
    r"\b(?:reschedule|rebook|postpone|push (?:it |this |that |the appointment )?"
    r"(?:back|out|forward|later)|push (?:it|this|that|my appointment|the appointment)|"
    r"move (?:it|this|that|the appointment|my appointment|the time)|"
    r"move to|change (?:it|the time|the day|the date|my appointment|the appointment|times)|"
    r"switch (?:it|the time|days|times)|"
    r"next week|"
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

SOFT_RESCHEDULE = re.compile(
    r"\b(?:instead|how about|what about|can we do|could we do|can i do|could i do|can we make|"
    r"could we make|earliest|latest|soonest|"
    r"any chance|possible|available|open|better|prefer|rather|would rather|works better|"
    r"do you have|is there|can it be|could it be|change|move|switch|like|maybe|but)\b"
)

LATER_INTENT = re.compile(
    r"\b(?:call|contact|text|reach out|get back to you)(?: you| back)? (?:to|and) "
    r"(?:rebook|reschedule)|(?:rebook|reschedule) (?:later|another time|some other time)\b"
)

HEDGE = re.compile(
    r"\b(?:maybe|might|perhaps|probably|possibly|hopefully|hope so|i hope|i think|think so|"
    r"i guess|guess so|not sure|i do not know|not certain|let you know|let me (?:check|see|know)|"
    r"check (?:my|with)|get back to you|will try|i will try|try to|depends|depending|"
    r"if i can|not yet|not really|kind of|sort of|i am good$|yes and no|we will see$|"
    r"i will see$|(?:confirm|answer|reply|decide) (?:later|tonight|soon)|"
    r"will confirm (?:later|tonight|tomorrow|soon|when|once|after))\b"
)

NOT_HEDGES = re.compile(
    r"\b(?:do not think so|(?:might|may) be (?:a bit |a little |a few minutes |\d+ minutes )?"
    r"late)\b"
)
"""Not doubts about the answer ("I'll be there, but might be 10 minutes late")."""

# A clause that calls a time bad rejects the times it names.
BAD_TIME = re.compile(
    r"\b(?:bad|busy|booked|conflict|stuck|working|away|out of town|no good|not good|"
    r"too early|too late|impossible|tough|hard|difficult|rough|not great)\b"
)

ASKS_ABOUT_BOOKING = re.compile(
    r"^(?:is|was) (?:it|that|this|the appointment|my appointment) (?:still )?(?:at|on|for)\b|"
    r"\bwhat time\b|\bwhen is\b|\bwhat day\b"
)

FILLERS = r"^(?:(?:ok|so|and|um|umm|well|hey|hi|also|yes|sure|then|sorry|quick question) )*"

ASKING = re.compile(
    FILLERS + r"(?:what|where|when|who|which|why|how|is|are|am|do|does|did|was|were)\b(?! not\b)"
)
"""A clause that asks: its "still on", "ok" or "good" confirms nothing ("is it still on?")."""

ASKS_ABOUT = re.compile(
    r"^(?:what|how|when|where|why|who|which|is there|are there|will there|do you|does it)\b"
)
"""A question about cancelling, not a request ("what happens when I cancel?")."""
ASKS_ABOUT_CHANGE = re.compile(
    r"\bif\b|\b(?:fee|charge|cost|policy|penalty|other appointment)\b|^do i need\b"
)
"""A question about cancelling or rescheduling, not a request ("is there a fee if I cancel?",
"how do I reschedule if I need to?")."""

QUESTION_CUES = re.compile(
    r"\b(?:call me|give me a call|ring me|quick question|question|address|directions|"
    r"parking|price|cost|insurance|who is this|where)\b"
)

# Words that make a text time-like: only then is the date parser asked.
TIME_WORD = re.compile(
    r"\d|\b(?:today|tomorrow|tmrw|tmr|tmrow|tmw|tmro|tomoz|tonight|morning|afternoon|evening|noon|midday|midnight|mornings|"
    r"afternoons|evenings|weekdays|weekends|"
    r"mon|monday|tue|tues|tuesday|wed|weds|wednesday|thu|thur|thurs|thursday|fri|friday|sat|"
    r"saturday|sun|sunday|jan|january|feb|february|mar|march|apr|april|"
    r"may|jun|june|jul|july|aug|august|sep|sept|september|oct|october|nov|november|dec|"
    r"december)\b"
)

NOT_TIME_PHRASE = re.compile(
    r"\b(?:good (?:morning|afternoon|evening|night)|have a (?:good|great|nice) \w+|"
    r"this morning|right now|a week|one week|\$ ?\d+(?:[.,]\d+)?|"
    r"\d+ ?(?:dollars|bucks|percent|%)|(?:this|next|the|that|a) (?:week|weekend|month)|"
    r"(?:in )?\d+ ?(?:min|mins|minutes|hours|hrs|hr|"
    r"secs?|seconds)|"
    r"on my way)\b"
)

HOUR_CONTEXT = frozenset(
    [
        "at",
        "around",
        "about",
        "by",
        "for",
        "to",
        "do",
        "does",
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

HOUR_FILLERS = frozenset(
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

OTHER_ACTION = re.compile(
    r"\b(?:call|phone|text|email|let you know|get back|pay|send|work|leave|leaving|fly|"
    r"flying|travel|traveling|back|off)\b"
)
"""A time beside another errand ("I'll call tomorrow", "I work until 5") proposes nothing."""

PAST = re.compile(r"\b(?:last|ago|yesterday|was|were|had|did|got|since|used to)\b")

OFFER = re.compile(
    r"\b(?:come|come in|be there|make it|do|go|available|free|open|book|fit me in|fit in|"
    r"get in|get me in|squeeze me in|see me|"
    r"works?|better|ok|fine|good|possible|instead|prefer|rather|switch|change|move|push|bump|"
    r"shift)\b"
)

TIME_FILLERS = frozenset(
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
        "after",
        "before",
        "lunch",
        "lunchtime",
        "eod",
    ]
)
"""Words a reply that is only a time may hold beside it ("ok thursday at 2 then")."""

TIME_TARGETS = frozenset(
    {"tomorrow", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)

VOCABULARY = frozenset(
    word
    for pattern in (
        STRONG_CONFIRM,
        WEAK_CONFIRM,
        CANCEL,
        RESCHEDULE,
        SOFT_RESCHEDULE,
        HEDGE,
        REFUSAL,
        ATTEND,
        BAD_TIME,
        TIME_WORD,
        QUESTION_CUES,
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

ALTERNATIVE = re.compile(
    r"\b(?:change|another|different|other|instead|how about|what about|can we|could we|"
    r"later|earlier|reschedule)\b"
)
"""Asking for another time: a refusal with it ("that doesn't work, can we change?") is a
reschedule, not a cancellation."""
