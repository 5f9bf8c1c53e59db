"""The MCP server with the official ``mcp`` client: Streamable HTTP at ``/mcp`` of the app
served on loopback, and stdio through an ``agentsms mcp`` subprocess."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult

from agentsms.core import projects
from agentsms.core.numbers import add_simulator_number
from agentsms.mcp_server import tools
from tests.conftest import Gateway
from tests.integration.conversation_helpers import forget_deliveries
from tests.integration.helpers import message_row
from tests.integration.live import serve

OURS = "+14155550100"
PERSON = "+14155553401"
TOOLS = {
    "send_message",
    "send_batch",
    "get_message",
    "list_conversations",
    "get_conversation",
    "reply",
    "end_conversation",
    "list_numbers",
    "wait_for_reply",
}


@pytest.fixture(autouse=True)
async def _no_lingering_deliveries(gateway: Gateway) -> AsyncIterator[None]:
    yield
    await forget_deliveries(gateway)


@pytest.fixture
async def url(gateway: Gateway) -> AsyncIterator[str]:
    async with serve(gateway.app) as base:
        yield f"{base}/mcp"


def over_http(url: str, api_key: str, mode: str = "auto") -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"})
    transport: AbstractAsyncContextManager[Any] = streamable_http_client(url, http_client=http)
    return Client(transport, mode=mode)  # type: ignore[arg-type]


def data(result: CallToolResult) -> dict[str, Any]:
    """A successful tool answer's structured content (also given as JSON text)."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def problem(result: CallToolResult) -> dict[str, Any]:
    """A tool error's problem detail, the same in its text and its structured content."""
    assert result.is_error
    text = result.content[0]
    assert text.type == "text"
    body: dict[str, Any] = json.loads(text.text)
    assert result.structured_content == body
    return body


async def test_tools_are_listed_with_schemas_and_descriptions(url: str, gateway: Gateway) -> None:
    async with over_http(url, gateway.api_key) as client:
        listed = await client.list_tools()

    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    assert all(tool.description and len(tool.description) > 40 for tool in tools.values())
    send = tools["send_message"].input_schema
    assert send["required"] == ["to"]
    assert set(send["properties"]) == {
        "to",
        "body",
        "persona",
        "media_urls",
        "from_number",
        "send_at",
        "metadata",
    }
    assert "E.164" in send["properties"]["to"]["description"]
    wait = tools["wait_for_reply"].input_schema["properties"]["timeout_seconds"]
    assert (wait["default"], wait["maximum"]) == (30, 120)
    assert tools["get_message"].annotations is not None
    assert tools["get_message"].annotations.read_only_hint is True


async def test_send_message_then_get_message(url: str, gateway: Gateway) -> None:
    async with over_http(url, gateway.api_key, mode="legacy") as client:
        sent = data(
            await client.call_tool(
                "send_message", {"to": PERSON, "body": "Hi from MCP", "metadata": {"ticket": 7}}
            )
        )
        got = data(await client.call_tool("get_message", {"message_id": sent["id"]}))

    assert sent["status"] == "queued"
    assert sent["conversation_id"].startswith("conv_")
    assert got["id"] == sent["id"]
    assert (got["to"], got["from"], got["body"]) == (PERSON, OURS, "Hi from MCP")
    assert got["metadata"] == {"ticket": 7}
    row = await message_row(gateway, sent["id"])
    assert row["project_id"] == gateway.project_id


async def test_wait_for_reply_returns_the_persons_next_text(
    url: str, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "_PROGRESS_EVERY", 0.1)
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    async with over_http(url, gateway.api_key) as client:
        sent = data(await client.call_tool("send_message", {"to": PERSON, "body": "Confirm?"}))
        conversation_id = sent["conversation_id"]
        quiet = data(
            await client.call_tool(
                "wait_for_reply", {"conversation_id": conversation_id, "timeout_seconds": 0.3}
            )
        )
        waited: dict[str, Any] = {}

        async def wait() -> None:
            started = time.monotonic()
            arguments = {"conversation_id": conversation_id, "timeout_seconds": 20}
            answer = await client.call_tool(
                "wait_for_reply", arguments, progress_callback=on_progress
            )
            waited.update(data(answer))
            waited["took"] = time.monotonic() - started

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.5)
            inbound = await gateway.client.post(
                "/v1/simulator/inbound", json={"from": PERSON, "to": OURS, "body": "yes"}
            )
            assert inbound.status_code == 202, inbound.text
        again = data(
            await client.call_tool(
                "wait_for_reply", {"conversation_id": conversation_id, "timeout_seconds": 0.3}
            )
        )
        later = data(
            await client.call_tool(
                "wait_for_reply",
                {
                    "conversation_id": conversation_id,
                    "timeout_seconds": 0.3,
                    "after_message_id": inbound.json()["id"],
                },
            )
        )

    assert quiet == {"replied": False, "message": None, "conversation_status": "open"}
    assert waited["replied"] is True
    assert waited["message"]["id"] == inbound.json()["id"]
    assert waited["message"]["body"] == "yes"
    assert waited["message"]["direction"] == "inbound"
    assert 0.4 < waited["took"] < 5  # woke up on the text, not at the timeout
    assert again["message"]["id"] == inbound.json()["id"]  # already answered: at once
    assert later["replied"] is False
    assert progress  # a client waiting with a progress token hears that the wait goes on
    assert all(total == 20 and 0 < done < 5 for done, total in progress)


async def test_reply_and_end_conversation(url: str, gateway: Gateway) -> None:
    async with over_http(url, gateway.api_key) as client:
        sent = data(await client.call_tool("send_message", {"to": PERSON, "body": "Hello"}))
        conversation_id = sent["conversation_id"]
        human = data(
            await client.call_tool(
                "reply", {"conversation_id": conversation_id, "body": "A person here"}
            )
        )
        ended = data(
            await client.call_tool(
                "end_conversation", {"conversation_id": conversation_id, "outcome": "confirmed"}
            )
        )
        shown = data(
            await client.call_tool("get_conversation", {"conversation_id": conversation_id})
        )
        listed = data(await client.call_tool("list_conversations", {"status": "ended"}))
        numbers = data(await client.call_tool("list_numbers", {}))
        batch = data(
            await client.call_tool(
                "send_batch",
                {
                    "recipients": [
                        "+14155553402",
                        {"to": "+14155553403", "body": "Hi {{name}}", "variables": {"name": "Ann"}},
                    ],
                    "body": "Hello all",
                },
            )
        )

    assert human["conversation_id"] == conversation_id
    assert (ended["status"], ended["outcome"]) == ("ended", "confirmed")
    assert shown["agent_paused"] is True
    assert [m["body"] for m in shown["messages"]] == ["Hello", "A person here"]
    assert [c["id"] for c in listed["conversations"]] == [conversation_id]
    assert [n["number"] for n in numbers["numbers"]] == [OURS]
    assert batch["total"] == 2
    assert len(batch["message_ids"]) == 2


async def test_tool_errors_carry_the_problem_detail(url: str, gateway: Gateway) -> None:
    async with over_http(url, gateway.api_key) as client:
        missing = problem(
            await client.call_tool("get_message", {"message_id": "msg_01NOSUCHMESSAGE00000000"})
        )
        invalid = problem(
            await client.call_tool("send_message", {"to": PERSON, "send_at": "tomorrow"})
        )
        not_ours = problem(
            await client.call_tool(
                "send_message", {"to": PERSON, "body": "hi", "from_number": "+14155550177"}
            )
        )
        no_persona = problem(
            await client.call_tool("send_message", {"to": PERSON, "persona": "persona_nope"})
        )

    assert (missing["status"], missing["code"]) == (404, "not_found")
    assert missing["title"]
    assert missing["detail"]
    assert (invalid["status"], invalid["code"]) == (422, "validation_failed")
    assert [e["field"] for e in invalid["errors"]] == ["send_at"]
    assert not_ours["errors"] == [
        {"field": "from", "message": "is not a number in this project's sender pool"}
    ]
    assert [e["field"] for e in no_persona["errors"]] == ["conversation.persona_id"]


async def test_each_key_sees_only_its_own_project(url: str, gateway: Gateway) -> None:
    async with gateway.db.write() as conn:
        other, other_key = await projects.create_project(conn, "other")
        await add_simulator_number(conn, other.id, "+14155550199")
    async with over_http(url, gateway.api_key) as client:
        sent = data(await client.call_tool("send_message", {"to": PERSON, "body": "private"}))
    async with over_http(url, other_key) as client:
        hidden = problem(
            await client.call_tool("get_conversation", {"conversation_id": sent["conversation_id"]})
        )
        theirs = data(await client.call_tool("list_conversations", {}))
        message = problem(await client.call_tool("get_message", {"message_id": sent["id"]}))
        numbers = data(await client.call_tool("list_numbers", {}))

    assert hidden["status"] == 404
    assert message["status"] == 404
    assert theirs["conversations"] == []
    assert [n["number"] for n in numbers["numbers"]] == ["+14155550199"]


async def test_requests_without_a_valid_key_are_refused(url: str, gateway: Gateway) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(url, json=initialize, headers=headers)
        wrong = await http.post(
            url, json=initialize, headers={**headers, "Authorization": "Bearer ask_wrong"}
        )

    for refused in (anonymous, wrong):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "unauthorized"


async def test_stdio_server_from_the_cli(url: str, gateway: Gateway) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSMS_")}
    env |= {"AGENTSMS_URL": url.removesuffix("/mcp"), "AGENTSMS_API_KEY": gateway.api_key}
    command = StdioServerParameters(command=sys.executable, args=["-m", "agentsms", "mcp"], env=env)
    async with Client(command) as client:
        listed = await client.list_tools()
        sent = data(await client.call_tool("send_message", {"to": PERSON, "body": "over stdio"}))
        got = data(await client.call_tool("get_message", {"message_id": sent["id"]}))
        missing = problem(
            await client.call_tool("get_conversation", {"conversation_id": "conv_nope"})
        )

    assert {tool.name for tool in listed.tools} == TOOLS
    assert got["body"] == "over stdio"
    assert (await message_row(gateway, sent["id"]))["project_id"] == gateway.project_id
    assert (missing["status"], missing["code"]) == (404, "not_found")
