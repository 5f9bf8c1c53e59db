"""E.164 phone number validation and normalisation (backed by ``phonenumbers``).

Only international input is accepted: a leading ``+`` and the country calling code,
optionally formatted with spaces, dashes, dots and parentheses, e.g.
``"+1 (415) 555-2671"``. Numbers must be *valid* for their country according to
``phonenumbers.is_valid_number`` (not merely the right length).

Results (successes and failures) are memoised: batch intake validates up to 1,000
recipients per request and the same numbers recur across requests.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from agentsms.core.phone_fast import validate_digits
from agentsms.errors import invalid

__all__ = [
    "InvalidPhoneNumberError",
    "PhoneNumber",
    "calling_code",
    "country_of",
    "parse_phone",
    "parse_phone_field",
]

# Longest raw input we bother parsing (and caching). E.164 is at most 15 digits;
# this leaves room for generous formatting.
_MAX_RAW_LENGTH: Final = 40
_E164_MAX_DIGITS: Final = 15
_CACHE_SIZE: Final = 100_000
_NON_GEOGRAPHIC: Final = "001"  # phonenumbers' region for +800, +882, ...

# Separators allowed between digits; everything else (letters, '#', 'x', ...) is rejected.
_SEPARATORS: Final = re.compile(r"[\s\-.()]+")
_DIGITS: Final = re.compile(r"[0-9]+")


class InvalidPhoneNumberError(ValueError):
    """Raised by :func:`parse_phone`; ``reason`` is a short human-readable reason."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"invalid phone number {raw!r}: {reason}")
        self.raw = raw
        self.reason = reason


class PhoneNumber(NamedTuple):
    """A validated phone number: E.164 form and ISO 3166 region (None if non-geographic)."""

    e164: str
    country: str | None


def _region_label(country_code: int) -> str:
    region = phonenumbers.region_code_for_country_code(country_code)
    if region in (None, "ZZ", _NON_GEOGRAPHIC):
        return f"country code +{country_code}"
    return str(region)


_PARSE_ERRORS: Final[dict[int, str]] = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


@lru_cache(maxsize=_CACHE_SIZE)
def _parse(raw: str) -> PhoneNumber | str:
    """Parse ``raw``; return the number or the reason it is invalid (cacheable)."""
    text = raw.strip()
    if not text.startswith("+"):
        return "must start with + and country code"
    digits = text[1:]
    if not (digits.isascii() and digits.isdigit()):  # formatted, or not a number at all
        digits = _SEPARATORS.sub("", digits)
        if not digits:
            return "too short"
        if not _DIGITS.fullmatch(digits):
            return "may only contain digits, spaces, dashes, dots and parentheses after +"
    if len(digits) > _E164_MAX_DIGITS:
        return "too long"
    fast = validate_digits(digits)
    if fast is not None:
        return PhoneNumber(*fast)
    try:
        number = phonenumbers.parse("+" + digits, None)
    except NumberParseException as exc:
        return _PARSE_ERRORS.get(exc.error_type, "not a phone number")
    possible = phonenumbers.is_possible_number_with_reason(number)
    if number.country_code is None or possible == ValidationResult.INVALID_COUNTRY_CODE:
        return "unknown country code"
    where = _region_label(number.country_code)
    if possible in (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        return f"too short for {where}"
    if possible == ValidationResult.TOO_LONG:
        return f"too long for {where}"
    if possible == ValidationResult.INVALID_LENGTH:
        return f"invalid length for {where}"
    if not phonenumbers.is_valid_number(number):
        return f"not a valid number for {where}"
    region = phonenumbers.region_code_for_number(number)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    country = None if region in (None, "ZZ", _NON_GEOGRAPHIC) else str(region)
    return PhoneNumber(e164=str(e164), country=country)


def parse_phone(raw: str) -> PhoneNumber:
    """Validate ``raw`` and return it normalised to E.164.

    Accepts ``+`` followed by the country code and number, with optional spaces,
    dashes, dots and parentheses. Raises :class:`InvalidPhoneNumberError` (a
    ``ValueError``) with a human ``reason`` when the input lacks the ``+``, is too
    short/long, or is not a valid number for its country. Results are cached.
    """
    if len(raw) > _MAX_RAW_LENGTH:
        # Not cached: keeps arbitrary junk from filling the cache.
        raise InvalidPhoneNumberError(raw, "too long")
    result = _parse(raw)
    if isinstance(result, str):
        raise InvalidPhoneNumberError(raw, result)
    return result


def parse_phone_field(raw: str, field: str) -> PhoneNumber:
    """:func:`parse_phone`, failing as a validation error on input ``field``."""
    try:
        return parse_phone(raw)
    except InvalidPhoneNumberError as error:
        raise invalid(field, error.reason) from None


def country_of(e164: str) -> str | None:
    """Return the ISO region (e.g. ``"US"``) of a number, or None.

    None is returned for non-geographic numbers (+800, +882, ...) and for input that
    :func:`parse_phone` rejects.
    """
    try:
        return parse_phone(e164).country
    except InvalidPhoneNumberError:
        return None


@lru_cache(maxsize=_CACHE_SIZE)
def calling_code(e164: str) -> int | None:
    """The country calling code of an E.164 number (44 for GB, Guernsey and Jersey alike)."""
    try:
        code: int | None = phonenumbers.parse(e164, None).country_code
    except NumberParseException:
        return None
    return code


_LINE_TYPES: Final[dict[int, str]] = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline_or_mobile",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
}


def line_type(e164: str) -> str:
    """What the numbering plan says the line is (``mobile``, ``landline``, ...; ``unknown``)."""
    try:
        parsed = phonenumbers.parse(e164)
    except NumberParseException:
        return "unknown"
    return _LINE_TYPES.get(phonenumbers.number_type(parsed), "unknown")
