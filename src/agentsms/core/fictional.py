"""Phone numbers reserved for fiction and tests, which only the simulator delivers to.

Vendors' examples and films use numbers no one can have: NANP's 555 numbers (``+1 555 …``
and ``NXX-555-XXXX``), the ranges Ofcom sets aside for drama in the UK and those ACMA sets
aside for fiction in Australia. Some of them are invalid to ``phonenumbers`` (``+1 555 123
4567``, ``07700 900123``), so strict validation refuses them; a real carrier would too. The
simulator is a test carrier: a send to one of these numbers goes through when its sender
is a simulator number, and is refused, before anything is stored, when it is not.
"""

from __future__ import annotations

import re
from typing import Final

from agentsms.core.phone import PhoneNumber

_SEPARATORS: Final = re.compile(r"[\s\-.()]+")

# Digits after "+", per country: the reserved ranges.
_RANGES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    # NANP: the 555 "area code" and the 555 exchange of every area code.
    ("US", re.compile(r"1(?:555\d{7}|[2-9]\d{2}555\d{4})")),
    # Ofcom, "Telephone numbers for drama purposes": Leeds to Reading (011x 496 0xxx),
    # Birmingham to Manchester (01x1 496 0xxx), Tyneside (0191 498 0xxx), London
    # (020 7946 0xxx), Northern Ireland (028 9649 6xxx), Cardiff (029 2018 0xxx), no area
    # (01632 960xxx), mobile (07700 900xxx), freephone (08081 570xxx), premium rate
    # (0909 879 0xxx), UK-wide (03069 990xxx).
    (
        "GB",
        re.compile(
            r"44(?:11[3-8]4960|1[2-6]14960|1914980|2079460|2896496|2920180|1632960"
            r"|7700900|8081570|9098790|3069990)\d{3}"
        ),
    ),
    # ACMA, numbers for use in creative works: (0X) 5550 xxxx and (0X) 7010 xxxx for
    # NSW/ACT, Victoria/Tasmania, Queensland, SA/WA/NT, and mobiles 0491 570 006 to 159.
    ("AU", re.compile(r"61(?:[2378](?:5550|7010)\d{4}|491570(?:00[6-9]|0[1-9]\d|1[0-5]\d))")),
)


def fictional(raw: str) -> PhoneNumber | None:
    """``raw`` (``+`` and digits, formatted or not) if it is in a reserved range, else None."""
    text = raw.strip()
    if not text.startswith("+"):
        return None
    digits = _SEPARATORS.sub("", text[1:])
    for country, pattern in _RANGES:
        if pattern.fullmatch(digits):
            return PhoneNumber(e164=f"+{digits}", country=country)
    return None
