"""The SSRF-safe HTTP client for every URL a customer gives us (webhooks, agents, media).

A customer-supplied URL must never make agentsms talk to itself, the machine's private
network or a cloud metadata service. ``check_url`` refuses, when a URL is stored, any URL
whose scheme is wrong or whose host is a literal address that can never be allowed (in any
of the spellings a resolver accepts: ``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
``[::ffff:127.0.0.1]`` ...). ``safe_client`` re-checks at request time: it resolves the
host itself, requires every resolved address to be globally routable (after unwrapping
IPv4-mapped, 6to4 and NAT64 forms), then connects to the address it checked, so a DNS
answer cannot change between the check and the connection. Every redirect is a new request
through the same checks. Response size and total time are capped.

``Settings.trusted_private_hosts`` (``AGENTSMS_TRUSTED_PRIVATE_HOSTS``) is the operator's
allow-list of private servers (an LLM server on the LAN): a host listed by name, an address
listed or inside a listed network, may be private and may use http. Only the operator sets
it; no tenant setting widens the guard. ``Settings.allow_insecure_urls``
(``AGENTSMS_ALLOW_INSECURE_URLS=1``) turns all of this off (http and private targets
allowed) for local development and tests.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import httpcore
import httpx
import structlog

from agentsms.config import Settings, trusted_host_entries
from agentsms.errors import ValidationFailed, invalid
from agentsms.webhooks import http11
from agentsms.webhooks.pool import OriginPool
from agentsms.webhooks.streams import AsyncioBackend

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
MAX_CONNECTIONS = 20
"""Connections a guarded client's pool holds open at most, all hosts together."""
KEEPALIVE_SECONDS = 30.0
"""How long an idle pooled connection is kept for the next request to the same host."""
_HTTPCORE_ERRORS = (
    httpcore.NetworkError,
    httpcore.TimeoutException,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)
"""Every exception httpcore raises to its caller (they share no base class)."""
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


class UnsafeURL(Exception):
    """A URL or address agentsms refuses to connect to; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """What the guard allows: everything (``allow_insecure``), or public addresses plus the
    operator's trusted private hosts (names, and addresses or networks)."""

    allow_insecure: bool = False
    trusted_names: frozenset[str] = frozenset()
    trusted_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> UrlPolicy:
        """The policy of a deployment's settings."""
        return _policy(settings.allow_insecure_urls, settings.trusted_private_hosts)

    def trusts_name(self, host: str) -> bool:
        """Whether the operator listed ``host`` by name (or its literal address)."""
        name = host.lower().strip("[]").rstrip(".")
        if name in self.trusted_names:
            return True
        try:
            address = literal_address(name)
        except UnsafeURL:
            return False
        return address is not None and self.trusts_address(address)

    def trusts_address(self, address: IPAddress) -> bool:
        """Whether ``address`` (or the IPv4 address it carries) is in a trusted network."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.trusted_networks
        )


@functools.cache
def _policy(allow_insecure: bool, trusted: str) -> UrlPolicy:
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in trusted_host_entries(trusted):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry)
    return UrlPolicy(allow_insecure, frozenset(names), tuple(networks))


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be contacted, or ``None`` when it is globally routable.

    IPv6 forms that carry an IPv4 address (IPv4-mapped, 6to4, NAT64) are judged by the
    IPv4 address they carry.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _embedded(address, address.ipv4_mapped)
        if address in _NAT64:
            return _embedded(address, ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return _embedded(address, address.sixtofour)
        if address in _IPV4_COMPATIBLE and not (address.is_loopback or address.is_unspecified):
            return f"{address} is a deprecated IPv4-compatible address"
        if address.teredo is not None:
            return f"{address} is a Teredo tunnel address"
        if address.is_site_local:
            return f"{address} is a site-local address"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return f"{address} is a shared (CGNAT) address"
    if address.is_private:
        return f"{address} is a private address"
    if address.is_reserved:
        return f"{address} is a reserved address"
    if not address.is_global:
        return f"{address} is not globally routable"
    return None


def _embedded(outer: ipaddress.IPv6Address, inner: ipaddress.IPv4Address) -> str | None:
    reason = blocked_reason(inner)
    return None if reason is None else f"{outer} carries {inner}: {reason}"


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Parse ``host`` the way resolvers (inet_aton) and browsers read numeric hosts.

    Accepts 1 to 4 dot-separated parts in decimal, octal (leading 0) or hex (0x), the
    last part filling the remaining bytes: ``127.1``, ``2130706433``, ``0x7f.0.0.1``.
    Returns ``None`` for a host that is not numeric. Raises ``UnsafeURL`` for a numeric
    host that is out of range (no resolver would treat it as a name either).
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if not labels or not all(_NUMERIC_LABEL.match(label) for label in labels):
        return None
    if len(labels) > 4:
        raise UnsafeURL(f"{host} is not a valid IPv4 address")
    numbers: list[int] = []
    for label in labels:
        if label[:2].lower() == "0x":
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            try:
                numbers.append(int(label, 8))
            except ValueError:
                raise UnsafeURL(f"{host} is not a valid IPv4 address") from None
        else:
            numbers.append(int(label))
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise UnsafeURL(f"{host} is not a valid IPv4 address")
    value = last
    for index, n in enumerate(leading):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally (IPv6 or any IPv4 spelling), else ``None``."""
    bare = host.strip("[]")
    if ":" in bare:
        try:
            return ipaddress.IPv6Address(bare.split("%", 1)[0])
        except ValueError:
            raise UnsafeURL(f"{host} is not a valid IPv6 address") from None
    return parse_ipv4_literal(bare)


def vet_url(url: str | httpx.URL, policy: UrlPolicy) -> httpx.URL:
    """Parse ``url`` and refuse what can never be fetched; returns the parsed URL.

    Checks the scheme, the presence of a host, and a literal address host. A host name
    is only resolved (and its addresses checked) when the client connects. A host the
    operator trusts may be private and may use http.
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise UnsafeURL(f"is not a valid URL ({error})") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURL(
            "must be an http or https URL" if policy.allow_insecure else "must be an https URL"
        )
    host = parsed.host
    if not host:
        raise UnsafeURL("must have a host")
    if policy.allow_insecure or policy.trusts_name(host):
        return parsed
    if parsed.scheme != "https":
        raise UnsafeURL("must be an https URL")
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        raise UnsafeURL(f"{host} always names this machine")
    address = literal_address(host)
    if address is not None:
        reason = blocked_reason(address)
        if reason is not None:
            raise UnsafeURL(reason)
    return parsed


def warn_if_insecure(settings: Settings) -> None:
    """Log a loud warning at startup when outbound URL checks are off."""
    if settings.allow_insecure_urls:
        structlog.get_logger("agentsms.webhooks").warning(
            "insecure_urls_allowed",
            detail="AGENTSMS_ALLOW_INSECURE_URLS is on: webhook, agent and media URLs may "
            "use http and reach loopback and private addresses. Use only for local "
            "development and tests.",
        )


def url_problem(url: str, settings: Settings) -> str | None:
    """Why ``url`` can never be fetched (as ``check_url`` would refuse it), or ``None``.

    For callers that collect every field error before answering (e.g. a batch's
    ``recipients[3].media_urls[0]``).
    """
    try:
        vet_url(url, UrlPolicy.of(settings))
    except UnsafeURL as unsafe:
        return unsafe.reason
    return None


def check_url(url: str, field: str, settings: Settings) -> None:
    """Refuse (``ValidationFailed``, 422 naming ``field``) a URL that can never be allowed.

    With ``AGENTSMS_ALLOW_INSECURE_URLS=1`` only the scheme (http or https) is checked.
    """
    try:
        vet_url(url, UrlPolicy.of(settings))
    except UnsafeURL as unsafe:
        raise _invalid(field, unsafe.reason) from None


def _invalid(field: str, reason: str) -> ValidationFailed:
    return invalid(field, reason, code="unsafe_url")


Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves (host, port) to IP address strings; the system resolver unless injected."""

Dialer = Callable[[str, int, "float | None"], Awaitable[httpcore.AsyncNetworkStream]]
"""Opens a TCP connection to a vetted (address, port) with a connect timeout."""


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Every address the system resolver gives for ``host`` (A and AAAA), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


class VettingBackend(httpcore.AsyncNetworkBackend):
    """Resolves a host, refuses it unless every address is allowed, then dials one of them.

    httpcore asks this backend for every new connection (redirect hops included) and does
    TLS on top with the original host name as SNI, so certificates are still checked
    against the name while the socket goes to the address that was vetted.
    """

    def __init__(self, *, policy: UrlPolicy, resolver: Resolver, dialer: Dialer | None) -> None:
        self._policy = policy
        self._resolver = resolver
        self._dialer = dialer
        self._default = AsyncioBackend()
        self._lookups: dict[tuple[str, int], asyncio.Future[Sequence[str]]] = {}

    async def addresses(self, host: str, port: int) -> list[str]:
        """The vetted addresses to dial for ``host``; raises ``UnsafeURL``."""
        policy = self._policy
        anything = policy.allow_insecure or host.lower().rstrip(".") in policy.trusted_names
        try:
            literal = literal_address(host)
        except UnsafeURL:
            if not policy.allow_insecure:
                raise
            literal = None  # not an address after all: the resolver has the last word
        if literal is not None:
            candidates: Sequence[str] = [str(literal)]
        else:
            try:
                candidates = await self._resolve(host.strip("[]"), port)
            except OSError as error:
                raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        if not candidates:
            raise httpcore.ConnectError(f"{host} has no address")
        vetted: list[str] = []
        for candidate in candidates:
            address = ipaddress.ip_address(candidate.split("%", 1)[0])
            if not anything and not policy.trusts_address(address):
                reason = blocked_reason(address)
                if reason is not None:
                    raise UnsafeURL(f"{host} resolves to {reason}")
            vetted.append(str(address))
        return vetted

    async def _resolve(self, host: str, port: int) -> Sequence[str]:
        """``host``'s addresses, one lookup at a time per (host, port): connections opened
        together to one host share its lookup, so a host whose name server is slow takes
        one of the resolver's threads (the loop's default executor), not all of them."""
        key = (host, port)
        pending = self._lookups.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._resolver(host, port))
            self._lookups[key] = pending
            pending.add_done_callback(functools.partial(self._forget, key))
        # A caller that gives up (its timeout) leaves the lookup to the others.
        return await asyncio.shield(pending)

    def _forget(self, key: tuple[str, int], lookup: asyncio.Future[Sequence[str]]) -> None:
        if self._lookups.get(key) is lookup:
            del self._lookups[key]
        if not lookup.cancelled():
            lookup.exception()  # seen here, so a lookup every caller gave up on warns nobody

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.addresses(host, port):
            try:
                if self._dialer is not None:
                    return OneWrite(await self._dialer(address, port, timeout))
                return OneWrite(
                    await self._default.connect_tcp(
                        address, port, timeout=timeout, socket_options=socket_options
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("unix sockets are never allowed")

    async def sleep(self, seconds: float) -> None:
        await self._default.sleep(seconds)


class OneWrite(httpcore.AsyncNetworkStream):
    """A network stream whose writes wait for the next read (or ``HELD_BYTES``): a
    request's head and body go out in one write, one system call and one TCP segment (or
    TLS record) instead of two. Every HTTP exchange reads after it writes."""

    HELD_BYTES = 65536

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._held: list[bytes] = []
        self._size = 0
        self._timeout: float | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        self._held.append(buffer)
        self._size += len(buffer)
        self._timeout = timeout
        if self._size >= self.HELD_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._held:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held.clear()
            self._size = 0
            await self._inner.write(data, timeout=self._timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        await self._flush()
        return await self._inner.read(max_bytes, timeout=timeout)

    async def aclose(self) -> None:
        self._held.clear()
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
    ) -> httpcore.AsyncNetworkStream:
        await self._flush()
        return OneWrite(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class BlockedAddress(ConnectionRefusedError):
    """A raw TCP connection (an SMPP session) refused by the SSRF checks."""


def tcp_address_vetter(
    settings: Settings, resolver: Resolver | None = None
) -> Callable[[str, int], Awaitable[list[str]]]:
    """For raw TCP connections to a tenant's host (an SMSC): the vetted addresses to dial,
    as for HTTP; ``BlockedAddress`` (an ``OSError``) for a host that may not be reached."""
    backend = VettingBackend(
        policy=UrlPolicy.of(settings), resolver=resolver or system_resolver, dialer=None
    )

    async def vet(host: str, port: int) -> list[str]:
        try:
            return await backend.addresses(host, port)
        except UnsafeURL as unsafe:
            raise BlockedAddress(unsafe.reason) from None
        except httpcore.ConnectError as error:
            raise OSError(str(error)) from None

    return vet


class BlockedRequest(httpx.ConnectError):
    """A request refused by the SSRF checks (bad scheme, or a host with a forbidden address)."""

    retryable = False  # the same URL will be refused again


class ResponseTooLarge(httpx.HTTPError):
    """The response body went over the configured cap."""

    retryable = False

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body is larger than {limit} bytes")


class _CappedStream(httpx.AsyncByteStream):
    def __init__(
        self, inner: httpx.AsyncByteStream, *, limit: int, deadline: float, request: httpx.Request
    ) -> None:
        self._inner = inner
        self._limit = limit
        self._deadline = deadline
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        iterator = self._inner.__aiter__()
        while True:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise httpx.ReadTimeout("total time limit reached", request=self._request)
            try:
                async with asyncio.timeout(remaining):
                    chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise httpx.ReadTimeout("total time limit reached", request=self._request) from None
            total += len(chunk)
            if total > self._limit:
                raise ResponseTooLarge(self._limit)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _loop_time(deadline: float) -> float:
    """``time.monotonic()`` deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())


@functools.cache
def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One shared TLS client context per ``verify``: building one loads the CA bundle
    (about 0.1 s of CPU), and a context serves any number of connections."""
    return httpx.create_ssl_context(verify=verify, trust_env=False)


class SafeTransport(httpx.AsyncHTTPTransport):
    """An httpx transport that only reaches vetted addresses and caps size and time.

    ``total_seconds`` bounds one request from connecting to the last body byte;
    ``max_bytes`` bounds the response body. Connections are pooled and kept alive (at most
    ``max_connections``, each idle for at most ``keepalive_seconds``); every new
    connection is vetted when it is made.
    """

    def __init__(
        self,
        *,
        policy: UrlPolicy,
        total_seconds: float,
        max_bytes: int,
        resolver: Resolver | None = None,
        dialer: Dialer | None = None,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = MAX_CONNECTIONS,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else _ssl_context(verify)
        super().__init__(verify=context, trust_env=False)
        self._policy = policy
        self._total = total_seconds
        self._max_bytes = max_bytes
        self.backend = VettingBackend(
            policy=policy, resolver=resolver or system_resolver, dialer=dialer
        )
        # Keep-alive connections per origin, dialed through the vetting backend (no
        # proxies: a proxy would connect to hosts we never checked).
        self._origins = OriginPool(
            ssl_context=context,
            network_backend=self.backend,
            max_connections=max_connections,
            keepalive_expiry=keepalive_seconds,
        )
        self._pool = self._origins

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self._total
        try:
            vet_url(request.url, self._policy)
            async with asyncio.timeout(self._total):
                response = await super().handle_async_request(request)
        except UnsafeURL as unsafe:
            raise BlockedRequest(unsafe.reason, request=request) from None
        except TimeoutError:
            raise httpx.ConnectTimeout("total time limit reached", request=request) from None
        stream = typing.cast(httpx.AsyncByteStream, response.stream)
        response.stream = _CappedStream(
            stream, limit=self._max_bytes, deadline=deadline, request=request
        )
        return response

    async def post(
        self,
        url: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (per operation, like httpx's)
        keep: int = 4096,
    ) -> Answer:
        """POST ``body`` to ``url`` through the same vetting and pool as
        ``handle_async_request``, without an httpx client around it (no cookies, redirects
        or auth: a webhook needs none), and read the start of the answer's body.

        ``timeout`` bounds each operation (connect, write, read; default: the total); the
        whole request is capped at the transport's total time, as every request is. The
        body is read until ``keep`` bytes or its end, then the response is closed (its
        connection goes back to the pool when it was read to the end). Raises what an
        httpx client would: ``BlockedRequest``, ``httpx.TimeoutException``,
        ``httpx.TransportError``.
        """
        deadline = time.monotonic() + self._total
        each = self._total if timeout is None else timeout
        try:
            target = _target(url, self._policy)
        except UnsafeURL as unsafe:
            raise BlockedRequest(unsafe.reason) from None
        head = [(b"Host", target.host), (b"Content-Length", str(len(body)).encode()), *headers]
        try:
            request = http11.request_head(target.path, head) + body
            async with asyncio.timeout(self._total):
                answer = await self._origins.post(target.origin, request, each)
        except UnsafeURL as unsafe:
            raise BlockedRequest(unsafe.reason) from None
        except TimeoutError:
            raise httpx.ConnectTimeout("total time limit reached") from None
        except _HTTPCORE_ERRORS as error:
            raise _as_httpx(error) from error
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                await answer.read(keep, each)
        except (*_HTTPCORE_ERRORS, TimeoutError):
            pass  # the status decides; a body that stalls or breaks off is only not all read
        finally:
            await answer.aclose()
        return Answer(answer.status, answer.headers, answer.received)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response to ``SafeTransport.post``: the status, the headers, the start of the body."""

    status: int
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    """The body's first bytes: at least ``keep`` of a body that long, less when reading it
    failed or ran out of time (the status stands)."""

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None


@dataclass(frozen=True, slots=True)
class _Target:
    origin: httpcore.Origin
    path: bytes
    """The request target: path and query."""
    host: bytes
    """The ``Host`` header."""


@functools.lru_cache(maxsize=4096)
def _target(url: str, policy: UrlPolicy) -> _Target:
    """``url`` vetted (``vet_url``: the URL alone, no lookup) and parsed, kept: a webhook
    endpoint's URL is posted to again and again."""
    parsed = vet_url(url, policy)
    address = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return _Target(address.origin, address.target, parsed.netloc)


def _as_httpx(error: Exception) -> httpx.TransportError:
    """httpcore's exception as httpx's of the same name (what ``httpx`` clients raise)."""
    kind = getattr(httpx, type(error).__name__, None)
    if not (isinstance(kind, type) and issubclass(kind, httpx.TransportError)):
        kind = httpx.TransportError
    return kind(str(error))


def guarded_transport(
    settings: Settings,
    *,
    total_seconds: float,
    max_bytes: int | None = None,
    resolver: Resolver | None = None,
    dialer: Dialer | None = None,
    verify: ssl.SSLContext | bool = True,
    max_connections: int = MAX_CONNECTIONS,
) -> SafeTransport:
    """The SSRF-safe transport under the deployment's policy, for any client that reaches a
    tenant's URL (``safe_client``, the LLM agent's OpenAI client).

    ``max_bytes`` defaults to ``Settings.outbound_max_response_bytes``.
    """
    return SafeTransport(
        policy=UrlPolicy.of(settings),
        total_seconds=total_seconds,
        max_bytes=settings.outbound_max_response_bytes if max_bytes is None else max_bytes,
        resolver=resolver,
        dialer=dialer,
        verify=verify,
        max_connections=max_connections,
    )


def safe_client(
    settings: Settings,
    *,
    follow_redirects: bool = True,
    max_redirects: int = 3,
    timeout: float | None = None,
    max_bytes: int | None = None,
    resolver: Resolver | None = None,
    dialer: Dialer | None = None,
    verify: ssl.SSLContext | bool = True,
    max_connections: int = MAX_CONNECTIONS,
) -> httpx.AsyncClient:
    """The SSRF-safe client: every request and redirect hop is vetted; size and time capped.

    ``timeout`` (default ``Settings.webhook_timeout_seconds``) is both the per-operation
    timeout and the cap on one whole request; ``max_bytes`` defaults to
    ``Settings.outbound_max_response_bytes``. ``resolver``, ``dialer`` and ``verify`` exist
    for tests (a fake DNS answer, a local listener standing for a public address, a test CA).
    """
    seconds = settings.webhook_timeout_seconds if timeout is None else timeout
    transport = guarded_transport(
        settings,
        total_seconds=seconds,
        max_bytes=max_bytes,
        resolver=resolver,
        dialer=dialer,
        verify=verify,
        max_connections=max_connections,
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(seconds),
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )
