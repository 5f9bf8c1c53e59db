"""``/mcp``: the MCP tools over Streamable HTTP inside the app, one project per API key.

Each request must carry a project's API key as ``Authorization: Bearer`` and passes the
API's own key check (and rate limit) before the MCP transport sees it. The tools then call
the app in-process (httpx's ASGI transport) with that same key, so they see exactly what
the key's project sees through the API. The transport is stateless (no MCP session is
kept between requests), so any number of API processes can serve ``/mcp`` behind a
balancer without sticky sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agentsms.api import problems
from agentsms.api.deps import ProjectKey
from agentsms.client import AsyncClient
from agentsms.errors import AgentsmsError, Unauthorized
from agentsms.mcp_server.tools import build_server

PATH = "/mcp"

_project_key = ProjectKey(auto_error=False)


class McpEndpoint:
    """The ASGI endpoint at ``/mcp``; :meth:`running` must wrap the app's lifespan."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._sessions: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the MCP transport for the lifetime of the app (a fresh one for each start, as
        the SDK's session manager cannot be restarted).

        Its task group lives in a task of its own, so that the app's lifespan may end in
        another task than the one it began in (as some test harnesses do).
        """
        server = build_server(self._client_for)
        # The API key guards every request, so the DNS-rebinding guard (for servers that
        # trust whoever reaches localhost) would only refuse legitimate host names.
        server.streamable_http_app(
            stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = server.session_manager
        started = asyncio.Event()
        stop = asyncio.Event()

        async def hold() -> None:
            async with manager.run():
                self._sessions = manager
                started.set()
                try:
                    await stop.wait()
                finally:
                    self._sessions = None

        task = asyncio.create_task(hold())
        ready = asyncio.create_task(started.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # it failed to start: raise why
        try:
            yield
        finally:
            stop.set()
            await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await _project_key(request)
        except AgentsmsError as error:
            refusal = problems.from_error(error)
            if isinstance(error, Unauthorized):
                refusal.headers["WWW-Authenticate"] = "Bearer"
            await refusal(scope, receive, send)
            return
        if self._sessions is None:
            unavailable = problems.problem(
                503, "unavailable", "Unavailable", "the MCP endpoint is not running"
            )
            await unavailable(scope, receive, send)
            return
        await self._sessions.handle_request(scope, receive, send)

    @asynccontextmanager
    async def _client_for(self, ctx: Context) -> AsyncIterator[AsyncClient]:
        """A client calling this app in-process, with the API key of the tool's caller."""
        request = ctx.request_context.request
        if not isinstance(request, Request):
            raise Unauthorized("the MCP request carried no HTTP request")
        _, key = get_authorization_scheme_param(request.headers.get("authorization"))
        transport = httpx.ASGITransport(app=self._app)
        async with AsyncClient(str(request.base_url), key, transport=transport) as client:
            yield client


def install(app: FastAPI) -> McpEndpoint:
    """Route ``/mcp`` of ``app`` to a new endpoint; its :meth:`~McpEndpoint.running` is for
    the app's lifespan."""
    endpoint = McpEndpoint(app)
    app.router.routes.append(Route(PATH, endpoint, methods=["GET", "POST", "DELETE"]))
    return endpoint
