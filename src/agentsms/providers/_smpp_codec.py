"""SMPP 3.4 wire details shared by the SMPP adapter (and the test SMSC).

``submit_sm`` and ``deliver_sm`` (the PDUs with many fields and optional TLVs) are encoded
and decoded by the ``smpp34`` codec; the handful of small PDUs it has no Python class for
(binds, responses, ``enquire_link``, ``unbind``, ``query_sm``, ``generic_nack``) are a
header and a few C-octet strings, built here. Also here: command statuses and how they
map to retryable / permanent errors, text encoding with concatenation UDH, decoding of
inbound texts (UDH and ``sar_*`` TLVs), and delivery receipt parsing.
"""

from __future__ import annotations

import asyncio
import re
import struct
from dataclasses import dataclass
from typing import Final

import smpp34

from agentsms.providers.base import ReceiptStatus
from agentsms.smstext import (
    decode_gsm7,
    encode_gsm7,
    is_gsm7,
    pack_septets,
    split_segments,
    unpack_septets,
)

HEADER: Final = struct.Struct(">IIII")
MAX_PDU_BYTES: Final = 64 * 1024
INTERFACE_VERSION: Final = 0x34

# command_id values (SMPP 3.4 section 5.1.2.1)
GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_TRANSMITTER: Final = 0x00000002
QUERY_SM: Final = 0x00000003
SUBMIT_SM: Final = 0x00000004
DELIVER_SM: Final = 0x00000005
UNBIND: Final = 0x00000006
BIND_TRANSCEIVER: Final = 0x00000009
ENQUIRE_LINK: Final = 0x00000015
ALERT_NOTIFICATION: Final = 0x00000102
RESPONSE_BIT: Final = 0x80000000

# command_status values (SMPP 3.4 section 5.1.3)
STATUS_NAMES: Final[dict[int, str]] = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG",
    0x07: "ESME_RINVREGDLVFLG",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL",
    0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP",
    0x33: "ESME_RINVNUMDESTS",
    0x34: "ESME_RINVDLNAME",
    0x40: "ESME_RINVDESTFLAG",
    0x42: "ESME_RINVSUBREP",
    0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP",
    0x54: "ESME_RINVREPFLAG",
    0x55: "ESME_RINVNUMMSGS",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL",
    0xC0: "ESME_RINVOPTPARSTREAM",
    0xC1: "ESME_ROPTPARNOTALLWD",
    0xC2: "ESME_RINVPARLEN",
    0xC3: "ESME_RMISSINGOPTPARAM",
    0xC4: "ESME_RINVOPTPARAMVAL",
    0xFE: "ESME_RDELIVERYFAILURE",
    0xFF: "ESME_RUNKNOWNERR",
}
ROK: Final = 0x00
RINVCMDID: Final = 0x03
RSYSERR: Final = 0x08
RINVDSTADR: Final = 0x0B
RINVPASWD: Final = 0x0E
RINVSYSID: Final = 0x0F
RMSGQFUL: Final = 0x14
RTHROTTLED: Final = 0x58
RX_T_APPN: Final = 0x64
RX_P_APPN: Final = 0x65
RQUERYFAIL: Final = 0x67

# Statuses worth another try later: the SMSC is busy, throttling us, or had a transient
# fault; everything else (bad address, bad parameters, refused content) is permanent.
RETRYABLE_STATUSES: Final = frozenset({0x04, RSYSERR, RMSGQFUL, RTHROTTLED, RX_T_APPN})
THROTTLE_STATUSES: Final = frozenset({RMSGQFUL, RTHROTTLED})

# TLV tags (SMPP 3.4 section 5.3.2)
TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_SAR_MSG_REF_NUM: Final = 0x020C
TLV_SAR_TOTAL_SEGMENTS: Final = 0x020E
TLV_SAR_SEGMENT_SEQNUM: Final = 0x020F
TLV_NETWORK_ERROR_CODE: Final = 0x0423
TLV_MESSAGE_PAYLOAD: Final = 0x0424
TLV_MESSAGE_STATE: Final = 0x0427

ESM_UDHI: Final = 0x40
ESM_TYPE_MASK: Final = 0x3C
ESM_DELIVERY_RECEIPT: Final = 0x04
ESM_INTERMEDIATE_NOTIFICATION: Final = 0x20

CODING_DEFAULT: Final = 0x00
CODING_UCS2: Final = 0x08

# message_state values (SMPP 3.4 section 5.2.28) and the receipt text's ``stat:`` words.
MESSAGE_STATES: Final[dict[int, str]] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
# What each state means for an agentsms message. ACCEPTD (read by customer service on the
# subscriber's behalf) and UNKNOWN promise nothing about the handset, so they keep the
# message ``sent``; REJECTD means the SMSC never sent it on.
STATE_STATUS: Final[dict[str, ReceiptStatus]] = {
    "ENROUTE": "sent",
    "DELIVRD": "delivered",
    "EXPIRED": "undelivered",
    "DELETED": "undelivered",
    "UNDELIV": "undelivered",
    "ACCEPTD": "sent",
    "UNKNOWN": "sent",
    "REJECTD": "failed",
}
STATE_DESCRIPTIONS: Final[dict[str, str]] = {
    "EXPIRED": "validity period expired before delivery",
    "DELETED": "message deleted by the SMSC",
    "UNDELIV": "message undeliverable",
    "REJECTD": "message rejected by the SMSC",
}


class PduError(Exception):
    """A peer sent bytes that are not a valid SMPP PDU."""


def status_name(status: int) -> str:
    """``ESME_RTHROTTLED`` for 0x58; unknown and vendor statuses as ``0x0000045A``."""
    return STATUS_NAMES.get(status, f"0x{status:08X}")


@dataclass(frozen=True, slots=True)
class Pdu:
    """One PDU as read from the wire: its header and undecoded body."""

    command_id: int
    status: int
    sequence: int
    body: bytes

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    def frame(self) -> bytes:
        """The PDU's bytes as they were on the wire (for the ``smpp34`` decoder)."""
        return encode(self.command_id, self.sequence, self.body, status=self.status)


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """Read one PDU; ``asyncio.IncompleteReadError`` when the peer closed the connection."""
    header = await reader.readexactly(HEADER.size)
    length, command_id, status, sequence = HEADER.unpack(header)
    if not HEADER.size <= length <= MAX_PDU_BYTES:
        raise PduError(f"command_length {length} out of range")
    body = await reader.readexactly(length - HEADER.size) if length > HEADER.size else b""
    return Pdu(command_id, status, sequence, body)


def encode(command_id: int, sequence: int, body: bytes = b"", *, status: int = ROK) -> bytes:
    """A PDU from its header fields and body."""
    return HEADER.pack(HEADER.size + len(body), command_id, status, sequence) + body


def cstring(value: str, limit: int) -> bytes:
    """A C-octet string field (``limit`` counts the terminating NUL)."""
    raw = value.encode("latin-1")
    if len(raw) >= limit:
        raise ValueError(f"{value!r} is longer than {limit - 1} octets")
    return raw + b"\x00"


def read_cstrings(body: bytes, count: int, start: int = 0) -> tuple[list[str], int]:
    """``count`` C-octet strings from ``body`` at ``start``; returns them and the next offset."""
    values: list[str] = []
    offset = start
    for _ in range(count):
        end = body.find(b"\x00", offset)
        if end < 0:
            raise PduError("unterminated C-octet string")
        values.append(body[offset:end].decode("latin-1"))
        offset = end + 1
    return values, offset


@dataclass(frozen=True, slots=True)
class Bind:
    """The fields of a bind request."""

    system_id: str
    password: str
    system_type: str
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def body(self) -> bytes:
        return (
            cstring(self.system_id, 16)
            + cstring(self.password, 9)
            + cstring(self.system_type, 13)
            + bytes((self.interface_version, self.addr_ton, self.addr_npi))
            + cstring(self.address_range, 41)
        )

    @classmethod
    def parse(cls, body: bytes) -> Bind:
        (system_id, password, system_type), offset = read_cstrings(body, 3)
        if len(body) < offset + 3:
            raise PduError("bind body too short")
        version, ton, npi = body[offset : offset + 3]
        (address_range,), _ = read_cstrings(body, 1, offset + 3)
        return cls(system_id, password, system_type, version, ton, npi, address_range)


def query_sm_body(message_id: str, source_ton: int, source_npi: int, source_addr: str) -> bytes:
    return cstring(message_id, 65) + bytes((source_ton, source_npi)) + cstring(source_addr, 21)


def query_sm_resp_body(message_id: str, state: int, error_code: int = 0) -> bytes:
    return cstring(message_id, 65) + cstring("", 17) + bytes((state, error_code))


def parse_query_sm_resp(body: bytes) -> tuple[str, int, int]:
    """(message_id, message_state, error_code) of a ``query_sm_resp``."""
    (message_id, _final_date), offset = read_cstrings(body, 2)
    if len(body) < offset + 2:
        raise PduError("query_sm_resp body too short")
    return message_id, body[offset], body[offset + 1]


def message_id_of(body: bytes) -> str:
    """The message_id of a ``submit_sm_resp`` (empty when the body is empty)."""
    if not body:
        return ""
    (message_id,), _ = read_cstrings(body, 1)
    return message_id


# --- addresses -------------------------------------------------------------------------

TON_UNKNOWN: Final = 0
TON_INTERNATIONAL: Final = 1
TON_ALPHANUMERIC: Final = 5
NPI_UNKNOWN: Final = 0
NPI_ISDN: Final = 1


def address(number: str) -> tuple[int, int, str]:
    """(TON, NPI, address) for an E.164 number, a short code or an alphanumeric sender."""
    if number.startswith("+") and number[1:].isdigit():
        return TON_INTERNATIONAL, NPI_ISDN, number[1:]
    if number.isdigit():
        return TON_UNKNOWN, NPI_ISDN, number
    return TON_ALPHANUMERIC, NPI_UNKNOWN, number


def number_of(ton: int, addr: str) -> str:
    """An address from an SMSC as agentsms writes numbers.

    International (TON 1) and unknown-type (TON 0) all-digit addresses are E.164 without
    the ``+`` (what SMSCs send); national, short-code and alphanumeric ones stay as given.
    """
    if addr.startswith("+"):
        return addr
    if ton in (TON_UNKNOWN, TON_INTERNATIONAL) and addr.isdigit() and len(addr) > 6:
        return "+" + addr
    return addr


# --- outbound text ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EncodedPart:
    """One ``submit_sm``'s worth of text."""

    data_coding: int
    esm_class: int
    short_message: bytes


def encode_text(text: str, *, concat_ref: int, packed_gsm7: bool = False) -> list[EncodedPart]:
    """The ``submit_sm`` payloads for ``text``: one, or several with a concatenation UDH.

    GSM-7 when the text fits the GSM 03.38 alphabet (data_coding 0, septets one per
    octet unless ``packed_gsm7``), UCS-2 otherwise (data_coding 8, UTF-16 big-endian).
    Parts hold 153 septets / 67 UTF-16 units (the splitting of :mod:`agentsms.smstext`,
    which never splits an escape or a surrogate pair); each starts with the 8-bit
    reference concatenation IE (0x00) carrying ``concat_ref`` (0-255).
    """
    gsm = is_gsm7(text)
    parts = split_segments(text) or [""]
    if len(parts) > 255:
        raise ValueError(f"text needs {len(parts)} SMS parts; at most 255 can be joined")
    coding = CODING_DEFAULT if gsm else CODING_UCS2
    encoded: list[EncodedPart] = []
    for index, part in enumerate(parts, start=1):
        udh = b"" if len(parts) == 1 else bytes((5, 0x00, 3, concat_ref & 0xFF, len(parts), index))
        if gsm:
            septets = encode_gsm7(part)
            fill = (7 - (len(udh) * 8) % 7) % 7 if udh else 0
            payload = pack_septets(septets, fill) if packed_gsm7 else septets
        else:
            payload = part.encode("utf-16-be", "surrogatepass")
        encoded.append(EncodedPart(coding, ESM_UDHI if udh else 0, udh + payload))
    return encoded


# --- inbound text ----------------------------------------------------------------------

_CHARSETS: Final[dict[int, str]] = {
    0x01: "ascii",
    0x02: "latin-1",
    0x03: "latin-1",
    0x04: "latin-1",
    0x05: "shift_jis",
    0x06: "iso8859_5",
    0x07: "iso8859_8",
    0x0E: "euc_kr",
}


@dataclass(frozen=True, slots=True)
class InboundPart:
    """The text units of one ``deliver_sm`` and, when it is one part of several, its place.

    ``units`` are unpacked septets for GSM-7 and raw bytes for other codings, so that parts
    are joined before decoding (an escape or a surrogate pair split across parts survives).
    """

    coding: str
    units: bytes
    ref: int | None = None
    total: int = 1
    seq: int = 1


def _coding_of(data_coding: int) -> str:
    if data_coding == CODING_DEFAULT:
        return "gsm7"
    if data_coding == CODING_UCS2:
        return "utf-16-be"
    if data_coding & 0xF0 == 0xF0:  # message class group: bit 2 picks 8-bit data
        return "latin-1" if data_coding & 0x04 else "gsm7"
    if data_coding & 0xC0 == 0x00 and data_coding & 0x0C == 0x08:
        return "utf-16-be"  # general data coding group, UCS-2 alphabet
    return _CHARSETS.get(data_coding, "latin-1")


def split_inbound(
    data_coding: int,
    esm_class: int,
    short_message: bytes,
    tlvs: dict[int, bytes],
    *,
    packed_gsm7: bool = False,
) -> InboundPart:
    """Parse a ``deliver_sm``'s text: UDH concatenation IEs or ``sar_*`` TLVs, then units."""
    data = short_message or tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    coding = _coding_of(data_coding)
    ref: int | None = None
    total, seq = 1, 1
    header_octets = 0
    if esm_class & ESM_UDHI and data:
        length = data[0]
        header = data[1 : 1 + length]
        header_octets = 1 + length
        offset = 0
        while offset + 2 <= len(header):
            ie, size = header[offset], header[offset + 1]
            value = header[offset + 2 : offset + 2 + size]
            if ie == 0x00 and size == 3:
                ref, total, seq = value[0], value[1], value[2]
            elif ie == 0x08 and size == 4:
                ref, total, seq = int.from_bytes(value[:2], "big"), value[2], value[3]
            offset += 2 + size
        data = data[header_octets:]
    elif TLV_SAR_MSG_REF_NUM in tlvs:
        ref = int.from_bytes(tlvs[TLV_SAR_MSG_REF_NUM], "big")
        total = int.from_bytes(tlvs.get(TLV_SAR_TOTAL_SEGMENTS, b"\x01"), "big")
        seq = int.from_bytes(tlvs.get(TLV_SAR_SEGMENT_SEQNUM, b"\x01"), "big")
    if coding == "gsm7" and packed_gsm7:
        fill = (7 - (header_octets * 8) % 7) % 7 if header_octets else 0
        data = unpack_septets(data, fill)
    if total <= 1:
        ref, total, seq = None, 1, 1
    return InboundPart(coding, data, ref, total, seq)


def decode_units(coding: str, units: bytes) -> str:
    """Text from the joined units of one or more :class:`InboundPart`."""
    if coding == "gsm7":
        return decode_gsm7(units)
    if coding == "utf-16-be":
        return units.decode("utf-16-be", "replace")
    return units.decode(coding, "replace")


# --- delivery receipts -----------------------------------------------------------------

_RECEIPT_FIELD = re.compile(
    r"(id|sub|dlvrd|submit date|done date|stat|err|text):(.*?)"
    r"(?=\s+(?:id|sub|dlvrd|submit date|done date|stat|err|text):|$)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class ReceiptInfo:
    """What a delivery receipt ``deliver_sm`` says."""

    message_id: str
    state: str
    error: str | None = None


def parse_receipt(short_message: bytes, tlvs: dict[int, bytes]) -> ReceiptInfo | None:
    """A receipt from the ``receipted_message_id`` / ``message_state`` TLVs and/or the text
    ``id:... sub:... dlvrd:... submit date:... done date:... stat:DELIVRD err:...``
    (SMPP 3.4 appendix B). TLVs win where both are present. None when neither says which
    message or which state.
    """
    fields: dict[str, str] = {}
    text = short_message.decode("latin-1")
    for match in _RECEIPT_FIELD.finditer(text):
        fields.setdefault(match.group(1).lower(), match.group(2).strip())
    message_id = fields.get("id")
    if TLV_RECEIPTED_MESSAGE_ID in tlvs:
        message_id = tlvs[TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\x00").decode("latin-1")
    state = fields.get("stat", "").upper() or None
    if tlvs.get(TLV_MESSAGE_STATE):
        state = MESSAGE_STATES.get(tlvs[TLV_MESSAGE_STATE][0], state)
    error = fields.get("err")
    network_error = tlvs.get(TLV_NETWORK_ERROR_CODE)
    if network_error is not None and len(network_error) == 3:
        error = str(int.from_bytes(network_error[1:], "big"))
    if not message_id or not state:
        return None
    if state == "DELIVERED":
        state = "DELIVRD"
    return ReceiptInfo(message_id, state, error if error and error.strip("0") else None)


def tlv_map(tlvs: list[smpp34.Tlv]) -> dict[int, bytes]:
    """A decoded PDU's TLVs by tag (the first of a repeated tag wins)."""
    found: dict[int, bytes] = {}
    for tlv in tlvs:
        found.setdefault(tlv.tag, tlv.value)
    return found
