"""Each provider words its own error codes; core asks by provider name."""

from __future__ import annotations

import pytest

from agentsms.providers.catalog import error_description


@pytest.mark.parametrize(
    ("provider", "code", "words"),
    [
        ("simulator", "30007", "carrier violation (filtered)"),
        ("twilio", "30007", "message filtered by the carrier"),
        ("telnyx", "40008", "undeliverable"),
        ("smpp", "UNDELIV", "message undeliverable"),
    ],
)
def test_a_code_is_worded_by_its_own_provider(provider: str, code: str, words: str) -> None:
    assert error_description(provider, code) == words


def test_unknown_codes_and_providers_have_no_words() -> None:
    assert error_description("twilio", "99999") is None
    assert error_description("no-such-carrier", "30003") is None
    # The same number means different things at different carriers.
    assert error_description("telnyx", "30003") is None
