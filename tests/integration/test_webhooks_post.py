"""``SafeTransport.post``, the webhook attempt's path, against a raw HTTP/1.1 server on
loopback that answers each path its own way: content-length and chunked bodies, keep-alive
and ``Connection: close``, an informational 100 first, redirects and errors, answers that
are slow, stall, break off or are not HTTP at all. Each test runs on the asyncio streams
the transport dials with (``webhooks.streams``) and on httpcore's AnyIO ones (what a
test's dialer may hand it), both wrapped to count the writes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx
import pytest
import trustme

from agentsms.config import Settings
from agentsms.webhooks import BlockedRequest
from agentsms.webhooks.http11 import MAX_OVERHEAD
from agentsms.webhooks.ssrf import SafeTransport, UrlPolicy
from agentsms.webhooks.streams import AsyncioBackend
from tests.raw_http import read_request


@dataclass
class Server:
    """Reads each request whole (content-length body), then answers by its path."""

    port: int = 0
    connections: int = 0
    requests: list[tuple[str, bytes]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                self.requests.append(await read_request(reader))
                path = self.requests[-1][0]
                if not await self.answer(path, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, path: str, writer: asyncio.StreamWriter) -> bool:
        """Write the answer to ``path``; False to hang up after it."""
        if path == "/length":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        elif path == "/chunked":
            writer.write(
                b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
            )
        elif path == "/close":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            return False
        elif path == "/continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        elif path == "/redirect":
            writer.write(
                b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
        elif path == "/busy":
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\n"
                b"busy"
            )
        elif path == "/garbage":
            writer.write(b"this is not HTTP at all\r\n\r\n")
            await writer.drain()
            return False
        elif path == "/hangup":
            return False
        elif path == "/slow":
            await asyncio.sleep(1.0)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        elif path == "/stall":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part")
            await writer.drain()
            await asyncio.sleep(2.0)
            return False
        elif path == "/truncated":
            writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\nshort")
            await writer.drain()
            return False
        elif path == "/idle-close":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.1)
            return False  # hangs up while the connection is idle in the client's pool
        elif path == "/http10":
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        elif path == "/trailers":
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"2;name=value\r\nab\r\n1\r\nc\r\n0\r\nX-Checksum: 1\r\n\r\n"
            )
        elif path == "/folded":
            writer.write(
                b"HTTP/1.1 429 Too Many\r\nRetry-After:\r\n  12\r\nContent-Length: 0\r\n\r\n"
            )
        elif path == "/nul-header":
            writer.write(b"HTTP/1.1 200 OK\r\nX-Note: a\x00b\r\nContent-Length: 0\r\n\r\n")
        elif path == "/endless-head":
            writer.write(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (MAX_OVERHEAD + 1000))
            await writer.drain()
            await asyncio.sleep(2.0)
            return False
        elif path == "/endless-trailers":
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
                b"X-Pad: " + b"a" * (MAX_OVERHEAD + 1000)
            )
            await writer.drain()
            await asyncio.sleep(2.0)
            return False
        elif path == "/bare-lf":
            writer.write(b"HTTP/1.1 200\nContent-Length: 3\n\nabc")
        elif path == "/two-lengths":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc")
        elif path == "/until-close":
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
            await writer.drain()
            return False
        elif path == "/extra":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokSTRAY")
        elif path == "/two-answers":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                b"HTTP/1.1 500 Second\r\nX-Second: 1\r\nContent-Length: 3\r\n\r\nbad"
            )
        elif path == "/big":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000)
        await writer.drain()
        return True


class CountingStream(httpcore.AsyncNetworkStream):
    """A real TCP stream that counts the writes made to it."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, writes: list[int]) -> None:
        self._inner = inner
        self._writes = writes

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._writes.append(len(buffer))
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        inner = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return CountingStream(inner, self._writes)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    found = Server()
    listening = await asyncio.start_server(found.serve, "127.0.0.1", 0)
    found.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield found


@pytest.fixture
def writes() -> list[int]:
    return []


@pytest.fixture(params=[AsyncioBackend, httpcore.AnyIOBackend])
def backend(request: pytest.FixtureRequest) -> httpcore.AsyncNetworkBackend:
    made: httpcore.AsyncNetworkBackend = request.param()
    return made


@pytest.fixture
async def transport(
    writes: list[int], backend: httpcore.AsyncNetworkBackend
) -> AsyncIterator[SafeTransport]:
    async def dial(address: str, port: int, limit: float | None) -> httpcore.AsyncNetworkStream:
        real = await backend.connect_tcp(address, port, timeout=limit)
        return CountingStream(real, writes)

    made = SafeTransport(
        policy=UrlPolicy.of(Settings(allow_insecure_urls=True)),
        total_seconds=0.6,
        max_bytes=1_000_000,
        dialer=dial,
    )
    yield made
    await made.aclose()


def url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


HEADERS = [(b"Content-Type", b"application/json"), (b"webhook-id", b"evt_1")]


async def test_content_length_and_chunked_answers_share_one_keep_alive_connection(
    server: Server, transport: SafeTransport, writes: list[int]
) -> None:
    first = await transport.post(url(server, "/length"), HEADERS, b'{"n":1}')
    second = await transport.post(url(server, "/chunked"), HEADERS, b'{"n":2}')
    third = await transport.post(url(server, "/length"), HEADERS, b'{"n":3}')
    assert (first.status, first.body) == (200, b"hello")
    assert (second.status, second.body) == (202, b"abcdefg")
    assert (third.status, third.body) == (200, b"hello")
    assert server.connections == 1
    assert [body for _, body in server.requests] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    # Each request, head and body, left in one write.
    assert len(writes) == 3
    assert all(size > len(b'{"n":1}') for size in writes)


async def test_the_request_carries_host_length_and_the_given_headers(
    writes: list[int], transport: SafeTransport
) -> None:
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        await reader.readexactly(4)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        answer = await transport.post(f"http://127.0.0.1:{port}/a/b?c=d", HEADERS, b"body")
    assert answer.status == 204
    [head] = heads
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /a/b?c=d HTTP/1.1"
    fields = {
        line.partition(b":")[0].lower(): line.partition(b":")[2].strip()
        for line in lines[1:]
        if line
    }
    assert fields[b"host"] == f"127.0.0.1:{port}".encode()
    assert fields[b"content-length"] == b"4"
    assert fields[b"webhook-id"] == b"evt_1"
    assert fields[b"content-type"] == b"application/json"


async def test_a_connection_the_server_closes_is_replaced(
    server: Server, transport: SafeTransport
) -> None:
    assert (await transport.post(url(server, "/close"), HEADERS, b"1")).body == b"ok"
    assert (await transport.post(url(server, "/length"), HEADERS, b"2")).body == b"hello"
    assert (await transport.post(url(server, "/length"), HEADERS, b"3")).body == b"hello"
    assert server.connections == 2


async def test_an_informational_100_is_skipped(server: Server, transport: SafeTransport) -> None:
    answer = await transport.post(url(server, "/continue"), HEADERS, b"x")
    assert (answer.status, answer.body) == (204, b"")
    assert (await transport.post(url(server, "/length"), HEADERS, b"y")).status == 200
    assert server.connections == 1


async def test_answers_framed_every_lawful_way_are_read_and_reused_only_when_kept_alive(
    server: Server, transport: SafeTransport
) -> None:
    """HTTP/1.0 and a body that ends with the connection are never kept; chunk extensions
    and trailers and bare line feeds are read; stray bytes after an answer, a second
    answer among them, are not read as part of it and make its connection unusable."""
    http10 = await transport.post(url(server, "/http10"), HEADERS, b"1")
    assert (http10.status, http10.body) == (200, b"ok")
    trailers = await transport.post(url(server, "/trailers"), HEADERS, b"2")
    assert (trailers.status, trailers.body) == (200, b"abc")
    bare = await transport.post(url(server, "/bare-lf"), HEADERS, b"4")
    assert (bare.status, bare.body) == (200, b"abc")
    assert server.connections == 2  # the HTTP/1.0 one was closed, the next one kept
    until_close = await transport.post(url(server, "/until-close"), HEADERS, b"5")
    assert (until_close.status, until_close.body) == (200, b"all of it")
    extra = await transport.post(url(server, "/extra"), HEADERS, b"6")
    assert (extra.status, extra.body) == (200, b"ok")
    second = await transport.post(url(server, "/two-answers"), HEADERS, b"6")
    assert (second.status, second.body, second.header(b"x-second")) == (200, b"ok", None)
    assert (await transport.post(url(server, "/length"), HEADERS, b"7")).body == b"hello"
    assert server.connections == 5
    with pytest.raises(httpx.RemoteProtocolError, match="Content-Length"):
        await transport.post(url(server, "/two-lengths"), HEADERS, b"8")


async def test_a_folded_or_control_character_header_fails_the_attempt_and_its_connection(
    server: Server, transport: SafeTransport
) -> None:
    """A header line folded onto the next (obs-fold) or a control character in a header
    value is refused (llhttp admits folding only with control characters): a protocol
    error, and the connection it came on is not reused."""
    for n, path in enumerate(("/folded", "/nul-header")):
        assert (await transport.post(url(server, "/length"), HEADERS, b"1")).body == b"hello"
        assert server.connections == n + 1
        with pytest.raises(httpx.RemoteProtocolError):
            await transport.post(url(server, path), HEADERS, b"2")
    assert (await transport.post(url(server, "/length"), HEADERS, b"3")).body == b"hello"
    assert server.connections == 3


async def test_an_answer_s_head_or_trailers_past_the_limit_are_not_read_on(
    server: Server, transport: SafeTransport
) -> None:
    """A head that never ends fails the attempt; trailers that never end leave the status
    and the body, and the connection is not reused: at most ``MAX_OVERHEAD`` bytes of an
    answer that are not its body are read."""
    with pytest.raises(httpx.RemoteProtocolError, match="too long"):
        await transport.post(url(server, "/endless-head"), HEADERS, b"1")
    loop = asyncio.get_running_loop()
    started = loop.time()
    trailers = await transport.post(url(server, "/endless-trailers"), HEADERS, b"2")
    assert (trailers.status, trailers.body) == (200, b"ok")
    assert loop.time() - started < 0.5  # given up at the limit, not at the total cap (0.6 s)
    assert (await transport.post(url(server, "/length"), HEADERS, b"3")).body == b"hello"
    assert server.connections == 3


async def test_a_header_or_target_that_would_break_the_framing_is_refused_unsent(
    server: Server, transport: SafeTransport
) -> None:
    with pytest.raises(httpx.LocalProtocolError):
        await transport.post(url(server, "/length"), [(b"X-Evil", b"a\r\nX-Injected: 1")], b"")
    with pytest.raises(httpx.LocalProtocolError):
        await transport.post(url(server, "/length"), [(b"Bad Name", b"x")], b"")
    assert server.requests == []


async def test_redirects_and_errors_are_answers_with_their_headers(
    server: Server, transport: SafeTransport
) -> None:
    moved = await transport.post(url(server, "/redirect"), HEADERS, b"x")
    assert moved.status == 302
    assert moved.header(b"location") == "http://127.0.0.1:1/elsewhere"
    busy = await transport.post(url(server, "/busy"), HEADERS, b"x")
    assert (busy.status, busy.body, busy.header(b"retry-after")) == (503, b"busy", "7")
    assert busy.header(b"x-missing") is None
    assert [path for path, _ in server.requests] == ["/redirect", "/busy"]  # not followed


async def test_an_answer_that_is_not_http_is_a_protocol_error(
    server: Server, transport: SafeTransport
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await transport.post(url(server, "/garbage"), HEADERS, b"x")
    with pytest.raises(httpx.RemoteProtocolError):
        await transport.post(url(server, "/hangup"), HEADERS, b"x")
    # The pool is still usable.
    assert (await transport.post(url(server, "/length"), HEADERS, b"x")).status == 200


async def test_a_slow_answer_times_out(server: Server, transport: SafeTransport) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await transport.post(url(server, "/slow"), HEADERS, b"x", timeout=0.2)
    with pytest.raises(httpx.TimeoutException, match="total time limit"):
        await transport.post(url(server, "/slow"), HEADERS, b"x")


async def test_a_body_that_stalls_or_breaks_off_keeps_its_status_and_what_came(
    server: Server, transport: SafeTransport
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    stalled = await transport.post(url(server, "/stall"), HEADERS, b"x")
    assert (stalled.status, stalled.body) == (200, b"first part")
    assert loop.time() - started < 1.5  # the total cap, not the server's 2 s
    truncated = await transport.post(url(server, "/truncated"), HEADERS, b"x")
    assert (truncated.status, truncated.body) == (500, b"short")


async def test_only_the_start_of_a_big_body_is_read(
    server: Server, transport: SafeTransport
) -> None:
    answer = await transport.post(url(server, "/big"), HEADERS, b"x", keep=1000)
    assert answer.status == 200
    assert 1000 <= len(answer.body) < 100_000
    # The rest was not read, so that connection is not reused.
    assert (await transport.post(url(server, "/length"), HEADERS, b"x")).body == b"hello"
    assert server.connections == 2


async def test_a_forbidden_address_is_refused_before_dialing(writes: list[int]) -> None:
    dials: list[str] = []

    async def dial(address: str, port: int, limit: float | None) -> httpcore.AsyncNetworkStream:
        dials.append(address)
        raise AssertionError("must not dial")

    guarded = SafeTransport(
        policy=UrlPolicy.of(Settings(allow_insecure_urls=False)),
        total_seconds=1.0,
        max_bytes=1000,
        dialer=dial,
    )
    with pytest.raises(BlockedRequest, match="loopback"):
        await guarded.post("https://127.0.0.1:9/hook", HEADERS, b"x")
    with pytest.raises(BlockedRequest, match="https"):
        await guarded.post("http://example.com/hook", HEADERS, b"x")
    assert dials == []
    await guarded.aclose()


async def test_a_connection_the_server_hangs_up_while_idle_is_not_reused(
    server: Server, transport: SafeTransport
) -> None:
    assert (await transport.post(url(server, "/idle-close"), HEADERS, b"1")).body == b"ok"
    await asyncio.sleep(0.3)
    assert (await transport.post(url(server, "/length"), HEADERS, b"2")).body == b"hello"
    assert server.connections == 2


async def test_https_on_the_transport_s_own_dialing() -> None:
    """No dialer: the transport dials with asyncio streams and does TLS on them, checking
    the certificate against the URL's host."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    found = Server()
    listening = await asyncio.start_server(found.serve, "127.0.0.1", 0, ssl=server_context)
    found.port = listening.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    safe = SafeTransport(
        policy=UrlPolicy.of(Settings(allow_insecure_urls=True)),
        total_seconds=2.0,
        max_bytes=1000,
        verify=trusting,
    )
    distrusting = SafeTransport(
        policy=UrlPolicy.of(Settings(allow_insecure_urls=True)), total_seconds=2.0, max_bytes=1000
    )
    async with listening:
        here = f"https://127.0.0.1:{found.port}"
        first = await safe.post(f"{here}/chunked", HEADERS, b"1")
        second = await safe.post(f"{here}/length", HEADERS, b"2")
        assert (first.status, first.body) == (202, b"abcdefg")
        assert (second.status, second.body) == (200, b"hello")
        assert found.connections == 1
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await distrusting.post(f"{here}/length", HEADERS, b"3")
        await safe.aclose()
        await distrusting.aclose()
    assert [body for _, body in found.requests] == [b"1", b"2"]


async def test_a_cancelled_post_frees_its_connection_and_slot(
    server: Server, backend: httpcore.AsyncNetworkBackend
) -> None:
    """A POST cancelled while it waits for its answer (a stopping worker) closes its
    connection and gives its slot back: the pool's only slot serves the next POST."""

    async def dial(address: str, port: int, limit: float | None) -> httpcore.AsyncNetworkStream:
        return await backend.connect_tcp(address, port, timeout=limit)

    single = SafeTransport(
        policy=UrlPolicy.of(Settings(allow_insecure_urls=True)),
        total_seconds=2.0,
        max_bytes=1000,
        dialer=dial,
        max_connections=1,
    )
    waiting = asyncio.create_task(single.post(url(server, "/slow"), HEADERS, b"1"))
    await asyncio.sleep(0.2)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    answer = await single.post(url(server, "/length"), HEADERS, b"2", timeout=0.5)
    assert (answer.status, answer.body) == (200, b"hello")
    assert server.connections == 2  # the cancelled one was not reused
    await single.aclose()
