"""Pure ASGI middleware: request size limit and request metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentsms import metrics
from agentsms.api.problems import problem


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` with ``413`` before they are parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                if int(value) > self.max_bytes:
                    await self._refuse(scope, receive, send)
                else:
                    # The server delivers no more than the declared length.
                    await self.app(scope, receive, send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if started:
                        raise _TooLarge
                    # FastAPI re-raises an HTTPException met while reading the body (anything
                    # else becomes a 400), and the problem handler turns it into a 413.
                    raise HTTPException(413, detail=self._detail())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    def _detail(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "request_too_large",
            "Request too large",
            self._detail(),
        )
        await response(scope, receive, send)


class RequestMetrics:
    """Counts requests and their duration by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled series, looked up once each: ``labels()`` costs more than the count.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope.get("method", "GET")
            counter = self._counters.get((method, template, status))
            if counter is None:
                counter = self._counters[method, template, status] = metrics.http_requests.labels(
                    method=method, route=template, status=str(status)
                )
            timer = self._timers.get((method, template))
            if timer is None:
                timer = self._timers[method, template] = metrics.http_latency.labels(
                    method=method, route=template
                )
            counter.inc()
            timer.observe(time.perf_counter() - started)
