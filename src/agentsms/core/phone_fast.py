"""A fast path for validating numbers already in E.164 digits, exact to ``phonenumbers``.

``phonenumbers.parse`` + ``is_valid_number`` are slow for batch intake, which checks up to
10,000 numbers a request (NANP numbers try each of its 25 regions' patterns through several
layers of Python). This module compiles the same metadata patterns once per calling
code and applies ``phonenumbers``' own rules (region choice by leading digits, then the
number-type patterns) in a few regex matches. It answers only when the number is plainly
valid; anything else (including digits that start with a national prefix, which
``phonenumbers`` may strip) returns None so the caller falls back to the library, which
also gives the reason. A property test checks this agrees with ``phonenumbers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata

# Validity is "any type matches", so the common types go first.
_TYPE_FIELDS = (
    "mobile",
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_NON_GEOGRAPHIC = "001"


@dataclass(frozen=True, slots=True)
class _Region:
    code: str
    leading: re.Pattern[str] | None
    valid: re.Pattern[str]
    """Full-matches a national number valid here: its general pattern and lengths, and
    any number type's pattern and lengths, in one regex."""


def _desc(raw: Any) -> str | None:
    """A number description as a regex that must match the whole national number (lengths
    included), or None when no number fits it."""
    if raw is None or not raw.national_number_pattern:
        return None
    given = set(raw.possible_length or ())
    lengths = sorted(n for n in given if n > 0)
    if given and not lengths:
        return None
    sized = "(?=(?:" + "|".join(f".{{{n}}}" for n in lengths) + r")\Z)" if lengths else ""
    return f"{sized}(?:{raw.national_number_pattern})"


def _validity(metadata: Any) -> re.Pattern[str] | None:
    general = _desc(metadata.general_desc)
    if general is None:
        return None
    types = [d for d in (_desc(getattr(metadata, f, None)) for f in _TYPE_FIELDS) if d]
    if not types:
        return re.compile("(?!)")
    return re.compile(rf"(?=(?:{general})\Z)(?:{'|'.join(types)})")


@dataclass(frozen=True, slots=True)
class _CallingCode:
    regions: tuple[_Region, ...]
    # The main region's national prefix pattern (the one ``phonenumbers.parse`` strips),
    # and the same as plain digits when it is just that (NANP's "1").
    national_prefix: re.Pattern[str] | None
    national_digits: str | None = None


@cache
def _calling_code(leading: str) -> _CallingCode | None:
    """The calling code spelled by the ``leading`` digits (cached by text: no int() per
    number)."""
    calling_code = int(leading)
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(calling_code)
    if not codes:
        return None
    regions: list[_Region] = []
    national_prefix: re.Pattern[str] | None = None
    for code in codes:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(calling_code, code)
        if metadata is None:
            return None
        # ``phonenumbers.parse`` strips the national prefix of the calling code's main
        # region (the first) only.
        prefix = metadata.national_prefix_for_parsing or metadata.national_prefix
        if prefix and code == codes[0]:
            national_prefix = re.compile(prefix)
        valid = _validity(metadata)
        if valid is None:
            continue
        regions.append(
            _Region(
                code=code,
                leading=re.compile(metadata.leading_digits) if metadata.leading_digits else None,
                valid=valid,
            )
        )
    digits = None
    if national_prefix is not None and national_prefix.pattern.isdigit():
        digits = national_prefix.pattern
    return _CallingCode(tuple(regions), national_prefix, digits)


def validate_digits(digits: str) -> tuple[str, str | None] | None:
    """For ``digits`` (E.164 without the ``+``), ``(e164, region)`` when plainly valid.

    None means "ask phonenumbers": invalid, unusual, or not decidable here.
    """
    for size in (1, 2, 3):
        if len(digits) <= size:
            return None
        code = _calling_code(digits[:size])
        if code is not None:
            break
    else:
        return None
    nsn = digits[size:]
    regions = code.regions
    if not regions or nsn.startswith("0"):
        return None
    if code.national_digits is not None:
        if nsn.startswith(code.national_digits):
            return None
    elif code.national_prefix is not None and code.national_prefix.match(nsn):
        return None
    chosen = _choose_region(regions, nsn)
    if chosen is None:
        return None
    country = None if chosen.code == _NON_GEOGRAPHIC else chosen.code
    return "+" + digits, country


def _choose_region(regions: tuple[_Region, ...], nsn: str) -> _Region | None:
    """``phonenumbers``' region choice for a shared calling code, then its validity check."""
    if len(regions) == 1:
        return regions[0] if regions[0].valid.fullmatch(nsn) else None
    for region in regions:
        if region.leading is not None:
            if region.leading.match(nsn):
                return region if region.valid.fullmatch(nsn) else None
        elif region.valid.fullmatch(nsn):
            return region
    return None
