"""SMPP 3.4 carrier adapter: one long-lived ``bind_transceiver`` session per account.

What it does:

* **Session.** Connects to ``smpp://host:port`` (``smpps://`` for TLS), binds as a
  transceiver with the account's ``system_id`` / ``password`` / ``system_type``, keeps the
  link alive with ``enquire_link`` (and answers the SMSC's), and reconnects with
  exponential backoff whenever the link drops or stops answering. A refused bind is a
  :class:`SmppBindError` naming the SMSC's reason (e.g. invalid password).
* **Sending.** ``submit_sm`` in GSM-7 (data_coding 0; septets one per octet, or packed
  with the ``packed_gsm7`` option) or UCS-2 (data_coding 8); long texts go as parts of
  153 septets / 67 UTF-16 units with an 8-bit-reference concatenation UDH, never
  splitting an escape or a surrogate pair. At most ``window`` ``submit_sm`` are
  unacknowledged at a time. A message is sent when every part is accepted; its
  provider message id is the first part's, and receipts for the other parts map to it.
* **Errors.** ``ESME_RTHROTTLED`` / ``ESME_RMSGQFUL`` and other transient statuses, a
  lost connection and a response timeout are retryable; the rest (bad destination,
  bad parameters, ...) are permanent.
* **Duplicates.** Accepted parts are remembered by our reference: a retry sends only the
  parts the SMSC has not acknowledged (with the same concatenation reference), and a
  ``submit_sm_resp`` arriving after its timeout still counts. What cannot be known is
  whether a ``submit_sm`` written just before a connection drop reached the SMSC: at
  most ``window`` parts per drop can be sent twice.
* **Pushed traffic.** ``deliver_sm`` receipts (esm_class receipt bits; the
  ``receipted_message_id`` / ``message_state`` TLVs or the ``id:... stat:...`` text)
  become :class:`Receipt` values, inbound texts (UDH or ``sar_*`` parts joined in order,
  whatever order they arrive in) become :class:`InboundMessage` values, and both go to
  the :class:`ProviderEvents` sink; ``deliver_sm_resp`` is sent after the sink has stored
  them (``ESME_RX_T_APPN`` if it failed, so the SMSC delivers again).
* **Lookup.** ``query_sm`` for messages this session sent (where the SMSC supports it);
  ``None`` for references it knows nothing about.

Options come from :class:`SmppOptions`, and can be given in the account URL's query
string: ``smpp://host:2775?window=20&packed_gsm7=true&enquire_link_interval=15``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import smpp34
import structlog

from agentsms.providers import _smpp_codec as codec
from agentsms.providers.base import (
    CarrierUnreachable,
    CredentialsRejected,
    InboundMessage,
    Lookup,
    ProviderAccount,
    ProviderEvents,
    Receipt,
    ReceiptStatus,
    SendError,
    SendOutcome,
    SendRequest,
    SendResult,
)
from agentsms.providers.handoff import handoff_open, lapsed

log = structlog.get_logger("agentsms.providers.smpp")

DEFAULT_PORT: Final = 2775
DEFAULT_TLS_PORT: Final = 3550
_MAX_TRACKED: Final = 100_000
# A receipt's error code is its final message state (UNDELIV, EXPIRED, ...): in words.
ERRORS: Final[dict[str, str]] = codec.STATE_DESCRIPTIONS
_EVENT_BATCH: Final = 500
_BIND_REASONS: Final[dict[int, str]] = {
    0x05: "this system_id is already bound",
    0x0D: "bind failed",
    0x0E: "invalid password",
    0x0F: "invalid system_id",
    0x53: "invalid system_type",
}
_AUTH_STATUSES: Final = frozenset({0x0D, 0x0E, 0x0F, 0x53})
_BIND_KEYS: Final[dict[int, str]] = {0x0E: "password", 0x0F: "system_id", 0x53: "system_type"}


@dataclass(frozen=True, slots=True)
class SmppOptions:
    """Session and encoding settings (all have working defaults)."""

    window: int = 10
    """Most ``submit_sm`` awaiting their ``submit_sm_resp`` at once."""
    packed_gsm7: bool = False
    """Pack GSM-7 septets (8 per 7 octets) instead of one septet per octet."""
    registered_delivery: int = 1
    """1: ask for a delivery receipt on final success or failure."""
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 10.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0
    send_wait: float = 10.0
    """How long ``send_many`` waits for a bound session before answering retryable."""
    throttle_retry_after: float = 1.0
    inbound_part_timeout: float = 600.0
    """An inbound multi-part text still missing parts after this is delivered as it is."""
    query_sm: bool = True

    @classmethod
    def from_query(cls, query: str, base: SmppOptions | None = None) -> SmppOptions:
        """``base`` (or the defaults) with the values named in a URL query string."""
        known = {f.name: f for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key not in known:
                raise ValueError(f"api_base_url: unknown SMPP option {key!r}")
            default = getattr(cls(), key)
            try:
                if isinstance(default, bool):
                    if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
                        raise ValueError(value)
                    changes[key] = value.lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    changes[key] = int(value)
                else:
                    changes[key] = float(value)
            except ValueError:
                raise ValueError(f"api_base_url: SMPP option {key}={value!r} is invalid") from None
        options = replace(base or cls(), **changes)
        if options.window < 1:
            raise ValueError("api_base_url: SMPP option window must be at least 1")
        return options


AddressVetter = Callable[[str, int], Awaitable[Sequence[str]]]
"""The addresses a host may be reached at; raises ``OSError`` for a host that may not be."""


class SmppError(Exception):
    """The SMPP session could not be established."""


class SmppBindError(SmppError):
    """The SMSC answered the bind with an error status (wrong credentials, ...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        """Wrong credentials: trying again will not help until they are changed."""
        return self.status in _AUTH_STATUSES


class _ConnectionLost(Exception):
    pass


class _ResponseTimeout(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and as whom to bind, from a :class:`ProviderAccount`."""

    host: str
    port: int
    tls: bool
    system_id: str
    password: str
    system_type: str
    options: SmppOptions

    @classmethod
    def from_account(cls, account: ProviderAccount, options: SmppOptions | None = None) -> Endpoint:
        """Read ``smpp://host:port?options`` and the credentials; ``ValueError`` names the
        field that is wrong."""
        url = urlsplit(account.api_base_url)
        if url.scheme not in ("smpp", "smpps") or not url.hostname:
            raise ValueError("api_base_url: must look like smpp://host:port (or smpps://)")
        try:
            port = url.port
        except ValueError:
            raise ValueError("api_base_url: the port is not a number") from None
        tls = url.scheme == "smpps"
        credentials = account.credentials
        system_id = credentials.get("system_id", "")
        password = credentials.get("password", "")
        system_type = credentials.get("system_type", "")
        for name, value, limit in (
            ("system_id", system_id, 15),
            ("password", password, 8),
            ("system_type", system_type, 12),
        ):
            if name != "system_type" and not value:
                raise ValueError(f"credentials.{name}: is required for SMPP")
            if len(value.encode("latin-1", "replace")) > limit:
                raise ValueError(f"credentials.{name}: SMPP allows at most {limit} characters")
        return cls(
            host=url.hostname,
            port=port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
            tls=tls,
            system_id=system_id,
            password=password,
            system_type=system_type,
            options=SmppOptions.from_query(url.query, options),
        )


class _Link:
    """One TCP connection: sequence numbers, pending requests and their timeouts."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_request: Callable[[_Link, codec.Pdu], None],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._sequence = 0
        self._pending: dict[
            int,
            tuple[
                asyncio.Future[codec.Pdu], asyncio.TimerHandle, Callable[[codec.Pdu], None] | None
            ],
        ] = {}
        self._late: OrderedDict[int, Callable[[codec.Pdu], None]] = OrderedDict()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.tasks: list[asyncio.Task[None]] = []

    def request(
        self,
        command_id: int,
        body: bytes | Callable[[int], bytes] = b"",
        *,
        timeout: float,
        on_response: Callable[[codec.Pdu], None] | None = None,
    ) -> asyncio.Future[codec.Pdu]:
        """Write a request; the future holds its response (or the reason there is none).

        ``on_response`` receives the response the moment it is read, before any later PDU
        is (so a receipt right behind a ``submit_sm_resp`` finds its message id), and also
        a response that arrives after ``timeout`` has failed the future.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[codec.Pdu] = loop.create_future()
        future.add_done_callback(_retrieve)
        if self.closed.is_set():
            future.set_exception(_ConnectionLost(self.close_reason))
            return future
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        sequence = self._sequence
        data = body(sequence) if callable(body) else codec.encode(command_id, sequence, body)
        timer = loop.call_later(timeout, self._expire, sequence)
        self._pending[sequence] = (future, timer, on_response)
        self.send(data)
        return future

    def send(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        try:
            self._writer.write(data)
        except (ConnectionError, RuntimeError) as error:
            self.close(f"write failed: {error!r}")

    def respond(self, pdu: codec.Pdu, status: int = codec.ROK, body: bytes = b"") -> None:
        self.send(
            codec.encode(pdu.command_id | codec.RESPONSE_BIT, pdu.sequence, body, status=status)
        )

    def _expire(self, sequence: int) -> None:
        entry = self._pending.pop(sequence, None)
        if entry is None:
            return
        future, _, on_response = entry
        if not future.done():
            future.set_exception(_ResponseTimeout())
        if on_response is not None:
            self._late[sequence] = on_response
            while len(self._late) > 10_000:
                self._late.popitem(last=False)

    async def run(self) -> None:
        """Read PDUs until the connection ends."""
        reason = "closed"
        try:
            while True:
                self._dispatch(await codec.read_pdu(self._reader))
        except asyncio.IncompleteReadError:
            reason = "the SMSC closed the connection"
        except (ConnectionError, OSError, codec.PduError) as error:
            reason = f"connection failed: {error!r}"
        finally:
            self.close(reason)

    def _dispatch(self, pdu: codec.Pdu) -> None:
        if not pdu.is_response:
            self._on_request(self, pdu)
            return
        entry = self._pending.pop(pdu.sequence, None)
        if entry is not None:
            future, timer, on_response = entry
            timer.cancel()
            if on_response is not None:
                on_response(pdu)
            if not future.done():
                future.set_result(pdu)
        elif (late := self._late.pop(pdu.sequence, None)) is not None:
            late(pdu)

    def close(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        with contextlib.suppress(Exception):
            self._writer.close()
        pending, self._pending = self._pending, {}
        for future, timer, _ in pending.values():
            timer.cancel()
            if not future.done():
                future.set_exception(_ConnectionLost(reason))
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


def _retrieve(future: asyncio.Future[codec.Pdu]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass(slots=True)
class _Outbound:
    """What the SMSC has accepted of one of our messages, by its reference."""

    reference: str
    body: str
    concat_ref: int
    source: tuple[int, int, str]
    part_ids: list[str | None]
    states: list[str | None] = field(default_factory=list)
    reported: bool = False

    @property
    def complete(self) -> bool:
        return all(self.part_ids)


@dataclass(slots=True)
class _Assembly:
    parts: dict[int, bytes]
    total: int
    coding: str
    started: float


class SmppProvider:
    """A carrier reached over SMPP 3.4 (transceiver bind).

    Building one does not connect: :meth:`start` (or the first :meth:`send_many`) starts
    the session, :meth:`check_credentials` binds once to test the credentials, and
    :meth:`aclose` unbinds. ``ValueError`` (``"<field>: <reason>"``) for an account it
    cannot use. Without ``events`` pushed traffic is refused (the SMSC delivers it again
    to a session that can store it).
    """

    name = "smpp"

    def __init__(
        self,
        account: ProviderAccount,
        events: ProviderEvents | None = None,
        options: SmppOptions | None = None,
        *,
        vet: AddressVetter | None = None,
    ) -> None:
        """``vet`` is the SSRF guard in production: the SMSC's host is the tenant's."""
        self.account = account
        self.account_id = account.id
        self._vet = vet
        self.endpoint = Endpoint.from_account(account, options)
        self.options = self.endpoint.options
        self._events: ProviderEvents = events if events is not None else _NoEvents()
        self._window = asyncio.Semaphore(self.options.window)
        self._link: _Link | None = None
        self._changed = asyncio.Event()
        self._bind_error: SmppBindError | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._outbound: OrderedDict[str, _Outbound] = OrderedDict()
        self._by_id: dict[str, tuple[_Outbound, int]] = {}
        self._by_number: dict[tuple[str, int], tuple[_Outbound, int]] = {}
        self._unknown_seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._assemblies: dict[tuple[str, str, int, int, str], _Assembly] = {}
        self._incoming: asyncio.Queue[tuple[_Link, codec.Pdu]] = asyncio.Queue()
        self._concat_ref = random.randrange(256)
        self._query_supported = self.options.query_sm
        self.last_error: str | None = None
        self.binds = 0
        self.enquire_links_sent = 0
        self.enquire_links_answered = 0
        self.enquire_links_received = 0

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self._link is not None and not self._link.closed.is_set()

    async def start(self) -> None:
        """Start the session (connect, bind, keep alive, reconnect) in the background."""
        if self._tasks or self._closing:
            return
        self._tasks = [
            asyncio.create_task(self._supervise(), name=f"smpp-session-{self.account_id}"),
            asyncio.create_task(self._consume(), name=f"smpp-events-{self.account_id}"),
        ]

    async def wait_bound(self, within: float | None = None) -> None:
        """Return once bound; raise the SMSC's refusal or :class:`SmppError` on timeout."""
        await self.start()
        link = await self._ready_link(self.options.connect_timeout if within is None else within)
        if link is not None:
            return
        if self._bind_error is not None:
            raise self._bind_error
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        raise SmppError(f"could not bind to the SMSC at {where}: {self.last_error or 'timeout'}")

    async def check_credentials(self) -> None:
        """Bind once with the account's credentials and unbind (the session is not
        started): :class:`CredentialsRejected` naming the credential the SMSC refused,
        :class:`CarrierUnreachable` when it cannot be reached or refuses for another
        reason (e.g. this system_id is already bound as often as the SMSC allows)."""
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        try:
            link = await self._connect()
        except SmppBindError as error:
            if error.permanent:
                raise CredentialsRejected(str(error), key=_BIND_KEYS.get(error.status)) from None
            raise CarrierUnreachable(str(error)) from None
        except (OSError, TimeoutError, SmppError, _ConnectionLost, _ResponseTimeout) as error:
            raise CarrierUnreachable(f"could not bind to the SMSC at {where}: {error!r}") from None
        await self._unbind(link)

    async def close(self) -> None:
        """Unbind politely and stop the session."""
        self._closing = True
        link = self._link
        if link is not None:
            await self._unbind(link)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def aclose(self) -> None:
        """The registry's name for :meth:`close`."""
        await self.close()

    async def _unbind(self, link: _Link) -> None:
        if not link.closed.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    link.request(codec.UNBIND, timeout=self.options.response_timeout), 2.0
                )
            link.close("unbound")

    async def _ready_link(self, within: float) -> _Link | None:
        """The bound link, waiting up to ``within`` seconds for one; None when there is none (a
        refused bind answers at once: waiting would not change the credentials)."""
        deadline = time.monotonic() + within
        while True:
            link = self._link
            if link is not None and not link.closed.is_set():
                return link
            remaining = deadline - time.monotonic()
            if self._bind_error is not None or remaining <= 0:
                return None
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _notify(self) -> None:
        self._changed.set()

    async def _supervise(self) -> None:
        delay = self.options.reconnect_initial
        while not self._closing:
            try:
                link = await self._connect()
            except SmppBindError as error:
                self._bind_error = error
                self.last_error = str(error)
                log.warning("smpp.bind_refused", account=self.account_id, error=str(error))
            except (OSError, TimeoutError, SmppError, _ConnectionLost, _ResponseTimeout) as error:
                self.last_error = repr(error)
                log.warning("smpp.connect_failed", account=self.account_id, error=repr(error))
            else:
                started = time.monotonic()
                self._bind_error = None
                self.binds += 1
                self._link = link
                self._notify()
                log.info("smpp.bound", account=self.account_id, binds=self.binds)
                await link.closed.wait()
                self._link = None
                self.last_error = link.close_reason
                self._notify()
                if self._closing:
                    return
                log.warning("smpp.disconnected", account=self.account_id, reason=link.close_reason)
                if time.monotonic() - started > self.options.reconnect_max:
                    delay = self.options.reconnect_initial  # it was a healthy session
            self._notify()
            # Exponential backoff: a link that keeps failing is retried ever more slowly.
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.reconnect_max)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP (or TLS) connection to the SMSC: to an address ``vet`` allowed, if given
        (TLS still checks the certificate against the host name)."""
        endpoint = self.endpoint
        context = ssl.create_default_context() if endpoint.tls else None
        if self._vet is None:
            return await asyncio.open_connection(endpoint.host, endpoint.port, ssl=context)
        name = endpoint.host if context is not None else None
        last: OSError | None = None
        for address in await self._vet(endpoint.host, endpoint.port):
            try:
                return await asyncio.open_connection(
                    address, endpoint.port, ssl=context, server_hostname=name
                )
            except OSError as error:
                last = error
        raise last or OSError(f"{endpoint.host} has no address")

    async def _connect(self) -> _Link:
        endpoint = self.endpoint
        reader, writer = await asyncio.wait_for(self._open(), self.options.connect_timeout)
        link = _Link(reader, writer, self._on_request)
        link.tasks.append(asyncio.create_task(link.run()))
        bind = codec.Bind(endpoint.system_id, endpoint.password, endpoint.system_type)
        try:
            response = await link.request(
                codec.BIND_TRANSCEIVER, bind.body(), timeout=self.options.connect_timeout
            )
        except BaseException:
            link.close("bind not answered")
            raise
        if response.command_id == codec.GENERIC_NACK or response.status != codec.ROK:
            link.close("bind refused")
            reason = _BIND_REASONS.get(response.status, "refused")
            raise SmppBindError(
                f"the SMSC at {endpoint.host}:{endpoint.port} refused bind_transceiver for "
                f"system_id {endpoint.system_id!r}: {reason} "
                f"({codec.status_name(response.status)})",
                response.status,
            )
        link.tasks.append(asyncio.create_task(self._keep_alive(link)))
        return link

    async def _keep_alive(self, link: _Link) -> None:
        while not link.closed.is_set():
            await asyncio.sleep(self.options.enquire_link_interval)
            self.enquire_links_sent += 1
            try:
                await link.request(codec.ENQUIRE_LINK, timeout=self.options.response_timeout)
            except (_ConnectionLost, _ResponseTimeout):
                link.close("enquire_link not answered")
                return
            self.enquire_links_answered += 1

    def _on_request(self, link: _Link, pdu: codec.Pdu) -> None:
        if pdu.command_id == codec.ENQUIRE_LINK:
            self.enquire_links_received += 1
            link.respond(pdu)
        elif pdu.command_id == codec.DELIVER_SM:
            self._incoming.put_nowait((link, pdu))
        elif pdu.command_id == codec.UNBIND:
            link.respond(pdu)
            link.close("the SMSC unbound")
        elif pdu.command_id == codec.ALERT_NOTIFICATION:  # has no response
            return
        else:
            link.send(codec.encode(codec.GENERIC_NACK, pdu.sequence, status=codec.RINVCMDID))

    # --- sending -----------------------------------------------------------------------

    async def send_many(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        """Submit every message (all its parts); one outcome per request, in order."""
        await self.start()
        link = await self._ready_link(self.options.send_wait)
        if link is None:
            return [self._unavailable()] * len(requests)
        errors: dict[str, SendError] = {}
        waits: list[asyncio.Future[codec.Pdu]] = []
        entries: list[_Outbound | None] = []
        for request in requests:
            if request.media_urls or request.channel != "sms":
                errors[request.reference] = SendError(
                    "unsupported_channel",
                    "SMPP carries SMS text only (no MMS, media or other channels)",
                    retryable=False,
                )
                entries.append(None)
                continue
            try:
                entry, parts = self._prepare(request)
            except ValueError as error:
                errors[request.reference] = SendError("invalid_body", str(error), retryable=False)
                entries.append(None)
                continue
            try:
                frames = [self._encode_submit(request, entry, part) for part in parts]
            except ValueError as error:
                errors[request.reference] = SendError("invalid_address", str(error), False)
                self._forget(request.reference)
                entries.append(None)
                continue
            entries.append(entry)
            handed = False
            for index, frame in enumerate(frames):
                if entry.part_ids[index] is not None:
                    continue  # accepted by an earlier attempt: not sent twice
                await self._window.acquire()
                if link.closed.is_set():
                    # Dropped mid-batch: what was written and not answered fails (retryable);
                    # the rest goes out on the next session.
                    link = await self._ready_link(self.options.send_wait) or link
                if not handed and not handoff_open():
                    # The fence: a message starts only while the claim surely holds it
                    # (its later parts follow the first).
                    self._window.release()
                    errors[request.reference] = lapsed()
                    break
                handed = True
                future = link.request(
                    codec.SUBMIT_SM,
                    functools.partial(_with_sequence, frame),
                    timeout=self.options.response_timeout,
                    on_response=self._accepted_callback(entry, index),
                )
                future.add_done_callback(self._part_done(entry, index, errors))
                waits.append(future)
        if waits:
            await asyncio.wait(waits)
        outcomes: list[SendOutcome] = []
        for request, maybe_entry in zip(requests, entries, strict=True):
            if maybe_entry is None or not maybe_entry.complete:
                failure = errors.get(request.reference) or SendError(
                    "smpp_connection_lost", "the SMPP connection dropped", retryable=True
                )
                if not failure.retryable:
                    self._forget(request.reference)
                outcomes.append(failure)
                continue
            first = maybe_entry.part_ids[0]
            assert first is not None
            outcomes.append(SendResult(provider_message_id=first))
        return outcomes

    def _unavailable(self) -> SendError:
        error = self._bind_error
        if error is not None:
            return SendError(
                codec.status_name(error.status), str(error), retryable=not error.permanent
            )
        return SendError(
            "smpp_unavailable",
            f"no SMPP session to {self.endpoint.host}:{self.endpoint.port}: {self.last_error}",
            retryable=True,
        )

    def _prepare(self, request: SendRequest) -> tuple[_Outbound, list[codec.EncodedPart]]:
        entry = self._outbound.get(request.reference)
        if entry is None or entry.body != request.body:
            self._concat_ref = (self._concat_ref + 1) % 256
            ref = self._concat_ref
        else:
            ref = entry.concat_ref
        parts = codec.encode_text(
            request.body, concat_ref=ref, packed_gsm7=self.options.packed_gsm7
        )
        if entry is None or entry.body != request.body:
            entry = _Outbound(
                reference=request.reference,
                body=request.body,
                concat_ref=ref,
                source=codec.address(request.from_number),
                part_ids=[None] * len(parts),
                states=[None] * len(parts),
            )
            self._remember(entry)
        return entry, parts

    def _encode_submit(
        self, request: SendRequest, entry: _Outbound, part: codec.EncodedPart
    ) -> bytes:
        """The ``submit_sm`` with sequence number 0 (set per send); ``ValueError`` for an
        address SMPP cannot carry."""
        source_ton, source_npi, source = entry.source
        dest_ton, dest_npi, destination = codec.address(request.to_number)
        if source_ton == codec.TON_ALPHANUMERIC and len(source) > 11:
            raise ValueError(f"from: alphanumeric sender {source!r} is longer than 11")
        for field_name, value in (("from", source), ("to", destination)):
            if not value or len(value.encode("latin-1", "replace")) > 20:
                raise ValueError(f"{field_name}: {value!r} is not a valid SMPP address")
        return smpp34.SubmitSm(
            source,
            destination,
            part.short_message,
            source_addr_ton=source_ton,
            source_addr_npi=source_npi,
            dest_addr_ton=dest_ton,
            dest_addr_npi=dest_npi,
            esm_class=part.esm_class,
            registered_delivery=self.options.registered_delivery,
            data_coding=part.data_coding,
            sequence_number=0,
        ).encode()

    def _accepted_callback(self, entry: _Outbound, index: int) -> Callable[[codec.Pdu], None]:
        def accepted(pdu: codec.Pdu) -> None:
            if pdu.command_id == codec.GENERIC_NACK or pdu.status != codec.ROK:
                return
            try:
                message_id = codec.message_id_of(pdu.body)
            except codec.PduError:
                return
            if message_id and entry.part_ids[index] is None:
                entry.part_ids[index] = message_id
                self._index(message_id, entry, index)

        return accepted

    def _part_done(
        self, entry: _Outbound, index: int, errors: dict[str, SendError]
    ) -> Callable[[asyncio.Future[codec.Pdu]], None]:
        accepted = self._accepted_callback(entry, index)

        def done(future: asyncio.Future[codec.Pdu]) -> None:
            self._window.release()
            error = future.exception()
            if isinstance(error, _ResponseTimeout):
                errors.setdefault(
                    entry.reference,
                    SendError("smpp_timeout", "no submit_sm_resp in time", retryable=True),
                )
                return
            if error is not None:
                errors.setdefault(
                    entry.reference,
                    SendError(
                        "smpp_connection_lost",
                        f"the SMPP connection dropped before the SMSC answered: {error}",
                        retryable=True,
                    ),
                )
                return
            pdu = future.result()
            if pdu.command_id != codec.GENERIC_NACK and pdu.status == codec.ROK:
                accepted(pdu)
                if entry.part_ids[index] is None:
                    # Accepted without an id: sending it again would text the person twice,
                    # so it counts as sent (its receipts cannot be matched).
                    log.warning("smpp.no_message_id", account=self.account_id)
                    entry.part_ids[index] = f"{entry.reference}#{index + 1}"
                return
            errors[entry.reference] = _refusal(
                pdu.status, self.options.throttle_retry_after, errors.get(entry.reference)
            )

        return done

    def _remember(self, entry: _Outbound) -> None:
        self._outbound[entry.reference] = entry
        self._outbound.move_to_end(entry.reference)
        while len(self._outbound) > _MAX_TRACKED:
            _, old = self._outbound.popitem(last=False)
            for message_id in old.part_ids:
                if message_id is not None:
                    self._unindex(message_id)

    def _forget(self, reference: str) -> None:
        entry = self._outbound.pop(reference, None)
        if entry is not None:
            for message_id in entry.part_ids:
                if message_id is not None:
                    self._unindex(message_id)

    # --- lookup ------------------------------------------------------------------------

    async def lookup(self, request: SendRequest) -> Lookup | None:
        """What this session knows of ``request.reference``: ``query_sm`` for its state
        when the SMSC supports it; None when the reference was not sent from here."""
        entry = self._outbound.get(request.reference)
        if entry is None:
            return None
        if not entry.complete:
            return Lookup(found=False)
        first = entry.part_ids[0]
        assert first is not None
        status: ReceiptStatus = "sent"
        link = self._link
        if self._query_supported and link is not None and not link.closed.is_set():
            ton, npi, source = entry.source
            try:
                response = await link.request(
                    codec.QUERY_SM,
                    codec.query_sm_body(first, ton, npi, source),
                    timeout=self.options.response_timeout,
                )
            except (_ConnectionLost, _ResponseTimeout):
                response = None
            if response is not None:
                if response.command_id == codec.GENERIC_NACK or response.status == codec.RINVCMDID:
                    self._query_supported = False
                elif response.status == codec.ROK:
                    _, state, _ = codec.parse_query_sm_resp(response.body)
                    word = codec.MESSAGE_STATES.get(state, "UNKNOWN")
                    status = codec.STATE_STATUS.get(word, "sent")
        return Lookup(found=True, result=SendResult(provider_message_id=first, status=status))

    # --- pushed traffic ----------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            try:
                first = await asyncio.wait_for(
                    self._incoming.get(), min(30.0, self.options.inbound_part_timeout)
                )
            except TimeoutError:
                await self._deliver_stale()
                continue
            batch = [first]
            while len(batch) < _EVENT_BATCH and not self._incoming.empty():
                batch.append(self._incoming.get_nowait())
            try:
                await self._handle(batch)
            except Exception:  # keep the session's event loop alive whatever the sink does
                log.exception("smpp.events_failed", account=self.account_id)
            await self._deliver_stale()

    async def _handle(self, batch: Sequence[tuple[_Link, codec.Pdu]]) -> None:
        receipts: list[Receipt] = []
        receipt_acks: list[tuple[_Link, codec.Pdu]] = []
        undo: list[Callable[[], None]] = []
        for link, pdu in batch:
            try:
                deliver = smpp34.decode(pdu.frame())
            except (smpp34.SmppError, ValueError) as error:
                log.warning("smpp.bad_deliver_sm", account=self.account_id, error=repr(error))
                link.respond(pdu, codec.RX_P_APPN)
                continue
            assert isinstance(deliver, smpp34.DeliverSm)
            tlvs = codec.tlv_map(deliver.tlvs)
            kind = deliver.esm_class & codec.ESM_TYPE_MASK
            if kind in (codec.ESM_DELIVERY_RECEIPT, codec.ESM_INTERMEDIATE_NOTIFICATION):
                info = codec.parse_receipt(deliver.short_message, tlvs)
                receipt = self._receipt(info, undo) if info is not None else None
                if receipt is not None:
                    receipts.append(receipt)
                receipt_acks.append((link, pdu))
            elif kind:
                link.respond(pdu)  # SME acknowledgements: nothing to store
            else:
                if receipt_acks:
                    # keep the SMSC's order: receipts before this text are stored first
                    await self._store_receipts(receipts, receipt_acks, undo)
                    receipts, receipt_acks, undo = [], [], []
                await self._inbound(link, pdu, deliver, tlvs)
        if receipt_acks:
            await self._store_receipts(receipts, receipt_acks, undo)

    async def _store_receipts(
        self,
        receipts: Sequence[Receipt],
        acks: Sequence[tuple[_Link, codec.Pdu]],
        undo: Sequence[Callable[[], None]],
    ) -> None:
        status = codec.ROK
        if receipts:
            try:
                await self._events.receipts(self.account_id, receipts)
            except Exception:
                log.exception("smpp.receipts_not_stored", account=self.account_id)
                status = codec.RX_T_APPN
                # The SMSC delivers these again: they must not look like repeats then.
                for action in reversed(undo):
                    action()
        for link, pdu in acks:
            link.respond(pdu, status)

    def _receipt(self, info: codec.ReceiptInfo, undo: list[Callable[[], None]]) -> Receipt | None:
        """The receipt to store for one part's report (None: nothing to store yet), noting
        in ``undo`` how to forget the report should storing fail."""
        status = codec.STATE_STATUS.get(info.state, "sent")
        error_code = None if status in ("sent", "delivered") else info.state
        error_message = None
        if error_code is not None:
            description = codec.STATE_DESCRIPTIONS.get(info.state, "not delivered")
            error_message = description + (f" (SMSC error {info.error})" if info.error else "")
        found = self._find(info.message_id)
        if found is None:
            key = (info.message_id, info.state)
            if status == "sent" or key in self._unknown_seen:
                return None
            self._unknown_seen[key] = None
            undo.append(lambda: self._unknown_seen.pop(key, None))
            while len(self._unknown_seen) > 10_000:
                self._unknown_seen.popitem(last=False)
            return Receipt(info.message_id, status, None, error_code, error_message)
        entry, index = found
        if status == "sent" or entry.states[index] is not None:
            return None  # intermediate, or a repeat of a part's final receipt
        entry.states[index] = info.state
        undo.append(lambda: entry.states.__setitem__(index, None))
        if entry.reported:
            return None
        failed = status != "delivered"
        if not failed and not all(s == "DELIVRD" for s in entry.states):
            return None  # wait for the other parts
        entry.reported = True
        undo.append(lambda: setattr(entry, "reported", False))
        return Receipt(entry.part_ids[0], status, entry.reference, error_code, error_message)

    def _index(self, message_id: str, entry: _Outbound, index: int) -> None:
        self._by_id[message_id] = (entry, index)
        for key in _numeric_keys(message_id):
            self._by_number[key] = (entry, index)

    def _unindex(self, message_id: str) -> None:
        self._by_id.pop(message_id, None)
        for key in _numeric_keys(message_id):
            self._by_number.pop(key, None)

    def _find(self, message_id: str) -> tuple[_Outbound, int] | None:
        found = self._by_id.get(message_id)
        if found is not None:
            return found
        # Some SMSCs answer submit_sm with a hex id and write it in decimal in receipts,
        # or the other way round: the same number read the other way.
        if _is_decimal(message_id):
            found = self._by_number.get(("x", int(message_id)))
        if found is None and _is_hex(message_id):
            found = self._by_number.get(("d", int(message_id, 16)))
        return found

    async def _inbound(
        self,
        link: _Link,
        pdu: codec.Pdu,
        deliver: smpp34.DeliverSm,
        tlvs: Mapping[int, bytes],
    ) -> None:
        part = codec.split_inbound(
            deliver.data_coding,
            deliver.esm_class,
            deliver.short_message,
            dict(tlvs),
            packed_gsm7=self.options.packed_gsm7,
        )
        sender = codec.number_of(deliver.source_addr_ton, deliver.source_addr)
        ours = codec.number_of(deliver.dest_addr_ton, deliver.destination_addr)
        if part.ref is None:
            text = codec.decode_units(part.coding, part.units)
            link.respond(pdu, await self._store_inbound(sender, ours, text))
            return
        key = (sender, ours, part.ref, part.total, part.coding)
        assembly = self._assemblies.setdefault(
            key, _Assembly({}, part.total, part.coding, time.monotonic())
        )
        assembly.parts[part.seq] = part.units
        if len(assembly.parts) < assembly.total:
            link.respond(pdu)  # held in memory until the other parts come
            return
        units = b"".join(assembly.parts[i] for i in sorted(assembly.parts))
        status = await self._store_inbound(sender, ours, codec.decode_units(part.coding, units))
        if status == codec.ROK:
            del self._assemblies[key]
        else:
            del assembly.parts[part.seq]  # the SMSC sends this part again
        link.respond(pdu, status)

    async def _store_inbound(self, sender: str, ours: str, text: str) -> int:
        message = InboundMessage(from_number=sender, to_number=ours, body=text)
        try:
            await self._events.inbound(self.account_id, message)
        except Exception:
            log.exception("smpp.inbound_not_stored", account=self.account_id)
            return codec.RX_T_APPN
        return codec.ROK

    async def _deliver_stale(self) -> None:
        """Texts whose missing parts never came: delivered as they are, rather than lost."""
        limit = time.monotonic() - self.options.inbound_part_timeout
        for key in [k for k, a in self._assemblies.items() if a.started < limit]:
            assembly = self._assemblies[key]
            units = b"".join(assembly.parts[i] for i in sorted(assembly.parts))
            sender, ours = key[0], key[1]
            log.warning(
                "smpp.inbound_incomplete", account=self.account_id, parts=len(assembly.parts)
            )
            text = codec.decode_units(assembly.coding, units)
            if await self._store_inbound(sender, ours, text) == codec.ROK:
                del self._assemblies[key]


def _with_sequence(frame: bytes, sequence: int) -> bytes:
    return frame[:12] + sequence.to_bytes(4, "big") + frame[16:]


def _is_decimal(value: str) -> bool:
    return bool(value) and all(c in "0123456789" for c in value)


def _is_hex(value: str) -> bool:
    return bool(value) and all(c in "0123456789abcdefABCDEF" for c in value)


def _numeric_keys(message_id: str) -> list[tuple[str, int]]:
    """A message id's value read as hex ("x") and as decimal ("d"), where it parses so."""
    keys: list[tuple[str, int]] = []
    if _is_hex(message_id) and len(message_id) <= 32:
        keys.append(("x", int(message_id, 16)))
    if _is_decimal(message_id) and len(message_id) <= 40:
        keys.append(("d", int(message_id)))
    return keys


def _refusal(status: int, throttle_retry_after: float, earlier: SendError | None) -> SendError:
    name = codec.status_name(status)
    retryable = status in codec.RETRYABLE_STATUSES
    if earlier is not None and not earlier.retryable:
        return earlier  # one permanently refused part fails the message
    return SendError(
        code=name,
        message=f"the SMSC refused submit_sm: {name} (0x{status:08X})",
        retryable=retryable,
        retry_after=throttle_retry_after if status in codec.THROTTLE_STATUSES else None,
    )


class _NoEvents:
    async def receipts(self, account_id: str, receipts: Sequence[Receipt]) -> None:
        raise RuntimeError("not listening")

    async def inbound(self, account_id: str, message: InboundMessage) -> None:
        raise RuntimeError("not listening")
