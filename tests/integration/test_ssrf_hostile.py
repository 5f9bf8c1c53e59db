"""Hostile URLs never reach a listener on loopback, however they are spelled or reached.

A plain TCP listener on 127.0.0.1 (and ::1 when the machine has IPv6) counts every
connection. Each hostile URL is fetched with the production SSRF-safe client, insecure mode
off; only DNS is injected (names ending in ``.test`` resolve to what the case says) and one
made-up public address (``PUBLIC``) is dialed to a local TLS server standing for an allowed
public site, which is where the redirect cases start. Every other address is dialed for
real, so a check that let a hostile address through would show up as a connection.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest
import trustme

from agentsms.config import Settings
from agentsms.errors import ValidationFailed
from agentsms.webhooks import BlockedRequest, check_url, emit, safe_client
from agentsms.webhooks.delivery import DeliveryHandler
from agentsms.webhooks.events import DELIVER_JOB
from agentsms.webhooks.ssrf import ResponseTooLarge, guarded_transport
from tests.conftest import Gateway

PUBLIC = "93.184.216.34"  # a globally routable address; dialed to the local TLS server


@dataclass
class Listener:
    """Counts TCP connections on loopback (IPv4 and, if possible, IPv6) on one port."""

    port: int
    sockets: list[socket.socket]
    hits: list[str] = field(default_factory=list)

    def serve(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            self.hits.append(str(peer))
            conn.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.bind(("127.0.0.1", 0))
    v4.listen(64)
    port = v4.getsockname()[1]
    sockets = [v4]
    try:
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::1", port))
        v6.listen(64)
        sockets.append(v6)
    except OSError:
        pass
    found = Listener(port, sockets)
    for sock in sockets:
        threading.Thread(target=found.serve, args=(sock,), daemon=True).start()
    yield found
    for sock in sockets:
        sock.close()


@dataclass
class PublicSite:
    port: int
    ca: trustme.CA
    paths: list[str]


@pytest.fixture(scope="module")
def public_site() -> Iterator[PublicSite]:
    """An https server for ``good.test``: /ok, /big, /slow, /redirect?to=URL, /loop."""
    ca = trustme.CA()
    cert = ca.issue_cert("good.test")
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            parts = urlsplit(self.path)
            if parts.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", parse_qs(parts.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts.path == "/loop":
                self.send_response(302)
                self.send_header("Location", "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts.path == "/big":
                body = b"x" * 300_000
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif parts.path == "/slow":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"y" * 10)
                self.wfile.flush()
                time.sleep(3)
            else:
                body = f"host={self.headers['Host']}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield PublicSite(server.server_address[1], ca, paths)
    server.shutdown()


NAMES: dict[str, list[str]] = {
    "good.test": [PUBLIC],
    "loopback.test": ["127.0.0.1"],
    "mixed.test": [PUBLIC, "127.0.0.1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "nat64.test": ["64:ff9b::7f00:1"],
    "metadata.test": ["169.254.169.254"],
    "private.test": ["10.1.2.3"],
    "v6loop.test": ["::1"],
}


async def fake_dns(host: str, port: int) -> Sequence[str]:
    if host in NAMES:
        return NAMES[host]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def client_for(site: PublicSite, **kwargs: object) -> httpx.AsyncClient:
    backend = httpcore.AnyIOBackend()

    async def dial(address: str, port: int, limit: float | None) -> httpcore.AsyncNetworkStream:
        if address == PUBLIC:
            return await backend.connect_tcp("127.0.0.1", site.port, timeout=limit)
        return await backend.connect_tcp(address, port, timeout=limit)

    context = ssl.create_default_context()
    site.ca.configure_trust(context)
    return safe_client(
        Settings(allow_insecure_urls=False),
        resolver=fake_dns,
        dialer=dial,
        verify=context,
        **kwargs,  # type: ignore[arg-type]
    )


LITERAL_HOSTS = [
    "127.0.0.1",
    "127.1",
    "2130706433",  # decimal
    "017700000001",  # octal, one part
    "0177.0.0.1",  # octal, dotted
    "0x7f000001",  # hex, one part
    "0x7f.0x0.0x0.0x1",  # hex, dotted
    "0x7F.1",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::1]",
    "0.0.0.0",
    "0",
    "[::]",
    "[2002:7f00:0001::]",  # 6to4 of 127.0.0.1
    "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
    "[::127.0.0.1]",  # IPv4-compatible
    "169.254.169.254",
    "100.64.0.1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "[fe80::1]",
    "[fc00::1]",
    "224.0.0.1",
    "255.255.255.255",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "api.localhost",
    "example.com@127.0.0.1",  # userinfo trick: the host is 127.0.0.1
]
NAME_HOSTS = [name for name in NAMES if name != "good.test"]


def _hostile_urls(port: int) -> list[str]:
    return [f"https://{host}:{port}/" for host in LITERAL_HOSTS + NAME_HOSTS] + [
        f"http://127.0.0.1:{port}/",
        f"http://good.test:{port}/",  # public, but http
        f"ftp://127.0.0.1:{port}/",
    ]


async def test_more_than_twenty_hostile_urls_never_reach_loopback(
    listener: Listener, public_site: PublicSite
) -> None:
    start = len(listener.hits)
    urls = _hostile_urls(listener.port)
    assert len(urls) >= 20
    async with client_for(public_site) as client:
        for url in urls:
            with pytest.raises((BlockedRequest, httpx.InvalidURL, httpx.UnsupportedProtocol)):
                await client.get(url)
            with pytest.raises((BlockedRequest, httpx.InvalidURL, httpx.UnsupportedProtocol)):
                await client.post(url, content=b"{}")
    assert listener.hits[start:] == []


async def test_redirects_to_hostile_urls_are_refused_at_each_hop(
    listener: Listener, public_site: PublicSite
) -> None:
    start = len(listener.hits)
    targets = _hostile_urls(listener.port)
    before = len(public_site.paths)
    async with client_for(public_site) as client:
        for target in targets:
            url = f"https://good.test:{public_site.port}/redirect"
            # An unparsable Location (0177.0.0.1) is a protocol error, not a hop.
            with pytest.raises(
                (BlockedRequest, httpx.RemoteProtocolError, httpx.UnsupportedProtocol)
            ):
                await client.get(url, params={"to": target})
    # Every redirect really came from the allowed server, and none of them was followed.
    assert len(public_site.paths) - before == len(targets)
    assert listener.hits[start:] == []


async def test_literal_hostile_hosts_are_refused_when_stored(listener: Listener) -> None:
    for host in LITERAL_HOSTS:
        with pytest.raises(ValidationFailed) as refused:
            check_url(f"https://{host}:{listener.port}/hook", "url", Settings())
        assert refused.value.errors[0].field == "url"
        assert refused.value.code == "unsafe_url"
    with pytest.raises(ValidationFailed, match="https"):
        check_url("http://example.com/hook", "url", Settings())
    check_url("https://example.com/hook", "url", Settings())
    check_url("https://8.8.8.8/hook", "url", Settings())
    check_url("https://[2606:4700:4700::1111]/hook", "url", Settings())


async def test_allowed_site_works_with_sni_host_header_and_checked_address(
    public_site: PublicSite,
) -> None:
    async with client_for(public_site) as client:
        response = await client.get(f"https://good.test:{public_site.port}/ok")
    assert response.status_code == 200
    # TLS was verified against good.test and the Host header kept, though we dialed an IP.
    assert response.text == f"host=good.test:{public_site.port}"


async def test_a_name_with_one_bad_address_is_refused(
    listener: Listener, public_site: PublicSite
) -> None:
    start = len(listener.hits)
    async with client_for(public_site) as client:
        with pytest.raises(BlockedRequest, match=r"127\.0\.0\.1"):
            await client.get(f"https://mixed.test:{public_site.port}/ok")
    assert listener.hits[start:] == []


async def test_redirect_chains_are_capped(public_site: PublicSite) -> None:
    async with client_for(public_site, max_redirects=3) as client:
        with pytest.raises(httpx.TooManyRedirects):
            await client.get(f"https://good.test:{public_site.port}/loop")


async def test_response_size_is_capped(public_site: PublicSite) -> None:
    async with client_for(public_site, max_bytes=100_000) as client:
        with pytest.raises(ResponseTooLarge):
            await client.get(f"https://good.test:{public_site.port}/big")
        ok = await client.get(f"https://good.test:{public_site.port}/ok")
        assert ok.status_code == 200


async def test_total_time_is_capped(public_site: PublicSite) -> None:
    async with client_for(public_site, timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            await client.get(f"https://good.test:{public_site.port}/slow")
    assert time.monotonic() - started < 2.5


async def test_the_listener_does_count_connections_when_checks_are_off(
    listener: Listener,
) -> None:
    """The control: the same kind of request in insecure mode does reach the listener."""
    before = len(listener.hits)
    async with safe_client(Settings(allow_insecure_urls=True), timeout=2) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"http://127.0.0.1:{listener.port}/")
    assert len(listener.hits) == before + 1


async def test_webhook_delivery_to_a_name_resolving_to_loopback_is_refused_and_logged(
    gateway: Gateway, listener: Listener
) -> None:
    """Through the real delivery job, insecure mode off: the attempt is logged as refused."""
    start = len(listener.hits)
    transport = guarded_transport(gateway.settings, total_seconds=5.0, resolver=fake_dns)
    settings = gateway.settings.model_copy(update={"webhook_max_attempts": 1})
    handler = DeliveryHandler(gateway.db, settings, transport)
    gateway.worker.handlers[DELIVER_JOB] = handler.handle
    created = await gateway.client.post(
        "/v1/webhook-endpoints", json={"url": f"https://loopback.test:{listener.port}/hook"}
    )
    assert created.status_code == 201
    endpoint = created.json()
    async with gateway.db.write() as conn:
        await emit(conn, project_id=gateway.project_id, event_type="message.sent", data={})
    await gateway.drain()
    logs = (await gateway.client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()
    [log] = logs["data"]
    assert log["status"] == "failed"
    assert log["status_code"] is None
    assert "loopback" in log["error"]
    assert listener.hits[start:] == []
    await handler.aclose()


WEBHOOK_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


async def test_a_webhook_agent_at_an_inside_address_is_refused_when_stored(
    gateway: Gateway,
) -> None:
    """The agent's URL is agentsms's own to call: refused at upload and at send, not at the
    first turn; a public URL is taken."""
    personas_before = (await gateway.client.get("/v1/personas")).json()["data"]
    for url in ("http://127.0.0.1:9/agent", "https://169.254.169.254/latest", "http://[::1]/a"):
        agent = {"kind": "webhook", "url": url, "secret": WEBHOOK_SECRET}
        created = await gateway.client.post("/v1/personas", json={"name": "x", "agent": agent})
        assert created.status_code == 422, created.text
        assert created.json()["code"] == "unsafe_url"
        assert [e["field"] for e in created.json()["errors"]] == ["agent.url"]
        sent = await gateway.client.post(
            "/v1/messages",
            json={"to": "+14155554611", "conversation": {"persona_settings": agent}},
        )
        assert sent.status_code == 422, sent.text
        assert [e["field"] for e in sent.json()["errors"]] == ["conversation.persona_settings.url"]
    assert (await gateway.client.get("/v1/personas")).json()["data"] == personas_before
    public = {"kind": "webhook", "url": "https://agent.example.com/hook", "secret": WEBHOOK_SECRET}
    created = await gateway.client.post("/v1/personas", json={"name": "ok", "agent": public})
    assert created.status_code == 201, created.text
    refused = await gateway.client.post(
        f"/v1/personas/{created.json()['id']}/versions",
        json={"agent": {**public, "url": "http://10.0.0.7/agent"}},
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["agent.url"]
    assert (
        len((await gateway.client.get(f"/v1/personas/{created.json()['id']}")).json()["versions"])
        == 1
    )
