"""A lean HTTP/1.1 POST on a pooled keep-alive connection, for webhook attempts.

httpcore's HTTP/1.1 connection drives h11's general state machine (an event object per
head, body part and end, headers validated and normalised one by one, a lock per request):
for a webhook's small signed POST and short answer that cost more CPU than everything else
the attempt does. ``PostConnection`` writes the request's head and body as one buffer it
was given and parses the answer itself: the status line and header lines, a body framed
by ``Content-Length``, chunked or by the server closing, informational ``1xx`` answers
skipped. A connection is kept alive only when its answer was read to its end, was
HTTP/1.1 without ``Connection: close`` and left nothing unread.

The network stream is httpcore's (``AsyncNetworkStream``: dialed and vetted by the
transport's backend, TLS by its ``start_tls``), and failures are httpcore's exceptions,
which the transport maps to httpx's as for any request.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import time

import httpcore

MAX_HEAD = 65536
"""The most bytes an answer's status line and headers may take."""
READ_SIZE = 65536
_IDLE, _ACTIVE, _CLOSED = 0, 1, 2
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?\r?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r?")

Headers = list[tuple[bytes, bytes]]


def request_head(target: bytes, headers: Headers) -> bytes:
    """``POST target HTTP/1.1`` and ``headers``, ready to precede the body.

    Raises ``httpcore.LocalProtocolError`` for a target or header that would break the
    framing (a line break, a space in the target, a name that is not a token).
    """
    if not target or any(c in target for c in b" \r\n\x00"):
        raise httpcore.LocalProtocolError(f"bad request target {target!r}")
    lines = [b"POST ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if _TOKEN.fullmatch(name) is None or b"\n" in value or b"\r" in value or b"\x00" in value:
            raise httpcore.LocalProtocolError(f"bad header {name!r}")
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


async def connect(
    backend: httpcore.AsyncNetworkBackend,
    context: ssl.SSLContext,
    origin: httpcore.Origin,
    timeout: float | None,  # noqa: ASYNC109 (httpcore's per-operation timeout)
) -> httpcore.AsyncNetworkStream:
    """A stream to ``origin`` dialed by ``backend`` (TLS on top for ``https``, the
    certificate checked against the origin's host), as httpcore's connection dials."""
    host = origin.host.decode("ascii")
    stream = await backend.connect_tcp(host, origin.port, timeout=timeout)
    if origin.scheme == b"https":
        try:
            context.set_alpn_protocols(["http/1.1"])
            stream = await stream.start_tls(context, server_hostname=host, timeout=timeout)
        except BaseException:
            await stream.aclose()
            raise
    return stream


class PostConnection:
    """One keep-alive HTTP/1.1 connection that sends one request at a time (see the
    module's docstring). ``send`` writes a request and reads its answer's head,
    ``body_part`` reads the body piece by piece, ``finish`` ends the exchange."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, keepalive_expiry: float | None) -> None:
        self._stream = stream
        self._keepalive = keepalive_expiry
        self._state = _IDLE
        self._expire_at: float | None = None
        self._buffer = b""
        self._reusable = False
        self._remaining = 0
        """Body bytes still to come (``Content-Length``) or of the current chunk."""
        self._framing = "none"  # "length", "chunked", "close" or "none"
        self._finished = False

    # -- what the pool asks ------------------------------------------------------------------

    def is_idle(self) -> bool:
        return self._state == _IDLE

    def is_closed(self) -> bool:
        return self._state == _CLOSED

    def has_expired(self) -> bool:
        """Past its keep-alive, or the server sent something or hung up while it was idle."""
        if self._state == _CLOSED:
            return True
        if self._expire_at is not None and time.monotonic() > self._expire_at:
            return True
        return self._state == _IDLE and bool(self._stream.get_extra_info("is_readable"))

    async def aclose(self) -> None:
        self._state = _CLOSED
        await self._stream.aclose()

    # -- one exchange -----------------------------------------------------------------------

    async def send(
        self,
        request: bytes,
        timeout: float | None,  # noqa: ASYNC109 (per operation)
    ) -> tuple[int, Headers]:
        """Write ``request`` (head and body) and read the final answer's status and
        headers. On any failure the connection is closed and the failure raised."""
        if self._state != _IDLE:
            raise httpcore.ConnectionNotAvailable()
        self._state = _ACTIVE
        self._expire_at = None
        try:
            # The server may have answered and closed already: its answer tells.
            with contextlib.suppress(httpcore.WriteError):
                await self._stream.write(request, timeout)
            while True:
                version, status, headers = await self._head(timeout)
                if 100 <= status < 200 and status != 101:
                    continue  # informational: the real answer follows
                break
            self._frame(version, status, headers)
        except BaseException:
            await self.aclose()
            raise
        return status, headers

    @property
    def finished(self) -> bool:
        """Whether the answer's body was read to its end."""
        return self._finished

    async def body_part(self, timeout: float | None) -> bytes:  # noqa: ASYNC109
        """The next piece of the answer's body (``finished`` after the last)."""
        if self._framing == "length":
            if not self._buffer and not await self._fill(timeout):
                raise httpcore.RemoteProtocolError("the body broke off")
            part = self._buffer[: self._remaining]
            self._buffer = self._buffer[len(part) :]
            self._remaining -= len(part)
            self._finished = self._remaining == 0
            return part
        if self._framing == "close":
            if not self._buffer and not await self._fill(timeout):
                self._finished = True
                return b""
            part, self._buffer = self._buffer, b""
            return part
        return await self._chunk_part(timeout)

    def broken(self) -> None:
        """Reading the body failed or was given up: the connection cannot be reused."""
        self._reusable = False

    def finish(self) -> None:
        """End the exchange: idle again when the answer was read to its end, keep-alive is
        allowed and nothing stray is buffered; else it stays busy until the pool closes it."""
        if self._state == _ACTIVE and self._finished and self._reusable and not self._buffer:
            self._state = _IDLE
            if self._keepalive is not None:
                self._expire_at = time.monotonic() + self._keepalive

    # -- parsing ----------------------------------------------------------------------------

    async def _fill(self, timeout: float | None) -> bool:  # noqa: ASYNC109
        """Read more into the buffer; False when the server closed the connection."""
        data = await self._stream.read(READ_SIZE, timeout)
        if not data:
            return False
        self._buffer = self._buffer + data if self._buffer else data
        return True

    async def _head(self, timeout: float | None) -> tuple[int, int, Headers]:  # noqa: ASYNC109
        """(minor version, status, headers) of the next answer head."""
        while True:
            end = self._buffer.find(b"\n\r\n")
            blank = 3
            bare = self._buffer.find(b"\n\n")
            if bare != -1 and (end == -1 or bare < end):
                end, blank = bare, 2
            if end != -1:
                break
            if len(self._buffer) > MAX_HEAD:
                raise httpcore.RemoteProtocolError("the answer's head is too long")
            if not await self._fill(timeout):
                if self._buffer:
                    raise httpcore.RemoteProtocolError("the server hung up within the answer")
                raise httpcore.RemoteProtocolError(
                    "Server disconnected without sending a response."
                )
        head = self._buffer[:end]
        self._buffer = self._buffer[end + blank :]
        lines = head.split(b"\n")
        found = _STATUS_LINE.fullmatch(lines[0])
        if found is None:
            raise httpcore.RemoteProtocolError(f"not an HTTP/1.x answer: {lines[0][:60]!r}")
        headers: Headers = []
        for raw in lines[1:]:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if line[:1] in (b" ", b"\t") and headers:
                name, value = headers[-1]  # an obsolete folded line continues the last value
                headers[-1] = (name, b" ".join((value, line.strip(b" \t"))).strip(b" "))
                continue
            name, colon, value = line.partition(b":")
            if not colon or _TOKEN.fullmatch(name) is None:
                raise httpcore.RemoteProtocolError(f"malformed header line {line[:60]!r}")
            headers.append((name, value.strip(b" \t")))
        return int(found.group(1)), int(found.group(2)), headers

    def _frame(self, version: int, status: int, headers: Headers) -> None:
        """How the body is delimited, and whether the connection may be kept alive."""
        encoding: bytes | None = None
        length: bytes | None = None
        close = version == 0
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                encoding = value.lower()
            elif lowered == b"content-length":
                if length is not None and value.strip() != length:
                    raise httpcore.RemoteProtocolError("conflicting Content-Length headers")
                length = value.strip()
            elif lowered == b"connection" and b"close" in value.lower():
                close = True
        self._finished = False
        if status in (204, 304) or status == 101:
            self._framing, self._finished = "none", True
            close = close or status == 101
        elif encoding is not None:
            if encoding.rsplit(b",", 1)[-1].strip() == b"chunked":
                self._framing, self._remaining = "chunked", -1
            else:
                self._framing, close = "close", True
        elif length is not None:
            if not length.isdigit():
                raise httpcore.RemoteProtocolError(f"bad Content-Length {length[:20]!r}")
            self._framing, self._remaining = "length", int(length)
            self._finished = self._remaining == 0
        else:
            self._framing, close = "close", True
        self._reusable = not close

    async def _chunk_part(self, timeout: float | None) -> bytes:  # noqa: ASYNC109
        if self._remaining == -1:  # at a chunk's size line
            line = await self._line(timeout)
            found = _CHUNK_SIZE.fullmatch(line)
            if found is None:
                raise httpcore.RemoteProtocolError(f"bad chunk size line {line[:40]!r}")
            size = int(found.group(1), 16)
            if size == 0:
                while await self._line(timeout) not in (b"", b"\r"):
                    pass  # trailers: not kept
                self._finished = True
                return b""
            self._remaining = size
        if not self._buffer and not await self._fill(timeout):
            raise httpcore.RemoteProtocolError("the body broke off")
        part = self._buffer[: self._remaining]
        self._buffer = self._buffer[len(part) :]
        self._remaining -= len(part)
        if self._remaining == 0:
            if await self._line(timeout) not in (b"", b"\r"):
                raise httpcore.RemoteProtocolError("a chunk is longer than its size")
            self._remaining = -1
        return part

    async def _line(self, timeout: float | None) -> bytes:  # noqa: ASYNC109
        """The next line of the buffer, without its ``\\n``."""
        while (end := self._buffer.find(b"\n")) == -1:
            if len(self._buffer) > MAX_HEAD:
                raise httpcore.RemoteProtocolError("a chunk line is too long")
            if not await self._fill(timeout):
                raise httpcore.RemoteProtocolError("the body broke off")
        line = self._buffer[:end]
        self._buffer = self._buffer[end + 1 :]
        return line
