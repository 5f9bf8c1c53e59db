"""A fake SMSC: an asyncio TCP server on 127.0.0.1 speaking real SMPP 3.4.

``submit_sm`` is decoded and ``deliver_sm`` encoded by the ``smpp34`` codec; the small PDUs
(binds, responses, ``enquire_link``, ``unbind``, ``query_sm``) are packed here with
``struct``, independently of the adapter's own code. It checks bind credentials, answers
``submit_sm`` with message ids, records every ``submit_sm`` (decoded) and reassembles
concatenated parts, sends delivery receipts as ``deliver_sm`` (text and TLVs, with a
configurable delay, a window, and re-delivery of receipts a dropped session did not
acknowledge), injects inbound texts (single or multi-part, in any order, UDH or sar_*
TLVs), throttles on request, drops the connection after N PDUs, answers and sends
``enquire_link`` and answers ``query_sm``.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import smpp34

from agentsms.smstext import decode_gsm7, encode_gsm7, is_gsm7, pack_septets, unpack_septets

HEADER = struct.Struct(">IIII")
BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x01, 0x02, 0x09
QUERY_SM, SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x03, 0x04, 0x05, 0x06, 0x15
GENERIC_NACK, RESP = 0x80000000, 0x80000000
ROK, RINVCMDID, RINVBNDSTS, RALYBND = 0x00, 0x03, 0x04, 0x05
RINVPASWD, RINVSYSID, RTHROTTLED = 0x0E, 0x0F, 0x58
STATES = {"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6}
STATES.update({"UNKNOWN": 7, "REJECTD": 8})


def pdu(command_id: int, sequence: int, body: bytes = b"", status: int = ROK) -> bytes:
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def cstrings(body: bytes, count: int) -> list[str]:
    return [part.decode("latin-1") for part in body.split(b"\x00")[:count]]


@dataclass
class Submitted:
    """One ``submit_sm`` as the SMSC decoded it, and what it answered."""

    session: int
    sequence: int
    source_addr: str
    source_addr_ton: int
    destination_addr: str
    dest_addr_ton: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    udh: tuple[int, int, int] | None
    units: bytes
    status: int
    message_id: str | None


@dataclass
class Accepted:
    """A whole message (all its parts joined) that the SMSC accepted."""

    source_addr: str
    destination_addr: str
    text: str
    data_coding: int
    message_ids: list[str]


@dataclass
class _Session:
    number: int
    writer: asyncio.StreamWriter
    bound: bool = False
    closed: bool = False
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    waiting: dict[int, asyncio.Future[int]] = field(default_factory=dict)
    unacked_receipts: dict[int, tuple[str, str]] = field(default_factory=dict)
    pump: asyncio.Task[None] | None = None

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.writer.write(data)


class FakeSmsc:
    """An SMSC on 127.0.0.1:<free port>; ``url`` is what an account's api_base_url takes."""

    def __init__(
        self,
        *,
        system_id: str = "agentsms",
        password: str = "secret",
        receipt_delay: float = 0.0,
        receipt_window: int = 10,
        packed_gsm7: bool = False,
    ) -> None:
        self.system_id = system_id
        self.password = password
        self.receipt_delay = receipt_delay
        self.receipt_window = receipt_window
        self.packed_gsm7 = packed_gsm7
        # knobs
        self.throttle_next = 0
        self.throttle_parts: set[int] = set()
        self.submit_resp_delay = 0.0
        self.refuse: dict[str, int] = {}
        self.outcomes: dict[str, str] = {}
        self.query_sm_supported = True
        self.receipts_enabled = True
        self.receipt_text = True
        self.receipt_tlvs = True
        self.answer_enquire_link = True
        self.hold_receipts = False
        self.decimal_receipt_ids = False
        # records
        self.binds: list[tuple[str, str, int]] = []
        self.bind_times: list[float] = []
        self.submits: list[Submitted] = []
        self.messages: list[Accepted] = []
        self.receipts_sent: list[tuple[str, str]] = []
        self.receipt_order: list[str] = []
        self.enquire_links_received = 0
        self.connections = 0
        self.drops = 0
        self.pdus_received = 0
        self.outstanding = 0
        self.max_outstanding = 0
        self._drop_countdown: int | None = None
        self._next_id = 0x1000
        self._parts: dict[tuple[str, str, int, int], dict[int, Submitted]] = {}
        self._receipts: deque[tuple[str, str, str, str]] = deque()
        self._receipt_added = asyncio.Event()
        self._final: dict[str, str] = {}
        self._receipt_addresses: dict[str, tuple[str, str]] = {}
        self._sessions: list[_Session] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"smpp://127.0.0.1:{self.port}"

    async def start(self) -> FakeSmsc:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in self._sessions:
            self._close(session)
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeSmsc:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def drop_after(self, pdus: int) -> None:
        """Abort the connection when the ``pdus``-th PDU from now arrives (unprocessed)."""
        self._drop_countdown = pdus

    @property
    def next_message_id(self) -> str:
        """The id the next accepted ``submit_sm`` gets."""
        return f"{self._next_id:08x}"

    def release_receipts(self) -> None:
        """Start delivering receipts held back by ``hold_receipts``."""
        self.hold_receipts = False
        self.decimal_receipt_ids = False
        self._receipt_added.set()

    @property
    def bound_sessions(self) -> list[_Session]:
        return [s for s in self._sessions if s.bound and not s.closed]

    @property
    def accepted_ids(self) -> list[str]:
        return [s.message_id for s in self.submits if s.message_id is not None]

    # --- the session -------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        session = _Session(self.connections, writer)
        self._sessions.append(session)
        try:
            while True:
                header = await reader.readexactly(16)
                length, command_id, status, sequence = HEADER.unpack(header)
                body = await reader.readexactly(length - 16)
                self.pdus_received += 1
                if self._drop_countdown is not None:
                    self._drop_countdown -= 1
                    if self._drop_countdown <= 0:
                        self._drop_countdown = None
                        self.drops += 1
                        writer.transport.abort()
                        break
                self._handle(session, command_id, status, sequence, header + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._close(session)

    def _close(self, session: _Session) -> None:
        if session.closed:
            return
        session.closed = True
        session.writer.transport.abort()
        if session.pump is not None:
            session.pump.cancel()
        for future in session.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("session closed"))
        # Receipts the ESME did not acknowledge are delivered again on its next bind.
        for item in reversed(list(session.unacked_receipts.values())):
            message_id, stat = item
            self._receipts.appendleft((message_id, stat, *self._receipt_addresses[message_id]))
        session.unacked_receipts.clear()
        self._receipt_added.set()

    def _handle(
        self, session: _Session, command_id: int, status: int, sequence: int, frame: bytes
    ) -> None:
        body = frame[16:]
        if command_id & RESP:
            future = session.waiting.pop(sequence, None)
            if future is not None and not future.done():
                future.set_result(status)
            if command_id == DELIVER_SM | RESP and sequence in session.unacked_receipts:
                message_id, stat = session.unacked_receipts.pop(sequence)
                if status != ROK:  # the ESME could not take it: deliver it again later
                    self._receipts.append((message_id, stat, *self._receipt_addresses[message_id]))
                self._receipt_added.set()
            return
        if command_id in (BIND_TRANSCEIVER, BIND_TRANSMITTER, BIND_RECEIVER):
            self._bind(session, command_id, sequence, body)
        elif command_id == ENQUIRE_LINK:
            self.enquire_links_received += 1
            if self.answer_enquire_link:
                session.send(pdu(ENQUIRE_LINK | RESP, sequence))
        elif command_id == UNBIND:
            session.send(pdu(UNBIND | RESP, sequence))
            self._close(session)
        elif not session.bound:
            session.send(pdu(GENERIC_NACK, sequence, status=RINVBNDSTS))
        elif command_id == SUBMIT_SM:
            self._submit(session, sequence, frame)
        elif command_id == QUERY_SM:
            self._query(session, sequence, body)
        else:
            session.send(pdu(GENERIC_NACK, sequence, status=RINVCMDID))

    def _bind(self, session: _Session, command_id: int, sequence: int, body: bytes) -> None:
        system_id, password, _system_type = cstrings(body, 3)
        if session.bound:
            status = RALYBND
        elif system_id != self.system_id:
            status = RINVSYSID
        elif password != self.password:
            status = RINVPASWD
        else:
            status = ROK
        self.binds.append((system_id, password, status))
        self.bind_times.append(time.monotonic())
        session.send(pdu(command_id | RESP, sequence, b"FAKESMSC\x00", status))
        if status != ROK:
            self._close(session)
            return
        session.bound = True
        session.pump = asyncio.create_task(self._pump_receipts(session))

    def _submit(self, session: _Session, sequence: int, frame: bytes) -> None:
        decoded = smpp34.decode(frame)
        assert isinstance(decoded, smpp34.SubmitSm)
        data = decoded.short_message
        udh: tuple[int, int, int] | None = None
        header_octets = 0
        if decoded.esm_class & 0x40:
            header_octets = data[0] + 1
            ies = data[1:header_octets]
            if ies[0] == 0x00:
                udh = (ies[2], ies[3], ies[4])
            elif ies[0] == 0x08:
                udh = (int.from_bytes(ies[2:4], "big"), ies[4], ies[5])
        units = data[header_octets:]
        if decoded.data_coding == 0 and self.packed_gsm7:
            units = unpack_septets(units, (7 - (header_octets * 8) % 7) % 7 if udh else 0)
        if self.throttle_next > 0:
            self.throttle_next -= 1
            status = RTHROTTLED
        elif udh is not None and udh[2] in self.throttle_parts:
            self.throttle_parts.discard(udh[2])
            status = RTHROTTLED
        else:
            status = self.refuse.get(decoded.destination_addr, ROK)
        message_id = None
        if status == ROK:
            message_id = self.next_message_id
            self._next_id += 1
        record = Submitted(
            session.number,
            sequence,
            decoded.source_addr,
            decoded.source_addr_ton,
            decoded.destination_addr,
            decoded.dest_addr_ton,
            decoded.esm_class,
            decoded.data_coding,
            decoded.registered_delivery,
            data,
            udh,
            units,
            status,
            message_id,
        )
        self.submits.append(record)
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        if self.submit_resp_delay:
            asyncio.get_running_loop().call_later(
                self.submit_resp_delay, self._answer_submit, session, record, decoded
            )
        else:
            self._answer_submit(session, record, decoded)

    def _answer_submit(
        self, session: _Session, record: Submitted, decoded: smpp34.SubmitSm
    ) -> None:
        self.outstanding -= 1
        message_id, sequence = record.message_id, record.sequence
        body = b"" if message_id is None else message_id.encode() + b"\x00"
        session.send(pdu(SUBMIT_SM | RESP, sequence, body, record.status))
        if message_id is None:
            return
        self._receipt_addresses[message_id] = (decoded.destination_addr, decoded.source_addr)
        self._assemble(record)
        if decoded.registered_delivery & 0x03 and self.receipts_enabled:
            stat = self.outcomes.get(decoded.destination_addr, "DELIVRD")
            item = (message_id, stat, decoded.destination_addr, decoded.source_addr)
            if self.receipt_delay:
                asyncio.get_running_loop().call_later(self.receipt_delay, self._queue_receipt, item)
            else:
                self._queue_receipt(item)

    def _assemble(self, record: Submitted) -> None:
        if record.udh is None:
            parts = [record]
        else:
            ref, total, seq = record.udh
            key = (record.source_addr, record.destination_addr, ref, total)
            group = self._parts.setdefault(key, {})
            group[seq] = record
            if len(group) < total:
                return
            del self._parts[key]
            parts = [group[i] for i in sorted(group)]
        units = b"".join(p.units for p in parts)
        if record.data_coding == 8:
            text = units.decode("utf-16-be", "surrogatepass")
        else:
            text = decode_gsm7(units)
        ids = [p.message_id for p in parts if p.message_id is not None]
        self.messages.append(
            Accepted(record.source_addr, record.destination_addr, text, record.data_coding, ids)
        )

    def _queue_receipt(self, item: tuple[str, str, str, str]) -> None:
        self._receipts.append(item)
        self._receipt_added.set()

    async def _pump_receipts(self, session: _Session) -> None:
        while not session.closed:
            if (
                self.hold_receipts
                or not self._receipts
                or len(session.unacked_receipts) >= self.receipt_window
            ):
                self._receipt_added.clear()
                await self._receipt_added.wait()
                continue
            message_id, stat, destination, source = self._receipts.popleft()
            sequence = next(session.sequence)
            session.unacked_receipts[sequence] = (message_id, stat)
            if message_id not in self._final:
                self.receipt_order.append(message_id)
            self._final[message_id] = stat
            self.receipts_sent.append((message_id, stat))
            session.send(self._receipt_pdu(sequence, message_id, stat, destination, source))

    def _receipt_pdu(
        self, sequence: int, message_id: str, stat: str, destination: str, source: str
    ) -> bytes:
        now = time.strftime("%y%m%d%H%M", time.gmtime())
        err = 0 if stat == "DELIVRD" else 12
        if self.decimal_receipt_ids:  # hex ids in submit_sm_resp, decimal in receipts
            message_id = str(int(message_id, 16))
        text = b""
        if self.receipt_text:
            text = (
                f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
                f"submit date:{now} done date:{now} stat:{stat} err:{err:03d} text:"
            ).encode()
        tlvs = []
        if self.receipt_tlvs:
            tlvs = [
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\x00"),
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes((STATES[stat],))),
            ]
            if err:
                tlvs.append(smpp34.Tlv(smpp34.TLV_NETWORK_ERROR_CODE, b"\x03" + err.to_bytes(2)))
        return smpp34.DeliverSm(
            destination,
            source,
            text,
            source_addr_ton=1,
            source_addr_npi=1,
            dest_addr_ton=1,
            dest_addr_npi=1,
            esm_class=0x04,
            tlvs=tlvs,
            sequence_number=sequence,
        ).encode()

    def _query(self, session: _Session, sequence: int, body: bytes) -> None:
        if not self.query_sm_supported:
            session.send(pdu(GENERIC_NACK, sequence, status=RINVCMDID))
            return
        message_id = cstrings(body, 1)[0]
        known = message_id in self._receipt_addresses
        state = STATES.get(self._final.get(message_id, ""), 1)
        if not known:
            session.send(pdu(QUERY_SM | RESP, sequence, b"\x00\x00\x00\x00", 0x67))
            return
        reply = message_id.encode() + b"\x00" + b"\x00" + bytes((state, 0))
        session.send(pdu(QUERY_SM | RESP, sequence, reply))

    # --- pushing to the ESME -----------------------------------------------------------

    async def _session_for_push(self, within: float = 10.0) -> _Session:
        deadline = time.monotonic() + within
        while not self.bound_sessions:
            if time.monotonic() > deadline:
                raise TimeoutError("no bound ESME session")
            await asyncio.sleep(0.01)
        return self.bound_sessions[-1]

    async def _request(self, session: _Session, command_id: int, body: bytes) -> int:
        sequence = next(session.sequence) + 1_000_000
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        session.waiting[sequence] = future
        session.send(body if command_id == DELIVER_SM else pdu(command_id, sequence, body))
        return await asyncio.wait_for(future, 10)

    async def enquire_link(self) -> int:
        """Send ``enquire_link`` to the bound ESME; returns the response's status."""
        session = await self._session_for_push()
        return await self._request(session, ENQUIRE_LINK, b"")

    async def inject(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        parts: int | None = None,
        order: Sequence[int] | None = None,
        sar: bool = False,
        ref: int = 0x42,
        wait: Callable[[], bool] | None = None,
    ) -> list[int]:
        """Deliver an inbound text (MO) to the bound ESME; returns each part's resp status.

        The text is cut into ``parts`` pieces at arbitrary byte/septet boundaries (as some
        networks do: escapes and surrogate pairs may be split), sent in ``order`` (1-based
        part numbers), with a concatenation UDH or, with ``sar``, the sar_* TLVs.
        """
        session = await self._session_for_push()
        gsm = is_gsm7(text)
        units = encode_gsm7(text) if gsm else text.encode("utf-16-be", "surrogatepass")
        count = parts or 1
        size = -(-len(units) // count)
        if not gsm and size % 2:
            size += 1
        chunks = [units[i : i + size] for i in range(0, len(units), size)] or [b""]
        total = len(chunks)
        statuses: list[int] = []
        for seq in order or range(1, total + 1):
            chunk = chunks[seq - 1]
            esm_class = 0
            tlvs: list[smpp34.Tlv] = []
            if total > 1 and not sar:
                udh = bytes((5, 0x00, 3, ref, total, seq))
                esm_class = 0x40
                chunk = udh + (pack_septets(chunk, 1) if gsm and self.packed_gsm7 else chunk)
            else:
                if gsm and self.packed_gsm7:
                    chunk = pack_septets(chunk)
                if total > 1:
                    tlvs = [
                        smpp34.Tlv(smpp34.TLV_SAR_MSG_REF_NUM, ref.to_bytes(2, "big")),
                        smpp34.Tlv(smpp34.TLV_SAR_TOTAL_SEGMENTS, bytes((total,))),
                        smpp34.Tlv(smpp34.TLV_SAR_SEGMENT_SEQNUM, bytes((seq,))),
                    ]
            sequence = next(session.sequence) + 1_000_000
            frame = smpp34.DeliverSm(
                source.lstrip("+"),
                destination.lstrip("+"),
                chunk,
                source_addr_ton=1,
                source_addr_npi=1,
                dest_addr_ton=1,
                dest_addr_npi=1,
                esm_class=esm_class,
                data_coding=0 if gsm else 8,
                tlvs=tlvs,
                sequence_number=sequence,
            ).encode()
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            session.waiting[sequence] = future
            session.send(frame)
            statuses.append(await asyncio.wait_for(future, 10))
        return statuses


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
