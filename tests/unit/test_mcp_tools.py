"""The MCP tools' own rules, with the official client connected in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.client import Client
from mcp.server.mcpserver import Context
from tests.acceptance.processes import free_port

from agentsms.client import AsyncClient
from agentsms.mcp_server.tools import build_server


def server_without_agentsms() -> Client:
    """The tools, backed by a client of a port where nothing listens."""
    url = f"http://127.0.0.1:{free_port()}"

    @asynccontextmanager
    async def client_for(_: Context) -> AsyncIterator[AsyncClient]:
        async with AsyncClient(url, "ask_test", max_retries=0) as client:
            yield client

    return Client(build_server(client_for))


async def test_an_unreachable_server_is_a_tool_error_with_a_problem() -> None:
    async with server_without_agentsms() as client:
        result = await client.call_tool("get_message", {"message_id": "msg_A"})

    assert result.is_error
    problem = result.structured_content
    assert problem is not None
    assert (problem["status"], problem["code"]) == (503, "unreachable")
    assert "cannot reach agentsms" in problem["detail"]


async def test_wait_for_reply_refuses_waits_over_two_minutes() -> None:
    async with server_without_agentsms() as client:
        result = await client.call_tool(
            "wait_for_reply", {"conversation_id": "conv_A", "timeout_seconds": 600}
        )

    assert result.is_error
    assert result.content[0].type == "text"
    assert "timeout_seconds" in result.content[0].text
