"""A keep-alive HTTP/1.1 POST on a pooled connection, for webhook attempts.

httpcore's HTTP/1.1 connection drives h11's general state machine (an event object per
head, body part and end, headers validated and normalised one by one, a lock per request):
for a webhook's small signed POST and short answer that cost more CPU than everything else
the attempt does. ``PostConnection`` writes the request's head and body as one buffer
(``request_head``) and reads the answer with llhttp (``httptools.HttpResponseParser``, the
parser uvicorn serves with): the status, the headers, the body however it is framed
(``Content-Length``, chunked, until the server closes), informational ``1xx`` answers
skipped. A connection is kept alive only when llhttp saw its answer end, the answer was
HTTP/1.1 that llhttp keeps alive (``should_keep_alive``: no ``Connection: close``) and
nothing followed it.

llhttp parses strictly, with one leniency: a bare LF ends a line (RFC 9112 section 2.2
lets a recipient accept it). Obsolete folded header lines are refused: llhttp admits them
only together with control characters in header values.

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
import httptools

MAX_OVERHEAD = 65536
"""The most bytes of an answer that are not its body: the status line and headers,
informational answers, chunk lines and trailers."""
READ_SIZE = 65536
_IDLE, _ACTIVE, _CLOSED = 0, 1, 2
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

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


class _Stray(Exception):
    """Bytes after the answer (llhttp would parse them as the next one)."""


class _Answer:
    """The answer being read, as llhttp's callbacks report it."""

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: Headers = []
        self.head = False
        """Whether the final (not informational) answer's head was read."""
        self.parts: list[bytes] = []
        """Body bytes parsed and not yet handed out."""
        self.body_bytes = 0
        self.complete = False
        """Whether llhttp saw the answer end."""
        self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.head:  # after the head: trailers, not kept
            self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.headers = []  # informational: the final answer follows
        else:
            self.status, self.head = status, True

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        if self.head:
            assert self.parser is not None
            self.complete = True
            self.keep_alive = (
                self.status != 101
                and self.parser.should_keep_alive()
                and self.parser.get_http_version() == "1.1"
            )

    def on_message_begin(self) -> None:
        if self.complete:
            raise _Stray  # something follows the answer: not parsed


class PostConnection:
    """One keep-alive HTTP/1.1 connection that sends one request at a time (see the
    module's docstring). ``send`` writes a request and reads its answer's head,
    ``body_part`` reads the body piece by piece, ``finish`` ends the exchange."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, keepalive_expiry: float | None) -> None:
        self._stream = stream
        self._keepalive = keepalive_expiry
        self._state = _IDLE
        self._expire_at: float | None = None
        self._answer = _Answer()
        self._parser = httptools.HttpResponseParser(self._answer)
        self._parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        self._answer.parser = self._parser
        self._read = 0
        """Bytes of the answer read off the connection."""
        self._hung_up = False

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
        answer = self._answer
        answer.reset()
        self._read = 0
        self._hung_up = False
        try:
            # The server may have answered and closed already: its answer tells.
            with contextlib.suppress(httpcore.WriteError):
                await self._stream.write(request, timeout)
            while not answer.head:
                if not await self._feed(timeout):
                    raise httpcore.RemoteProtocolError(
                        "the server hung up within the answer"
                        if self._read
                        else "Server disconnected without sending a response."
                    )
        except BaseException:
            await self.aclose()
            raise
        return answer.status, answer.headers

    @property
    def finished(self) -> bool:
        """Whether the answer's body was read to its end (or the server hung up) and
        handed out."""
        return (self._answer.complete or self._hung_up) and not self._answer.parts

    async def body_part(self, timeout: float | None) -> bytes:  # noqa: ASYNC109
        """The next piece of the answer's body (``finished`` after the last)."""
        parts = self._answer.parts
        if not parts and not self.finished and not await self._feed(timeout):
            self._hung_up = True  # the body's end, or where it broke off
        part = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        return part

    def broken(self) -> None:
        """Reading the body failed or was given up: the connection cannot be reused."""
        self._answer.keep_alive = False

    def finish(self) -> None:
        """End the exchange: idle again when the answer was read to its end and may be
        kept alive; else it stays busy until the pool closes it."""
        answer = self._answer
        if self._state == _ACTIVE and answer.complete and answer.keep_alive and not answer.parts:
            self._state = _IDLE
            if self._keepalive is not None:
                self._expire_at = time.monotonic() + self._keepalive

    async def _feed(self, timeout: float | None) -> bool:  # noqa: ASYNC109
        """Read more of the answer and parse it; False when the server closed the
        connection."""
        data = await self._stream.read(READ_SIZE, timeout)
        if not data:
            return False
        answer = self._answer
        self._read += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            if not answer.complete:
                raise httpcore.RemoteProtocolError(f"malformed answer: {error}") from None
            answer.keep_alive = False  # something follows the answer
        if not answer.complete and self._read - answer.body_bytes > MAX_OVERHEAD:
            raise httpcore.RemoteProtocolError(
                "the answer's head, chunk lines or trailers are too long"
            )
        return True
