"""The guarded client's connection pool: a reused connection is not looked up or vetted
again, every new connection is, and the pool keeps its bounds.

A keep-alive HTTPS server on loopback stands for a public site: names ending in ``.test``
resolve (through an injected resolver that counts lookups) to what each test says, and the
made-up public address ``PUBLIC`` is dialed to that server. Every other address would be
dialed for real; the dialer records what it was asked to dial.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import httpcore
import httpx
import pytest
import trustme

from agentsms.config import Settings
from agentsms.webhooks import BlockedRequest
from agentsms.webhooks.pool import OriginPool
from agentsms.webhooks.ssrf import SafeTransport, UrlPolicy
from tests.raw_http import read_request

PUBLIC = "93.184.216.34"  # a globally routable address, dialed to the local server


@dataclass
class Site:
    """A keep-alive HTTPS server: ``/close`` answers with ``Connection: close``,
    ``/slow`` after 0.3 s; it counts connections (all, and open now)."""

    port: int = 0
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[str] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                path, _ = await read_request(reader)
                self.requests.append(path)
                if path == "/slow":
                    await asyncio.sleep(0.3)
                if path == "/close":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                    await writer.drain()
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@dataclass
class Network:
    """The injected DNS (answers per name, lookups counted) and dialer (dials recorded)."""

    site: Site
    answers: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    dials: list[str] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        return self.answers[host]

    async def dial(
        self, address: str, port: int, limit: float | None
    ) -> httpcore.AsyncNetworkStream:
        self.dials.append(address)
        target = ("127.0.0.1", self.site.port) if address == PUBLIC else (address, port)
        return await httpcore.AnyIOBackend().connect_tcp(*target, timeout=limit)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def site(ca: trustme.CA) -> AsyncIterator[Site]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("a.test", "b.test", "rebind.test").configure_cert(context)
    found = Site()
    server = await asyncio.start_server(found.serve, "127.0.0.1", 0, ssl=context)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found
        server.close()


@pytest.fixture
def network(site: Site) -> Network:
    return Network(site, {"a.test": [PUBLIC], "b.test": [PUBLIC], "rebind.test": [PUBLIC]})


def transport(
    ca: trustme.CA, network: Network, *, max_connections: int = 20, keepalive: float = 30.0
) -> SafeTransport:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return SafeTransport(
        policy=UrlPolicy.of(Settings(allow_insecure_urls=False)),
        total_seconds=5.0,
        max_bytes=10_000,
        resolver=network.resolve,
        dialer=network.dial,
        verify=context,
        max_connections=max_connections,
        keepalive_seconds=keepalive,
    )


def pool_of(client: httpx.AsyncClient) -> OriginPool:
    safe = client._transport
    assert isinstance(safe, SafeTransport)
    assert isinstance(safe._pool, OriginPool)
    return safe._pool


async def test_a_reused_connection_is_not_looked_up_or_dialed_again(
    ca: trustme.CA, network: Network, site: Site
) -> None:
    async with httpx.AsyncClient(transport=transport(ca, network)) as client:
        for n in range(5):
            response = await client.post("https://a.test/hook", content=f"event {n}")
            assert response.status_code == 200
        assert pool_of(client).opened == 1
    assert network.lookups == ["a.test"]
    assert network.dials == [PUBLIC]
    assert site.connections == 1
    assert len(site.requests) == 5


async def test_a_new_connection_after_the_name_moved_to_a_private_address_is_refused(
    ca: trustme.CA, network: Network, site: Site
) -> None:
    """DNS rebinding: the name first answers a public address, then loopback. The pooled
    connection still goes to the address that was vetted; a new one is refused before it
    is dialed."""
    async with httpx.AsyncClient(transport=transport(ca, network)) as client:
        assert (await client.post("https://rebind.test/hook", content="1")).status_code == 200
        network.answers["rebind.test"] = ["127.0.0.1"]
        # The idle connection is reused: no lookup, and it still reaches the vetted address.
        assert (await client.post("https://rebind.test/hook", content="2")).status_code == 200
        assert network.lookups == ["rebind.test"]
        # Two at once: one takes the pooled connection, the other needs a new one.
        outcomes = await asyncio.gather(
            client.post("https://rebind.test/slow", content="3"),
            client.post("https://rebind.test/slow", content="4"),
            return_exceptions=True,
        )
        answered = [o for o in outcomes if isinstance(o, httpx.Response)]
        refused = [o for o in outcomes if isinstance(o, BlockedRequest)]
        assert [a.status_code for a in answered] == [200]
        assert len(refused) == 1
        assert "127.0.0.1 is a loopback address" in str(refused[0])
        # The server hangs up: the next request needs a new connection, refused too.
        assert (await client.post("https://rebind.test/close", content="5")).status_code == 200
        with pytest.raises(BlockedRequest):
            await client.post("https://rebind.test/hook", content="6")
    assert network.lookups == ["rebind.test"] * 3
    assert network.dials == [PUBLIC]  # loopback was never dialed
    assert site.requests == ["/hook", "/hook", "/slow", "/close"]
    assert site.connections == 1


async def test_a_connection_the_server_closed_is_replaced_by_a_vetted_one(
    ca: trustme.CA, network: Network, site: Site
) -> None:
    async with httpx.AsyncClient(transport=transport(ca, network)) as client:
        assert (await client.post("https://a.test/close", content="1")).status_code == 200
        assert (await client.post("https://a.test/hook", content="2")).status_code == 200
        assert (await client.post("https://a.test/hook", content="3")).status_code == 200
        assert pool_of(client).opened == 2
    assert network.lookups == ["a.test", "a.test"]
    assert site.connections == 2


async def test_idle_connections_expire_after_the_keepalive(
    ca: trustme.CA, network: Network, site: Site
) -> None:
    async with httpx.AsyncClient(transport=transport(ca, network, keepalive=0.2)) as client:
        assert (await client.post("https://a.test/hook", content="1")).status_code == 200
        await asyncio.sleep(0.4)
        assert (await client.post("https://a.test/hook", content="2")).status_code == 200
        assert pool_of(client).opened == 2
    assert network.lookups == ["a.test", "a.test"]


async def test_the_pool_stays_within_its_connections_closing_idle_ones_of_other_origins(
    ca: trustme.CA, network: Network, site: Site
) -> None:
    async with httpx.AsyncClient(transport=transport(ca, network, max_connections=2)) as client:
        answers = await asyncio.gather(
            *(client.post("https://a.test/slow", content=str(n)) for n in range(4))
        )
        assert [a.status_code for a in answers] == [200] * 4
        assert pool_of(client).opened == 2  # four requests, two connections
        # Two idle connections to a.test; one is closed to open one to b.test.
        assert (await client.post("https://b.test/hook", content="b")).status_code == 200
        assert len(pool_of(client).connections) == 2
        await asyncio.sleep(0.1)
        assert site.open_now == 2
    assert site.most_open == 2


async def test_a_request_waits_for_a_free_connection_only_as_long_as_the_pool_timeout(
    ca: trustme.CA, network: Network, site: Site
) -> None:
    async with httpx.AsyncClient(transport=transport(ca, network, max_connections=1)) as client:
        async with client.stream("POST", "https://a.test/hook", content="held") as held:
            with pytest.raises(httpx.PoolTimeout):
                await client.post(
                    "https://a.test/hook",
                    content="waits",
                    timeout=httpx.Timeout(5.0, pool=0.2),
                )
            assert held.status_code == 200
            await held.aread()  # read to the end: the connection can be used again
        # The held connection is free again, and reused.
        assert (await client.post("https://a.test/hook", content="then")).status_code == 200
        assert pool_of(client).opened == 1


async def test_closing_the_pool_closes_idle_connections_now_and_busy_ones_when_done(
    ca: trustme.CA, network: Network, site: Site
) -> None:
    safe = transport(ca, network)
    client = httpx.AsyncClient(transport=safe)
    assert (await client.post("https://a.test/hook", content="idle")).status_code == 200
    async with client.stream("POST", "https://b.test/hook", content="busy") as busy:
        await safe.aclose()
        await asyncio.sleep(0.1)
        assert site.open_now == 1  # the idle one is closed, the busy one not yet
        await busy.aread()
    await asyncio.sleep(0.1)
    assert site.open_now == 0
    assert pool_of(client).connections == []


async def test_posting_straight_to_the_pool_vets_every_new_connection_too(
    ca: trustme.CA, network: Network, site: Site
) -> None:
    """``SafeTransport.post`` (the webhook attempt's path) against DNS rebinding: the pooled
    connection keeps the vetted address; a new one to the name now private is refused."""
    safe = transport(ca, network)
    assert (await safe.post("https://rebind.test/hook", [], b"1")).status == 200
    network.answers["rebind.test"] = ["127.0.0.1"]
    assert (await safe.post("https://rebind.test/close", [], b"2")).status == 200
    with pytest.raises(BlockedRequest, match=r"127\.0\.0\.1 is a loopback address"):
        await safe.post("https://rebind.test/hook", [], b"3")
    await safe.aclose()
    assert network.lookups == ["rebind.test"] * 2
    assert network.dials == [PUBLIC]
    assert site.requests == ["/hook", "/close"]
    assert site.connections == 1
