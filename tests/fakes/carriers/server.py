"""What every fake carrier shares: a Starlette app served by uvicorn in a thread on a free
loopback port, a record of the requests it got, scripted failures (rate limits, 5xx), and
signed callbacks it hands to agentsms."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MEDIA_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
# What a hostile sender's MMS could carry: ``/media/page.html`` serves it.
PAGE_BYTES = b"<!doctype html><script>fetch('/dashboard/api-keys')</script>"


@dataclass
class Recorded:
    """One request the fake carrier received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str]


@dataclass
class Callback:
    """A signed webhook the carrier sends to agentsms."""

    url: str  # as the carrier calls it (what it signs)
    headers: dict[str, str]
    body: bytes
    content_type: str

    async def deliver(self, client: httpx.AsyncClient) -> httpx.Response:
        """POST it to agentsms (``client`` reaches agentsms; the path and query come from
        ``url``, which is built on the public URL agentsms told the carrier)."""
        parts = httpx.URL(self.url)
        target = parts.raw_path.decode()
        return await client.post(
            target,
            content=self.body,
            headers={**self.headers, "content-type": self.content_type},
        )


@dataclass
class Scripted:
    """Answers to give instead of the normal one, consumed in order."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class FakeCarrier:
    """Base of the fakes. Subclasses add routes and the carrier's message handling."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.scripted: list[Scripted] = []
        self.sent: dict[str, dict[str, Any]] = {}  # carrier message id → what we got
        self.app = Starlette(routes=self.routes())
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def routes(self) -> list[Route]:
        return [Route("/media/{name}", self.media_file, methods=["GET"])]

    async def record(self, request: Request) -> Recorded:
        item = Recorded(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            query=dict(request.query_params),
        )
        self.requests.append(item)
        return item

    def next_scripted(self) -> Response | None:
        if not self.scripted:
            return None
        item = self.scripted.pop(0)
        return Response(
            item.body, status_code=item.status, headers=item.headers, media_type=item.content_type
        )

    async def media_file(self, request: Request) -> Response:
        await self.record(request)
        if not self.media_authorized(request):
            return Response(b"unauthorized", status_code=401)
        if request.path_params["name"].endswith(".html"):
            return Response(PAGE_BYTES, media_type="text/html")
        return Response(MEDIA_BYTES, media_type="image/png")

    def media_authorized(self, request: Request) -> bool:
        return True

    def media_url(self, name: str = "photo.png") -> str:
        return f"{self.base_url}/media/{name}"

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake carrier did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
