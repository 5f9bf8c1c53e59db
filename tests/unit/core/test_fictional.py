"""The ranges reserved for fiction and tests (NANP 555, Ofcom drama, ACMA creative works)."""

from __future__ import annotations

import pytest

from agentsms.core.fictional import fictional
from agentsms.core.phone import PhoneNumber


@pytest.mark.parametrize(
    ("raw", "e164", "country"),
    [
        ("+1 555 123 4567", "+15551234567", "US"),  # Vida's example, area code 555
        ("+1 (555) 123-0001", "+15551230001", "US"),
        ("+1 212 555 0000", "+12125550000", "US"),  # NXX-555-XXXX
        ("+44 7700 900123", "+447700900123", "GB"),  # Ofcom: mobile
        ("+44 1632 960001", "+441632960001", "GB"),  # Ofcom: no area
        ("+44 20 7946 0999", "+442079460999", "GB"),  # Ofcom: London
        ("+44 113 496 0000", "+441134960000", "GB"),  # Ofcom: Leeds
        ("+44 161 496 0500", "+441614960500", "GB"),  # Ofcom: Manchester
        ("+44 28 9649 6123", "+442896496123", "GB"),  # Ofcom: Northern Ireland
        ("+44 808 157 0123", "+448081570123", "GB"),  # Ofcom: freephone
        ("+61 491 570 006", "+61491570006", "AU"),  # ACMA: mobile, first
        ("+61 491 570 159", "+61491570159", "AU"),  # ACMA: mobile, last
        ("+61 2 5550 1234", "+61255501234", "AU"),  # ACMA: NSW
        ("+61 3 7010 0000", "+61370100000", "AU"),  # ACMA: Victoria
    ],
)
def test_reserved_ranges(raw: str, e164: str, country: str) -> None:
    assert fictional(raw) == PhoneNumber(e164, country)


@pytest.mark.parametrize(
    "raw",
    [
        "15551234567",  # no +
        "+1 555 123 456",  # a digit short
        "+1 212 556 0000",
        "+44 7700 901000",  # just past Ofcom's mobile range
        "+44 20 7946 1000",
        "+61 491 570 005",  # just before ACMA's mobiles
        "+61 491 570 160",
        "+61 4 5550 1234",
        "+33 1 99 00 00 00",  # not a range of ours
    ],
)
def test_other_numbers_are_not_reserved(raw: str) -> None:
    assert fictional(raw) is None
