from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from agentsms.core.numbers import SenderPool, can_carry, default_channel
from agentsms.core.phone import parse_phone
from agentsms.errors import ValidationFailed


def number(id: str, e164: str, country: str, caps: list[str], mps: float = 1.0) -> dict[str, Any]:
    return {
        "id": id,
        "number": e164,
        "country": country,
        "capabilities": caps,
        "throughput_mps": mps,
    }


US = number("num_us", "+14155550100", "US", ["sms", "mms"])
GB = number("num_gb", "+447911123400", "GB", ["sms"])
WA = number("num_wa", "+14155550101", "US", ["whatsapp"])


def test_default_channel_prefers_sms_then_mms_for_media() -> None:
    assert default_channel(["sms", "mms"], has_media=False) == "sms"
    assert default_channel(["sms", "mms"], has_media=True) == "mms"
    assert default_channel(["whatsapp"], has_media=True) == "whatsapp"


def test_sms_cannot_carry_media() -> None:
    assert not can_carry(GB, None, has_media=True)
    assert can_carry(US, None, has_media=True)
    assert not can_carry(US, "sms", has_media=True)


def test_sticky_sender_wins_over_country() -> None:
    pool = SenderPool([US, GB], sticky={"+447400123456": "num_us"})
    chosen = pool.choose(parse_phone("+447400123456"), None, has_media=False)
    assert chosen is not None
    assert chosen["id"] == "num_us"


def test_country_match_when_no_history() -> None:
    pool = SenderPool([US, GB])
    chosen = pool.choose(parse_phone("+447400123456"), None, has_media=False)
    assert chosen is not None
    assert chosen["id"] == "num_gb"


def test_channel_filters_before_anything_else() -> None:
    pool = SenderPool([US, WA], sticky={"+14155552671": "num_us"})
    chosen = pool.choose(parse_phone("+14155552671"), "whatsapp", has_media=False)
    assert chosen is not None
    assert chosen["id"] == "num_wa"


def test_nothing_fits_gives_a_reason() -> None:
    pool = SenderPool([GB])
    assert pool.choose(parse_phone("+14155552671"), "imessage", has_media=False) is None
    error = pool.no_sender_reason("imessage", has_media=False)
    assert error.errors[0].field == "from"
    assert "imessage" in error.errors[0].message


def test_empty_pool_says_so() -> None:
    error = SenderPool([]).no_sender_reason(None, has_media=False)
    assert "no sender numbers" in error.errors[0].message


def test_spread_follows_throughput() -> None:
    fast = number("num_fast", "+14155550102", "US", ["sms"], mps=9.0)
    slow = number("num_slow", "+14155550103", "US", ["sms"], mps=1.0)
    pool = SenderPool([fast, slow])
    counts = Counter(
        pool.choose(parse_phone(f"+1415555{2000 + i:04d}"), None, False)["id"]  # type: ignore[index]
        for i in range(2000)
    )
    assert counts["num_slow"] > 100
    assert counts["num_fast"] > 5 * counts["num_slow"]


def test_explicit_from_must_be_in_pool() -> None:
    pool = SenderPool([US])
    assert pool.explicit("+1 415 555 0100", "from")["id"] == "num_us"
    with pytest.raises(ValidationFailed) as caught:
        pool.explicit("+14155550199", "from")
    assert caught.value.errors[0].field == "from"
