"""Keep-alive HTTP/1.1 connections pooled per origin, for the SSRF-safe transport.

httpcore's own pool, each time a request starts or ends, walks every queued request and
every connection (asking each idle connection's socket whether it is readable): with 20
to 50 webhook attempts in flight that bookkeeping cost more CPU than the requests. Here a
request takes the most recently used idle connection of its origin, or opens a new one,
and gives it back when its response is closed: the same work whatever is in flight.

Connections are opened through the given network backend (the vetting one), so every new
connection is checked when it is made, and a reused connection is not looked up again.
``post`` (the webhook attempt's path) sends on ``http11.PostConnection``s instead of
httpcore's connections, kept apart from them per origin but within the same bounds.

At most ``max_connections`` are open, idle ones included (an idle connection of another
origin is closed to make room); an idle one is closed after ``keepalive_expiry`` seconds
or when the server closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import typing
from collections.abc import AsyncIterable, AsyncIterator

import anyio
import httpcore

from agentsms.webhooks import http11
from agentsms.webhooks.http11 import PostConnection

_Key = tuple[bytes, bytes, int, bool]
"""An origin as a dictionary key (``httpcore.Origin`` is not hashable), and whether its
connections are ``PostConnection``s (``OriginPool.post``) rather than httpcore's."""
_Pooled = httpcore.AsyncHTTPConnection | PostConnection

SWEEP_SECONDS = 1.0
"""How often, at most, idle connections are checked for expiry (when a request ends)."""


class OriginPool(httpcore.AsyncConnectionPool):
    """A connection pool with constant work per request (see the module's docstring).

    A drop-in for ``httpcore.AsyncConnectionPool`` (HTTP/1.1 only, no proxies), whose
    ``handle_async_request``, ``connections`` and ``aclose`` it replaces.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        network_backend: httpcore.AsyncNetworkBackend,
        max_connections: int,
        keepalive_expiry: float,
    ) -> None:
        super().__init__(
            ssl_context=ssl_context,
            network_backend=network_backend,
            max_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        self._context = ssl_context
        self._backend = network_backend
        self._limit = max_connections
        self._keepalive = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[_Key, list[_Pooled]] = {}
        self._idle_count = 0
        self._active: set[_Pooled] = set()
        self._next_sweep = 0.0
        self._closing: set[_Pooled] = set()
        """In use when the pool was closed: closed when their response is."""
        self.opened = 0
        """Connections opened so far (each one vetted when it was made)."""

    @property
    def connections(self) -> list[httpcore.AsyncConnectionInterface]:
        """The connections open now: those in use, then the idle ones (``post``'s own
        ``PostConnection``s among them, which answer ``is_idle``, ``has_expired``,
        ``is_closed`` and ``aclose`` as httpcore's do)."""
        idle = [connection for stack in self._idle.values() for connection in stack]
        return typing.cast(list[httpcore.AsyncConnectionInterface], [*self._active, *idle])

    def __repr__(self) -> str:
        return f"<OriginPool [{len(self._active)} in use, {self._idle_count} idle]>"

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send ``request`` on an idle connection of its origin or a new one; the
        connection goes back to the pool when the response is closed."""
        scheme = request.url.scheme
        if scheme not in (b"http", b"https"):
            raise httpcore.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme.decode()}://'."
            )
        await self._acquire(request.extensions.get("timeout", {}).get("pool"))
        try:
            connection, response = await self._send(request)
        except BaseException:
            self._slots.release()
            raise
        stream = typing.cast(AsyncIterable[bytes], response.stream)  # HTTP/1.1: async
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_GivenBack(stream, self, _key(request.url.origin), connection),
            extensions=response.extensions,
        )

    async def _acquire(self, seconds: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            return
        try:
            async with asyncio.timeout(seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise httpcore.PoolTimeout("no connection became free in time") from None

    async def _send(
        self, request: httpcore.Request
    ) -> tuple[httpcore.AsyncHTTPConnection, httpcore.Response]:
        origin = request.url.origin
        key = _key(origin)
        while True:
            reused = await self._reuse(key)
            assert reused is None or isinstance(reused, httpcore.AsyncHTTPConnection)
            connection = reused
            fresh = connection is None
            if connection is None:
                await self._make_room()
                connection = httpcore.AsyncHTTPConnection(
                    origin=origin,
                    ssl_context=self._context,
                    keepalive_expiry=self._keepalive,
                    network_backend=self._backend,
                )
                self.opened += 1
            self._active.add(connection)
            try:
                return connection, await connection.handle_async_request(request)
            except httpcore.ConnectionNotAvailable:
                self._active.discard(connection)
                if fresh:
                    raise
                await _close(connection)  # the server closed it meanwhile: take another
            except BaseException:
                self._active.discard(connection)
                await _close(connection)
                raise

    async def post(
        self,
        origin: httpcore.Origin,
        request: bytes,
        timeout: float | None,  # noqa: ASYNC109 (per operation, like httpcore's)
    ) -> PostAnswer:
        """Send ``request`` (head and body, see ``http11.request_head``) on an idle
        ``PostConnection`` of ``origin`` or a new one, and read the answer's head. The
        answer's ``read`` reads the body's start; its ``aclose`` gives the connection back.
        ``timeout`` bounds each operation, waiting for a free connection included."""
        await self._acquire(timeout)
        key = _key(origin, lean=True)
        try:
            reused = await self._reuse(key)
            if reused is None:
                await self._make_room()
                stream = await http11.connect(self._backend, self._context, origin, timeout)
                self.opened += 1
                connection = PostConnection(stream, self._keepalive)
            else:
                assert isinstance(reused, PostConnection)
                connection = reused
            self._active.add(connection)
            try:
                status, headers = await connection.send(request, timeout)
            except BaseException:
                self._active.discard(connection)  # closed by ``send``
                raise
        except BaseException:
            self._slots.release()
            raise
        return PostAnswer(self, key, connection, status, headers)

    async def _reuse(self, key: _Key) -> _Pooled | None:
        """The most recently used idle connection of ``key`` that is still good."""
        stack = self._idle.get(key)
        while stack:
            connection = stack.pop()
            self._idle_count -= 1
            if not stack:
                del self._idle[key]
            if connection.is_idle() and not connection.has_expired():
                return connection
            await _close(connection)
        return None

    async def _make_room(self) -> None:
        """Close the oldest idle connection (of any origin) when opening one more would
        go over ``max_connections``."""
        while self._idle and len(self._active) + self._idle_count >= self._limit:
            key = next(iter(self._idle))
            stack = self._idle[key]
            oldest = stack.pop(0)
            self._idle_count -= 1
            if not stack:
                del self._idle[key]
            await _close(oldest)

    async def _give_back(self, key: _Key, connection: _Pooled) -> None:
        """A response is closed: its connection is idle again (or closed) and its slot free."""
        self._active.discard(connection)
        self._slots.release()
        if connection.is_idle() and connection not in self._closing:
            stack = self._idle.pop(key, [])
            stack.append(connection)
            self._idle[key] = stack  # most recently used origin last (oldest first)
            self._idle_count += 1
        else:
            self._closing.discard(connection)
            if not connection.is_closed():
                await _close(connection)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            await self._sweep()

    async def _sweep(self) -> None:
        """Close the idle connections whose keep-alive ran out or whose server hung up."""
        for key, stack in list(self._idle.items()):
            keep = [c for c in stack if c.is_idle() and not c.has_expired()]
            if len(keep) == len(stack):
                continue
            gone = [c for c in stack if c not in keep]
            self._idle_count -= len(gone)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
            for connection in gone:
                await _close(connection)

    async def aclose(self) -> None:
        """Close the idle connections now; those in use close when their response does."""
        self._closing.update(self._active)
        idle = [connection for stack in self._idle.values() for connection in stack]
        self._idle.clear()
        self._idle_count = 0
        for connection in idle:
            await _close(connection)


class _GivenBack(AsyncIterable[bytes]):
    """A response body that gives its connection back to the pool once closed."""

    def __init__(
        self,
        stream: AsyncIterable[bytes],
        pool: OriginPool,
        key: _Key,
        connection: httpcore.AsyncHTTPConnection,
    ) -> None:
        self._stream = stream
        self._pool = pool
        self._key = key
        self._connection = connection
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                close = getattr(self._stream, "aclose", None)
                if close is not None:
                    await close()
            finally:
                await self._pool._give_back(self._key, self._connection)


class PostAnswer:
    """The answer to ``OriginPool.post``: status and headers, then the body's start."""

    def __init__(
        self,
        pool: OriginPool,
        key: _Key,
        connection: PostConnection,
        status: int,
        headers: http11.Headers,
    ) -> None:
        self.status = status
        self.headers = headers
        self.received = b""
        """The body read so far."""
        self._pool = pool
        self._key = key
        self._connection = connection
        self._closed = False

    async def read(self, keep: int, timeout: float | None) -> None:  # noqa: ASYNC109
        """Read the body into ``received`` until ``keep`` bytes or so, or its end; a failure
        is raised (what came before it stays in ``received``)."""
        connection = self._connection
        try:
            while not connection.finished and len(self.received) < keep:
                self.received += await connection.body_part(timeout)
        except BaseException:
            connection.broken()
            raise

    async def aclose(self) -> None:
        """The connection goes back to the pool: idle when the answer was read to its end
        and may be kept alive, else closed."""
        if self._closed:
            return
        self._closed = True
        self._connection.finish()
        await self._pool._give_back(self._key, self._connection)


def _key(origin: httpcore.Origin, lean: bool = False) -> _Key:
    return (origin.scheme, origin.host, origin.port, lean)


async def _close(connection: _Pooled) -> None:
    # A socket that fails to close is gone anyway.
    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
        await connection.aclose()
