"""Unit and property tests for agentsms.core.segments."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentsms.core.segments import (
    GSM7_MULTI_PART,
    GSM7_SINGLE,
    UCS2_MULTI_PART,
    UCS2_SINGLE,
    SegmentInfo,
    count_segments,
    encode_gsm7,
    is_gsm7,
    split_segments,
)

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = "^{}\\[~]|€\x0c"
EMOJI = "\U0001f600"  # 😀, two UTF-16 code units


def gsm_units(part: str) -> int:
    return sum(2 if c in GSM_EXT else 1 for c in part)


def utf16_units(part: str) -> int:
    return len(part.encode("utf-16-le", "surrogatepass")) // 2


def ends_inside_pair(part: str, rest: str) -> bool:
    """True when ``part`` ends with a high surrogate and ``rest`` starts with a low one."""
    return (
        bool(part)
        and bool(rest)
        and "\ud800" <= part[-1] <= "\udbff"
        and "\udc00" <= rest[0] <= "\udfff"
    )


def check_split(text: str) -> list[str]:
    parts = split_segments(text)
    info = count_segments(text)
    assert "".join(parts) == text
    assert info.segments == len(parts)
    assert all(parts), "no empty parts"
    if info.segments == 1:
        assert parts == [text]
    elif info.segments > 1:
        limit = GSM7_MULTI_PART if info.encoding == "GSM-7" else UCS2_MULTI_PART
        units = gsm_units if info.encoding == "GSM-7" else utf16_units
        assert all(units(p) <= limit for p in parts)
        for i in range(len(parts) - 1):
            assert not ends_inside_pair(parts[i], parts[i + 1])
    return parts


# --- boundaries -----------------------------------------------------------------


def test_empty_text_is_zero_segments() -> None:
    assert count_segments("") == SegmentInfo("GSM-7", 0, 0, 0)
    assert split_segments("") == []


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(length: int, segments: int) -> None:
    info = count_segments("a" * length)
    assert info == SegmentInfo("GSM-7", segments, length, length)
    parts = check_split("a" * length)
    assert len(parts[0]) == (length if segments == 1 else GSM7_MULTI_PART)


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_boundaries(length: int, segments: int) -> None:
    text = "ж" * length
    info = count_segments(text)
    assert info == SegmentInfo("UCS-2", segments, length, length)
    check_split(text)


def test_gsm7_single_segment_limit_constants() -> None:
    assert (GSM7_SINGLE, GSM7_MULTI_PART, UCS2_SINGLE, UCS2_MULTI_PART) == (160, 153, 70, 67)


# --- extension table ------------------------------------------------------------


def test_euro_counts_two_septets() -> None:
    assert count_segments("€") == SegmentInfo("GSM-7", 1, 2, 1)


@pytest.mark.parametrize("ch", list(GSM_EXT))
def test_every_extension_char_counts_two(ch: str) -> None:
    info = count_segments("a" + ch)
    assert info.encoding == "GSM-7"
    assert info.units == 3


def test_extension_chars_push_over_single_limit() -> None:
    assert count_segments("a" * 158 + "€").segments == 1  # 160 septets
    assert count_segments("a" * 159 + "€").segments == 2  # 161 septets


def test_escape_pair_not_split_at_part_boundary() -> None:
    # 152 'a' + '€' would be 154 septets: the '€' must move to the second part.
    text = "a" * 152 + "€" + "b" * 10
    parts = check_split(text)
    assert parts == ["a" * 152, "€" + "b" * 10]


def test_escape_pairs_can_add_a_segment() -> None:
    # 306 septets fit 2 parts of 153 only if no escape pair straddles the boundary.
    straddling = "a" * 152 + "[" + "a" * 152  # 306 septets, '[' would straddle -> 3 parts
    assert count_segments(straddling).units == 306
    assert count_segments(straddling).segments == 3
    assert split_segments(straddling) == ["a" * 152, "[" + "a" * 151, "a"]
    aligned = "a" * 151 + "[" + "a" * 153  # 306 septets, each part exactly full
    assert count_segments(aligned).segments == 2
    assert split_segments(aligned) == ["a" * 151 + "[", "a" * 153]


def test_all_extension_chars_long_text() -> None:
    text = "€" * 200  # 400 septets; 76 pairs per part (152 septets)
    parts = check_split(text)
    assert [len(p) for p in parts] == [76, 76, 48]


# --- UCS-2 / surrogates ----------------------------------------------------------


def test_emoji_counts_two_utf16_units() -> None:
    assert count_segments(EMOJI) == SegmentInfo("UCS-2", 1, 2, 1)


def test_one_non_gsm_char_switches_whole_text_to_ucs2() -> None:
    info = count_segments("a" * 100 + "ж")
    assert info == SegmentInfo("UCS-2", 2, 101, 101)


def test_emoji_at_boundary_is_not_split() -> None:
    # 66 'a' + emoji = 68 units: the pair would straddle unit 67.
    text = "a" * 66 + EMOJI + "b" * 10
    assert count_segments(text).units == 78
    parts = check_split(text)
    assert parts == ["a" * 66, EMOJI + "b" * 10]


def test_emoji_fills_single_segment_exactly() -> None:
    assert count_segments(EMOJI * 35).segments == 1  # 70 units
    assert count_segments(EMOJI * 35 + "a").segments == 2  # 71 units


def test_lone_surrogate_pair_is_kept_together() -> None:
    text = "a" * 66 + "\ud83d\ude00" + "b" * 10  # two lone surrogate code points
    info = count_segments(text)
    assert (info.encoding, info.units, info.characters) == ("UCS-2", 78, 78)
    parts = check_split(text)
    assert parts == ["a" * 66, "\ud83d\ude00" + "b" * 10]


def test_lone_high_surrogate_is_counted() -> None:
    info = count_segments("\ud83d" * 71)
    assert (info.encoding, info.units, info.segments) == ("UCS-2", 71, 2)
    check_split("\ud83d" * 71)


def test_gsm_lookalikes_are_not_gsm() -> None:
    for ch in ["`", "\t", "ç", "á", "\u2019", "\u201c", "\u00a0"]:
        assert not is_gsm7(ch), ch
        assert count_segments(ch).encoding == "UCS-2"


def test_whole_gsm_alphabet_is_gsm() -> None:
    assert is_gsm7(GSM_BASIC + GSM_EXT)
    assert count_segments(GSM_BASIC).units == len(GSM_BASIC) == 127
    assert count_segments(GSM_EXT).units == 2 * len(GSM_EXT)


# --- encode_gsm7 -----------------------------------------------------------------


def test_encode_gsm7_basic_and_escapes() -> None:
    assert encode_gsm7("@£$A") == b"\x00\x01\x02A"
    assert encode_gsm7("a€{") == b"a\x1b\x65\x1b\x28"
    assert encode_gsm7("\x0c") == b"\x1b\x0a"
    assert encode_gsm7("") == b""


def test_encode_gsm7_full_basic_table_is_septet_order() -> None:
    expected = bytes(i for i in range(128) if i != 0x1B)
    assert encode_gsm7(GSM_BASIC) == expected


def test_encode_gsm7_rejects_non_gsm() -> None:
    with pytest.raises(ValueError, match="GSM-7"):
        encode_gsm7("hi " + EMOJI)


# --- properties ------------------------------------------------------------------

gsm_text = st.text(alphabet=st.sampled_from(GSM_BASIC + GSM_EXT), max_size=700)
gsm_heavy_ext = st.text(alphabet=st.sampled_from("ab" + GSM_EXT), max_size=700)
ucs2_text = st.lists(
    st.sampled_from(["a", "ж", "€", "[", EMOJI, "\U0001f44d\U0001f3fd", "\ud83d", "\ude00"]),
    max_size=300,
).map("".join)
any_text = st.text(max_size=500)


@settings(max_examples=300)
@given(st.one_of(gsm_text, gsm_heavy_ext, ucs2_text, any_text))
def test_split_properties(text: str) -> None:
    check_split(text)


@settings(max_examples=200)
@given(st.one_of(gsm_text, gsm_heavy_ext, ucs2_text, any_text))
def test_info_is_consistent(text: str) -> None:
    info = count_segments(text)
    assert info.characters == len(text)
    assert info.encoding == ("GSM-7" if is_gsm7(text) else "UCS-2")
    if info.encoding == "GSM-7":
        assert info.units == gsm_units(text) == len(encode_gsm7(text))
        single, multi = GSM7_SINGLE, GSM7_MULTI_PART
    else:
        assert info.units == utf16_units(text)
        single, multi = UCS2_SINGLE, UCS2_MULTI_PART
    if not text:
        assert info.segments == 0
    elif info.units <= single:
        assert info.segments == 1
    else:
        # Never fewer than the unit count allows, and pairs waste < 1 unit per part.
        assert info.segments >= -(-info.units // multi)
        assert info.segments <= -(-info.units // (multi - 1))


@given(st.one_of(gsm_text, ucs2_text), st.one_of(gsm_text, ucs2_text))
def test_appending_never_reduces_segments(a: str, b: str) -> None:
    # Monotonic within an encoding: adding text can't lower the count.
    if is_gsm7(a) == is_gsm7(a + b):
        assert count_segments(a + b).segments >= count_segments(a).segments
