"""Unit tests for agentsms.core.phone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentsms.core import phone
from agentsms.core.phone import InvalidPhoneNumberError, PhoneNumber, country_of, parse_phone

BAD_CHARS = "may only contain digits, spaces, dashes, dots and parentheses after +"


@pytest.mark.parametrize(
    ("raw", "e164", "country"),
    [
        ("+14155552671", "+14155552671", "US"),
        ("+1 (415) 555-2671", "+14155552671", "US"),
        ("+1.415.555.2671", "+14155552671", "US"),
        ("  +1 415 555 2671\n", "+14155552671", "US"),
        ("+1-613-555-0123", "+16135550123", "CA"),
        ("+44 7400 123456", "+447400123456", "GB"),
        ("+44 (0)20 7183 8750", "+442071838750", "GB"),
        ("+33 6 12 34 56 78", "+33612345678", "FR"),
        ("+49 151 23456789", "+4915123456789", "DE"),
        ("+800 1234 5678", "+80012345678", None),  # non-geographic freephone
    ],
)
def test_valid_numbers_are_normalised(raw: str, e164: str, country: str | None) -> None:
    assert parse_phone(raw) == PhoneNumber(e164=e164, country=country)


def test_gb_mobile_from_brief_is_valid() -> None:
    # phonenumbers attributes this +44 7911 range to Guernsey (a +44 region).
    number = parse_phone("+447911123456")
    assert number.e164 == "+447911123456"
    assert number.country in {"GB", "GG"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("14155552671", "must start with + and country code"),
        ("(415) 555-2671", "must start with + and country code"),
        ("", "must start with + and country code"),
        ("00 1 415 555 2671", "must start with + and country code"),
        ("+", "too short"),
        ("+ ( ) -", "too short"),
        ("+15555555555", "not a valid number for US"),
        ("+447700900123", "not a valid number for GB"),
        ("+1415", "too short for US"),
        ("+1 415 555 2671 11111", "too long"),  # 16 digits > E.164 max
        ("+1415555267111", "too long for US"),
        ("+1-800-FLOWERS", BAD_CHARS),
        ("+1 415 555 2671 ext 12", BAD_CHARS),
        ("+1 415 555+2671", BAD_CHARS),
        ("+999 1234 5678", "unknown country code"),
        ("+" + "1" * 60, "too long"),
    ],
)
def test_invalid_numbers_have_reasons(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumberError) as info:
        parse_phone(raw)
    assert info.value.reason == reason
    assert info.value.raw == raw
    assert reason in str(info.value)


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="must start with"):
        parse_phone("4155552671")


def test_successes_and_failures_are_cached() -> None:
    phone._parse.cache_clear()
    first = parse_phone("+1 415 555 2671")
    assert parse_phone("+1 415 555 2671") is first
    for _ in range(2):
        with pytest.raises(InvalidPhoneNumberError):
            parse_phone("+15555555555")
    stats = phone._parse.cache_info()
    assert (stats.hits, stats.misses) == (2, 2)
    assert stats.maxsize is not None
    assert stats.maxsize >= 100_000


def test_overlong_input_is_not_cached() -> None:
    phone._parse.cache_clear()
    with pytest.raises(InvalidPhoneNumberError, match="too long"):
        parse_phone("+1" + " " * 100 + "4155552671")
    assert phone._parse.cache_info().currsize == 0


def test_phone_number_is_frozen() -> None:
    number = parse_phone("+14155552671")
    with pytest.raises(AttributeError):
        number.e164 = "+1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("e164", "country"),
    [
        ("+14155552671", "US"),
        ("+16135550123", "CA"),
        ("+447400123456", "GB"),
        ("+81312345678", "JP"),
        ("+80012345678", None),
        ("+15555555555", None),
        ("not a number", None),
    ],
)
def test_country_of(e164: str, country: str | None) -> None:
    assert country_of(e164) == country


@given(st.text(max_size=30))
def test_parse_phone_never_raises_anything_else(raw: str) -> None:
    number: PhoneNumber | None = None
    reason = ""
    try:
        number = parse_phone(raw)
    except InvalidPhoneNumberError as exc:
        reason = exc.reason
    if number is None:
        assert reason
    else:
        assert number.e164.startswith("+")
        assert number.e164[1:].isdigit()
        assert parse_phone(number.e164) == number


@given(st.integers(min_value=0, max_value=9999), st.sampled_from(["", " ", "-", "."]))
def test_formatting_does_not_change_result(line: int, sep: str) -> None:
    raw = f"+1{sep}(415){sep}555{sep}{line:04d}"
    compact = f"+1415555{line:04d}"
    assert parse_phone(raw) == parse_phone(compact)
    assert parse_phone(raw).e164 == compact
