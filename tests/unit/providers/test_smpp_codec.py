"""SMPP text encoding, inbound parsing and receipt parsing (pure functions)."""

from __future__ import annotations

import pytest
import smpp34
from hypothesis import given, settings
from hypothesis import strategies as st

from agentsms.core.segments import count_segments
from agentsms.providers import _smpp_codec as codec
from agentsms.providers.base import ProviderAccount
from agentsms.providers.smpp import Endpoint, SmppOptions
from agentsms.smstext import decode_gsm7, encode_gsm7, pack_septets, unpack_septets

EMOJI = "\U0001f600"


def _join(parts: list[codec.EncodedPart], packed: bool = False) -> str:
    """Decode what a handset would: strip each UDH, join the units, decode once."""
    units = b""
    for part in parts:
        data = part.short_message
        header = data[0] + 1 if part.esm_class & codec.ESM_UDHI else 0
        body = data[header:]
        if part.data_coding == 0 and packed:
            body = unpack_septets(body, (7 - (header * 8) % 7) % 7 if header else 0)
        units += body
    if parts[0].data_coding == codec.CODING_UCS2:
        return units.decode("utf-16-be", "surrogatepass")
    return decode_gsm7(units)


def test_short_gsm7_text_is_one_unpacked_part() -> None:
    parts = codec.encode_text("Hello {world} €5", concat_ref=7)
    assert len(parts) == 1
    assert parts[0].data_coding == 0
    assert parts[0].esm_class == 0
    assert parts[0].short_message == encode_gsm7("Hello {world} €5")
    assert parts[0].short_message[5:8] == b" \x1b\x28"  # "{" is escape + 0x28


def test_long_ucs2_text_gets_concatenation_udh_and_67_units_per_part() -> None:
    text = ("Привет, мир " + EMOJI) * 30
    parts = codec.encode_text(text, concat_ref=0xAB)
    assert len(parts) == count_segments(text).segments > 1
    for number, part in enumerate(parts, start=1):
        assert part.data_coding == 8
        assert part.esm_class == 0x40
        assert part.short_message[:6] == bytes((5, 0, 3, 0xAB, len(parts), number))
        assert len(part.short_message) - 6 <= 134
        # each part decodes on its own: no surrogate pair is split
        part.short_message[6:].decode("utf-16-be")
    assert _join(parts) == text


def test_long_gsm7_text_never_splits_an_escape() -> None:
    text = "x" * 152 + "€" + "[]" * 100
    parts = codec.encode_text(text, concat_ref=1)
    for part in parts:
        units = part.short_message[6:]
        assert len(units) <= 153
        assert not units.endswith(b"\x1b")
    assert len(parts[0].short_message) - 6 == 152  # the euro sign did not fit: next part
    assert _join(parts) == text


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from([*list("abc xyz{}€[]~^|\\@\n"), "é", "Ω", EMOJI, "ж"]),
        max_size=600,
    ),
    packed=st.booleans(),
)
def test_any_text_round_trips_through_parts(text: str, packed: bool) -> None:
    parts = codec.encode_text(text.rstrip("\r"), concat_ref=3, packed_gsm7=packed)
    assert len(parts) == max(1, count_segments(text.rstrip("\r")).segments)
    assert all(len(p.short_message) <= 140 or not packed for p in parts)
    assert _join(parts, packed) == text.rstrip("\r")


def test_packed_gsm7_fills_140_octets() -> None:
    parts = codec.encode_text("a" * 300, concat_ref=9, packed_gsm7=True)
    # 153 septets + 1 fill bit = 134 octets after the 6-octet UDH; then 147 septets
    assert [len(p.short_message) for p in parts] == [140, 6 + -(-(147 * 7 + 1) // 8)]


def test_too_many_parts_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 255"):
        codec.encode_text("a" * 153 * 256, concat_ref=0)


def test_inbound_udh_part_is_parsed() -> None:
    data = bytes((5, 0, 3, 0x42, 3, 2)) + encode_gsm7("second")
    part = codec.split_inbound(0, 0x40, data, {})
    assert (part.ref, part.total, part.seq, part.coding) == (0x42, 3, 2, "gsm7")
    assert codec.decode_units(part.coding, part.units) == "second"


def test_inbound_16_bit_reference_and_packed_septets() -> None:
    udh = bytes((6, 8, 4, 0x12, 0x34, 2, 1))
    fill = (7 - (len(udh) * 8) % 7) % 7
    data = udh + pack_septets(encode_gsm7("hello {there}"), fill)
    part = codec.split_inbound(0, 0x40, data, {}, packed_gsm7=True)
    assert (part.ref, part.total, part.seq) == (0x1234, 2, 1)
    assert codec.decode_units("gsm7", part.units) == "hello {there}"


def test_inbound_sar_tlvs_and_message_payload() -> None:
    tlvs = {
        codec.TLV_SAR_MSG_REF_NUM: b"\x01\x02",
        codec.TLV_SAR_TOTAL_SEGMENTS: b"\x02",
        codec.TLV_SAR_SEGMENT_SEQNUM: b"\x02",
        codec.TLV_MESSAGE_PAYLOAD: "hé".encode("utf-16-be"),
    }
    part = codec.split_inbound(8, 0, b"", tlvs)
    assert (part.ref, part.total, part.seq) == (0x0102, 2, 2)
    assert codec.decode_units(part.coding, part.units) == "hé"


@pytest.mark.parametrize(
    ("data_coding", "raw", "text"),
    [(1, b"plain", "plain"), (3, "café".encode("latin-1"), "café"), (0xF0, b"\x00", "@")],
)
def test_inbound_data_codings(data_coding: int, raw: bytes, text: str) -> None:
    part = codec.split_inbound(data_coding, 0, raw, {})
    assert codec.decode_units(part.coding, part.units) == text


def test_receipt_text_is_parsed() -> None:
    text = (
        b"id:0A1B2C sub:001 dlvrd:000 submit date:2611290101 done date:2611290102 "
        b"stat:UNDELIV err:012 text:hello there"
    )
    info = codec.parse_receipt(text, {})
    assert info == codec.ReceiptInfo("0A1B2C", "UNDELIV", "012")


def test_receipt_tlvs_win_over_text() -> None:
    tlvs = {codec.TLV_RECEIPTED_MESSAGE_ID: b"abc\x00", codec.TLV_MESSAGE_STATE: b"\x02"}
    info = codec.parse_receipt(b"id:zzz stat:UNDELIV err:000", tlvs)
    assert info == codec.ReceiptInfo("abc", "DELIVRD", None)


def test_receipt_without_id_is_not_a_receipt() -> None:
    assert codec.parse_receipt(b"hello", {}) is None


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("DELIVRD", "delivered"),
        ("EXPIRED", "undelivered"),
        ("DELETED", "undelivered"),
        ("UNDELIV", "undelivered"),
        ("ACCEPTD", "sent"),
        ("UNKNOWN", "sent"),
        ("REJECTD", "failed"),
        ("ENROUTE", "sent"),
    ],
)
def test_receipt_states_map_to_statuses(state: str, status: str) -> None:
    assert codec.STATE_STATUS[state] == status
    number = {v: k for k, v in codec.MESSAGE_STATES.items()}[state]
    info = codec.parse_receipt(
        b"", {codec.TLV_RECEIPTED_MESSAGE_ID: b"m1\x00", codec.TLV_MESSAGE_STATE: bytes((number,))}
    )
    assert info is not None
    assert info.state == state


def test_small_pdus_round_trip() -> None:
    bind = codec.Bind("sys", "pw", "VMA")
    assert codec.Bind.parse(bind.body()) == bind
    frame = codec.encode(codec.BIND_TRANSCEIVER, 7, bind.body())
    decoded = smpp34.decode(frame)
    assert isinstance(decoded, smpp34.RawPdu)
    assert (decoded.command_id, decoded.sequence_number) == (codec.BIND_TRANSCEIVER, 7)
    body = codec.query_sm_resp_body("m1", 2)
    assert codec.parse_query_sm_resp(body) == ("m1", 2, 0)
    assert codec.message_id_of(b"abc\x00") == "abc"
    assert codec.message_id_of(b"") == ""
    with pytest.raises(ValueError, match="longer than 8"):
        codec.cstring("123456789", 9)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+14155550100", (1, 1, "14155550100")),
        ("12345", (0, 1, "12345")),
        ("ACME", (5, 0, "ACME")),
    ],
)
def test_addresses(number: str, expected: tuple[int, int, str]) -> None:
    assert codec.address(number) == expected


def test_inbound_numbers_become_e164() -> None:
    assert codec.number_of(1, "4915112345678") == "+4915112345678"
    assert codec.number_of(0, "4915112345678") == "+4915112345678"
    assert codec.number_of(3, "12345") == "12345"
    assert codec.number_of(5, "ACME") == "ACME"


def _account(url: str, **credentials: str) -> ProviderAccount:
    return ProviderAccount(
        id="pa_1",
        provider="smpp",
        name="op",
        credentials=credentials,
        api_base_url=url,
        callback_base_url="http://x/callbacks/smpp/pa_1",
    )


def test_endpoint_reads_url_options_and_credentials() -> None:
    account = _account(
        "smpp://smsc.example:2776?window=20&packed_gsm7=true&enquire_link_interval=5",
        system_id="esme",
        password="pw",
        system_type="VMA",
    )
    endpoint = Endpoint.from_account(account)
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("smsc.example", 2776, False)
    assert (endpoint.system_id, endpoint.password, endpoint.system_type) == ("esme", "pw", "VMA")
    assert endpoint.options == SmppOptions(window=20, packed_gsm7=True, enquire_link_interval=5)
    tls = Endpoint.from_account(_account("smpps://smsc.example", system_id="e", password="p"))
    assert (tls.port, tls.tls) == (3550, True)


@pytest.mark.parametrize(
    ("url", "credentials", "message"),
    [
        ("http://smsc:2775", {"system_id": "a", "password": "b"}, "api_base_url"),
        ("smpp://smsc:2775", {"password": "b"}, "credentials.system_id"),
        ("smpp://smsc:2775", {"system_id": "a"}, "credentials.password"),
        ("smpp://smsc:2775", {"system_id": "a", "password": "123456789"}, "at most 8"),
        ("smpp://smsc:2775?speed=1", {"system_id": "a", "password": "b"}, "unknown SMPP option"),
        ("smpp://smsc:2775?window=0", {"system_id": "a", "password": "b"}, "window"),
        ("smpp://smsc:2775?window=x", {"system_id": "a", "password": "b"}, "window='x'"),
    ],
)
def test_endpoint_errors_name_the_field(
    url: str, credentials: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Endpoint.from_account(_account(url, **credentials))
