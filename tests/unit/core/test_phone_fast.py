"""The fast E.164 path must agree with phonenumbers wherever it answers."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from agentsms.core.phone_fast import validate_digits

CALLING_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def library_answer(digits: str) -> tuple[str, str | None] | None:
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    region = phonenumbers.region_code_for_number(parsed)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, None if region == "001" else region


@settings(max_examples=3000, deadline=None)
@given(
    code=st.sampled_from(CALLING_CODES),
    national=st.text(alphabet="0123456789", min_size=4, max_size=13),
)
def test_fast_answers_agree_with_phonenumbers(code: int, national: str) -> None:
    digits = f"{code}{national}"
    fast = validate_digits(digits)
    if fast is not None:
        assert fast == library_answer(digits)


def test_every_example_number_is_answered_like_the_library() -> None:
    answered = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in range(12):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            digits = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:]
            fast = validate_digits(digits)
            if fast is not None:
                answered += 1
                assert fast == library_answer(digits), digits
    assert answered > 1000


def test_fast_path_declines_what_it_cannot_decide() -> None:
    assert validate_digits("15555555555") is None  # invalid US number
    assert validate_digits("4407911123456") is None  # national prefix after +44
    assert validate_digits("999123456") is None  # unknown calling code
    assert validate_digits("14155552671") == ("+14155552671", "US")
