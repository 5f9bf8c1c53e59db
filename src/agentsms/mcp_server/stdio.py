"""``agentsms mcp``: the MCP tools over stdio, acting on a server reached over HTTP.

For MCP hosts that start their servers as commands (Claude Desktop, Cursor, ...): the
tools call the agentsms server at ``url`` with one project's ``api_key``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import Context

from agentsms.client import AsyncClient
from agentsms.mcp_server.tools import build_server


async def serve_stdio(url: str, api_key: str) -> None:
    """Answer MCP requests on stdin/stdout until the host closes stdin."""
    async with AsyncClient(url, api_key) as client:

        @asynccontextmanager
        async def client_for(_: Context) -> AsyncIterator[AsyncClient]:
            yield client

        await build_server(client_for).run_stdio_async()
