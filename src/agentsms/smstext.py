"""SMS text: the GSM 03.38 alphabet, GSM-7 / UCS-2 segment counting and splitting.

Pure functions shared by ``core`` (counting, billing) and the carrier adapters (SMPP
encodes and splits with them), so a text is sent exactly as it was counted.

We keep our own implementation because published packages get emoji, GSM escape
sequences or UTF-16 surrogate pairs wrong.

Rules implemented here:

* A text is sent as **GSM-7** when every character is in the GSM 03.38 default
  alphabet or its extension table. Extension characters (``^ { } \\ [ ~ ] | €`` and
  form feed) are sent as an escape (0x1B) plus one septet, so they count 2 septets.
  One segment holds 160 septets; a concatenated message uses parts of 153 septets
  (7 septets go to the UDH), and an escape pair is never split across parts.
* Otherwise the text is sent as **UCS-2** (really UTF-16): one segment holds 70 code
  units, a concatenated message uses parts of 67 units, and a surrogate pair (any
  character outside the BMP, e.g. most emoji) counts 2 units and is never split.
* The empty text is 0 segments (a media-only MMS has no text segment). It is
  reported as GSM-7 with 0 units.

Lone surrogate code points (which a Python ``str`` can hold) are counted as one
UTF-16 unit each; a lone high surrogate immediately followed by a lone low
surrogate is treated as a pair and is not split.

Everything here is pure and cheap: membership is a frozenset test and counting
uses C-level regex/codec operations; only texts needing several parts *and*
containing double-width characters walk part boundaries (a few steps per part).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "GSM7_MULTI_PART",
    "GSM7_SINGLE",
    "UCS2_MULTI_PART",
    "UCS2_SINGLE",
    "Encoding",
    "SegmentInfo",
    "count_segments",
    "decode_gsm7",
    "encode_gsm7",
    "is_gsm7",
    "pack_septets",
    "split_segments",
    "unpack_septets",
]

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_SINGLE: Final = 160
GSM7_MULTI_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_MULTI_PART: Final = 67

_ESC: Final = 0x1B

# GSM 03.38 default alphabet, indexed by septet value. Position 0x1B is the escape
# to the extension table and is not a character (placeholder, never matched).
_GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x00ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_GSM7_BASIC) == 128

# GSM 03.38 extension table: character -> septet sent after the escape.
_GSM7_EXTENSION: Final[dict[str, int]] = {
    "\x0c": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_BASIC_CHARS: Final = frozenset(c for i, c in enumerate(_GSM7_BASIC) if i != _ESC)
_EXT_CHARS: Final = frozenset(_GSM7_EXTENSION)
_GSM7_CHARS: Final = _BASIC_CHARS | _EXT_CHARS

# Character classes searched in C: extension characters (2 septets), astral
# characters (2 UTF-16 units) and lone high surrogates (pairs to keep together).
_EXT_RE: Final = re.compile("[" + re.escape("".join(sorted(_EXT_CHARS))) + "]")
_ASTRAL_RE: Final = re.compile("[\U00010000-\U0010ffff]")
_HIGH_SURROGATE_RE: Final = re.compile("[\ud800-\udbff]")

# str.translate table mapping every GSM character to its unpacked septet(s).
_TO_SEPTETS: Final[dict[int, str]] = {
    **{ord(c): chr(i) for i, c in enumerate(_GSM7_BASIC) if i != _ESC},
    **{ord(c): chr(_ESC) + chr(v) for c, v in _GSM7_EXTENSION.items()},
}


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a text is billed/sent as SMS.

    ``units`` is septets for GSM-7 (escape pairs count 2) and UTF-16 code units for
    UCS-2 (surrogate pairs count 2). ``characters`` is ``len(text)`` (code points).
    """

    encoding: Encoding
    segments: int
    units: int
    characters: int


def is_gsm7(text: str) -> bool:
    """Return True when ``text`` can be sent with the GSM 03.38 alphabet (+ extension)."""
    return _GSM7_CHARS.issuperset(text)


def encode_gsm7(text: str) -> bytes:
    """Encode ``text`` as unpacked GSM-7 septets, one per byte.

    Extension-table characters are emitted as the escape byte 0x1B followed by their
    septet. Raises ``ValueError`` when ``text`` contains a character outside GSM-7.
    """
    if not _GSM7_CHARS.issuperset(text):
        bad = sorted(set(text) - _GSM7_CHARS)
        raise ValueError(f"not encodable as GSM-7: {''.join(bad)!r}")
    return text.translate(_TO_SEPTETS).encode("ascii")


_FROM_EXTENSION: Final[dict[int, str]] = {v: c for c, v in _GSM7_EXTENSION.items()}


def decode_gsm7(septets: bytes) -> str:
    """Decode unpacked GSM-7 septets (one per byte) back to text.

    An escape followed by a septet the extension table does not define stands for the
    default-alphabet character (3GPP TS 23.038 6.2.1.1); a trailing lone escape is dropped.
    Bytes above 0x7F are masked to 7 bits.
    """
    out: list[str] = []
    escaped = False
    for byte in septets:
        value = byte & 0x7F
        if escaped:
            out.append(_FROM_EXTENSION.get(value, _GSM7_BASIC[value] if value != _ESC else " "))
            escaped = False
        elif value == _ESC:
            escaped = True
        else:
            out.append(_GSM7_BASIC[value])
    return "".join(out)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack 7-bit septets into octets (3GPP TS 23.038 6.1.2.1.1).

    ``fill_bits`` zero bits come first (they align the text after a user data header).
    When the last octet would leave 7 spare bits, they carry a CR so that the receiver
    does not read an extra ``@``; a text that really ends in CR on an octet boundary gets a
    second CR (displayed the same, per 23.038).
    """
    if septets.endswith(b"\r") and (len(septets) * 7 + fill_bits) % 8 == 0:
        septets += b"\r"
    value = 0
    bits = fill_bits
    out = bytearray()
    for septet in septets:
        value |= (septet & 0x7F) << bits
        bits += 7
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        if bits == 1:
            value |= 0x0D << 1
        out.append(value & 0xFF)
    return bytes(out)


def unpack_septets(octets: bytes, fill_bits: int = 0) -> bytes:
    """Unpack octets into 7-bit septets (inverse of :func:`pack_septets`).

    The septet count is not carried by SMPP, so a final septet made of padding (a CR in
    the 7 spare bits of the last octet) is dropped. A text that ends in CR on an octet
    boundary comes back with the CR doubled, which 23.038 defines as the same as one CR.
    """
    total = len(octets) * 8 - fill_bits
    value = int.from_bytes(octets, "little") >> fill_bits
    count = total // 7
    septets = bytes((value >> (7 * i)) & 0x7F for i in range(count))
    if count and total % 7 == 0 and septets[-1] == 0x0D:
        return septets[:-1]  # 7 spare bits filled with CR: padding, not text
    return septets


def _is_high(ch: str) -> bool:
    return "\ud800" <= ch <= "\udbff"


def _is_low(ch: str) -> bool:
    return "\udc00" <= ch <= "\udfff"


def _cut_points(text: str, doubles: list[int], limit: int, keep_surrogates: bool) -> list[int]:
    """End index (exclusive) of each part, greedily filling every part.

    ``doubles`` lists (sorted) the indices of characters weighing 2 units (escape
    pairs or astral characters); every other character weighs 1, so the weight of
    ``text[a:b]`` is ``b - a`` plus the number of ``doubles`` in ``[a, b)``. When a
    candidate slice is ``excess`` units over ``limit`` at least ``ceil(excess / 2)``
    characters must go; dropping exactly that many never overshoots the largest
    slice that fits.
    """
    n = len(text)
    cuts: list[int] = []
    start = 0
    before = 0  # number of doubles before ``start``
    while start < n:
        end = min(start + limit, n)
        weight = end - start + bisect_left(doubles, end, before) - before
        while weight > limit:
            end -= (weight - limit + 1) // 2
            weight = end - start + bisect_left(doubles, end, before) - before
        # Never separate a lone high surrogate from the lone low surrogate after it.
        if keep_surrogates and end < n and _is_high(text[end - 1]) and _is_low(text[end]):
            end -= 1
        cuts.append(end)
        start = end
        before = bisect_left(doubles, start, before)
    return cuts


def _analyse(text: str) -> tuple[SegmentInfo, list[int] | None]:
    """Return the info and the part boundaries (None when plain fixed-size slicing)."""
    n = len(text)
    if not n:
        return SegmentInfo("GSM-7", 0, 0, 0), None
    if _GSM7_CHARS.issuperset(text):
        escapes = len(_EXT_RE.findall(text))
        units = n + escapes
        if units <= GSM7_SINGLE:
            return SegmentInfo("GSM-7", 1, units, n), None
        if not escapes:
            return SegmentInfo("GSM-7", -(-units // GSM7_MULTI_PART), units, n), None
        doubles = [m.start() for m in _EXT_RE.finditer(text)]
        cuts = _cut_points(text, doubles, GSM7_MULTI_PART, keep_surrogates=False)
        return SegmentInfo("GSM-7", len(cuts), units, n), cuts
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    if units <= UCS2_SINGLE:
        return SegmentInfo("UCS-2", 1, units, n), None
    if units == n and _HIGH_SURROGATE_RE.search(text) is None:
        return SegmentInfo("UCS-2", -(-units // UCS2_MULTI_PART), units, n), None
    doubles = [m.start() for m in _ASTRAL_RE.finditer(text)]
    cuts = _cut_points(text, doubles, UCS2_MULTI_PART, keep_surrogates=True)
    return SegmentInfo("UCS-2", len(cuts), units, n), cuts


def count_segments(text: str) -> SegmentInfo:
    """Return the encoding, number of SMS segments and unit counts for ``text``.

    The empty text is 0 segments (media-only MMS) and is reported as GSM-7.
    ``count_segments(t).segments == len(split_segments(t))`` for every ``t``.
    """
    return _analyse(text)[0]


def split_segments(text: str) -> list[str]:
    """Split ``text`` into the parts actually sent as SMS segments.

    Concatenating the parts gives ``text`` back. A text that fits one segment is
    returned as a single part; otherwise each part fits the concatenated-part limit
    (153 septets / 67 UTF-16 units) and no escape or surrogate pair is split.
    The empty text gives no parts.
    """
    info, cuts = _analyse(text)
    if info.segments <= 1:
        return [text] if text else []
    if cuts is None:
        step = GSM7_MULTI_PART if info.encoding == "GSM-7" else UCS2_MULTI_PART
        return [text[i : i + step] for i in range(0, len(text), step)]
    parts: list[str] = []
    start = 0
    for end in cuts:
        parts.append(text[start:end])
        start = end
    return parts
