"""The llm agent against a local server speaking the chat-completions wire format."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from tests.fakes.chat_completions import FakeChatCompletions
from tests.unit.agents.conftest import TRUSTS_LOOPBACK, Chat

from agentsms.agents import AgentFailed, LlmAccess, build_agent
from agentsms.agents.llm import OPENING_CUE
from agentsms.config import Settings
from agentsms.core import llm_credentials
from agentsms.webhooks.ssrf import SafeTransport, UrlPolicy

DISPOSITIONS = ["confirmed", "rescheduled", "canceled"]
SCHEMA = {
    "type": "object",
    "properties": {"new_time": {"type": "string", "description": "The new appointment time"}},
}


def chat_for(access: LlmAccess, config: dict[str, Any], **kwargs: Any) -> Chat:
    return Chat(
        build_agent(config, llm=access),
        context=kwargs.pop("context", "Bright Smile Dental, 12 Main St."),
        task_context=kwargs.pop("task_context", "Confirm Ann's cleaning on Tuesday at 3 PM."),
        metadata=kwargs.pop("metadata", {"name": "Ann", "patient_id": 7}),
        dispositions=kwargs.pop("dispositions", DISPOSITIONS),
        extraction_schemas=kwargs.pop("extraction_schemas", [SCHEMA]),
        **kwargs,
    )


async def test_opening_prompt_carries_persona_context_task_and_metadata(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("Hi Ann! This is Riley from Bright Smile. See you Tuesday at 3?")
    output = await chat_for(llm_access, llm_config).open()
    assert output.replies == ["Hi Ann! This is Riley from Bright Smile. See you Tuesday at 3?"]
    assert output.ending is None

    [request] = chat_server.requests
    assert request.headers["authorization"] == f"Bearer {chat_server.api_key}"
    assert request.body["model"] == "test-model"
    assert request.body["temperature"] == 0.2
    assert "max_tokens" not in request.body
    prompt = request.system_prompt
    assert prompt.startswith("You are Riley, the front desk of Bright Smile Dental.")
    assert "## Context\nBright Smile Dental, 12 Main St." in prompt
    assert "## Task\nConfirm Ann's cleaning on Tuesday at 3 PM." in prompt
    assert '"name": "Ann"' in prompt
    assert '"patient_id": 7' in prompt
    assert "Allowed outcomes: confirmed, rescheduled, canceled." in prompt
    assert request.messages[1:] == [{"role": "user", "content": OPENING_CUE}]


async def test_history_becomes_assistant_and_user_messages_in_order(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat = chat_for(llm_access, llm_config)
    chat.greeting("Reminder: cleaning Tuesday 3 PM. Reply to confirm.")
    chat_server.reply("Would Wednesday work instead?")
    await chat.say("Can't do Tuesday")
    chat_server.reply("Great, 9 AM Wednesday it is?")
    output = await chat.say("Wednesday morning is fine")
    assert output.replies == ["Great, 9 AM Wednesday it is?"]
    last = chat_server.requests[-1]
    assert last.messages[1:] == [
        {"role": "assistant", "content": "Reminder: cleaning Tuesday 3 PM. Reply to confirm."},
        {"role": "user", "content": "Can't do Tuesday"},
        {"role": "assistant", "content": "Would Wednesday work instead?"},
        {"role": "user", "content": "Wednesday morning is fine"},
    ]
    assert "The newest text was sent at 2026-11-29T15:03:00+00:00." in last.system_prompt


async def test_end_tool_is_offered_with_dispositions_and_extraction_fields(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("Hello!")
    await chat_for(llm_access, llm_config).open()
    [tool] = chat_server.requests[0].tools
    assert tool["type"] == "function"
    function = tool["function"]
    assert function["name"] == "end_conversation"
    parameters = function["parameters"]
    assert parameters["required"] == ["outcome"]
    assert parameters["properties"]["outcome"]["enum"] == DISPOSITIONS
    assert parameters["properties"]["extracted"]["properties"] == SCHEMA["properties"]
    assert chat_server.requests[0].body["tool_choice"] == "auto"


async def test_named_extraction_schema_and_free_outcome(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("Hello!")
    schema = {"name": "email", "type": "string", "format": "email"}
    await chat_for(llm_access, llm_config, dispositions=[], extraction_schemas=[schema]).open()
    parameters = chat_server.requests[0].tools[0]["function"]["parameters"]
    assert "enum" not in parameters["properties"]["outcome"]
    assert parameters["properties"]["extracted"]["properties"] == {
        "email": {"type": "string", "format": "email"}
    }
    assert "Allowed outcomes" not in chat_server.requests[0].system_prompt


async def test_tool_call_ends_the_conversation(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat = chat_for(llm_access, llm_config)
    chat.greeting("Reminder: cleaning Tuesday 3 PM.")
    chat_server.end(
        "rescheduled",
        {"new_time": "2026-12-02T09:00"},
        message="Done, see you Wednesday at 9!",
    )
    output = await chat.say("Move it to Wednesday 9am please")
    assert output.ending is not None
    assert output.ending.outcome == "rescheduled"
    assert output.ending.extracted == {"new_time": "2026-12-02T09:00"}
    assert output.replies == ["Done, see you Wednesday at 9!"]


async def test_text_beside_the_tool_call_is_sent_first(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat = chat_for(llm_access, llm_config)
    chat_server.end("confirmed", text="Perfect, you're confirmed.")
    output = await chat.say("yes")
    assert output.replies == ["Perfect, you're confirmed."]
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"
    assert output.ending.extracted == {}


async def test_max_history_keeps_the_newest_texts(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat = chat_for(llm_access, {**llm_config, "max_history": 2, "max_tokens": 80})
    chat.greeting("one")
    chat_server.reply("three")
    await chat.say("two")
    chat_server.reply("five")
    await chat.say("four")
    last = chat_server.requests[-1]
    assert [m["content"] for m in last.messages[1:]] == ["three", "four"]
    assert last.body["max_tokens"] == 80


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (503, True), (400, False), (404, False)]
)
async def test_http_errors_fail_the_turn(
    llm_access: LlmAccess,
    chat_server: FakeChatCompletions,
    llm_config: dict[str, Any],
    status: int,
    retryable: bool,
) -> None:
    chat_server.fail(status, "upstream says no")
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_access, llm_config).say("hi")
    assert failed.value.retryable is retryable
    assert str(status) in str(failed.value)
    assert "upstream says no" in str(failed.value)
    assert len(chat_server.requests) == 1  # no hidden retries inside the client


async def test_a_wrong_key_is_not_retried(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    access = llm_credentials.llm_access(TRUSTS_LOOPBACK, "sk-wrong")
    with pytest.raises(AgentFailed) as failed:
        await chat_for(access, llm_config).say("hi")
    assert failed.value.retryable is False
    assert "401" in str(failed.value)


def _operator(chat_server: FakeChatCompletions, project_key: str | None) -> LlmAccess:
    """The operator runs the chat server (its base URL and key are the operator's)."""
    settings = TRUSTS_LOOPBACK.model_copy(
        update={"llm_base_url": chat_server.base_url, "llm_api_key": chat_server.api_key}
    )
    return llm_credentials.llm_access(settings, project_key)


async def test_the_operators_key_goes_only_to_the_operators_server(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    access = _operator(chat_server, None)
    chat_server.reply("from the operator's server")
    without_url = {k: v for k, v in llm_config.items() if k != "base_url"}
    output = await chat_for(access, without_url).say("hi")
    assert output.replies == ["from the operator's server"]
    assert chat_server.requests[0].headers["authorization"] == f"Bearer {chat_server.api_key}"

    # The same server under another name is the persona's own server: no operator key.
    other_name = chat_server.base_url.replace("127.0.0.1", "127.0.0.1.")
    with pytest.raises(AgentFailed, match="401"):
        await chat_for(access, {**llm_config, "base_url": other_name}).say("hi")
    assert chat_server.requests[1].headers["authorization"] == "Bearer not-needed"


async def test_a_persona_with_its_own_base_url_gets_only_its_projects_key(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    operator = TRUSTS_LOOPBACK.model_copy(update={"llm_api_key": "sk-operator-secret"})
    chat_server.reply("hello")
    await chat_for(llm_credentials.llm_access(operator, chat_server.api_key), llm_config).say("hi")
    with pytest.raises(AgentFailed, match="401"):
        await chat_for(llm_credentials.llm_access(operator, None), llm_config).say("hi")
    sent = [request.headers["authorization"] for request in chat_server.requests]
    assert sent == [f"Bearer {chat_server.api_key}", "Bearer not-needed"]


async def test_a_keyless_server_gets_a_placeholder_key(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.api_key = "not-needed"
    try:
        chat_server.reply("hello")
        access = llm_credentials.llm_access(TRUSTS_LOOPBACK, None)
        output = await chat_for(access, llm_config).say("hi")
    finally:
        chat_server.api_key = "sk-test-key"
    assert output.replies == ["hello"]


async def test_a_slow_server_times_out_as_retryable(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("too late", delay=1.5)
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_access, {**llm_config, "timeout_seconds": 0.3}).say("hi")
    assert failed.value.retryable is True
    assert "timed out" in str(failed.value).lower()


async def test_an_unreachable_server_is_retryable(
    llm_access: LlmAccess, llm_config: dict[str, Any]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = {**llm_config, "base_url": f"http://127.0.0.1:{port}/v1"}
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_access, config).say("hi")
    assert failed.value.retryable is True


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ({"outcome": "booked"}, "not one of"),
        ({"outcome": ""}, "without an outcome"),
        ({"raw": "{not json"}, "not JSON"),
        ({"raw": json.dumps({"outcome": "confirmed", "extracted": [1]})}, "not an object"),
        ({"tool": "transfer_call"}, "unknown tool"),
    ],
)
async def test_bad_tool_calls_fail_retryably(
    llm_access: LlmAccess,
    chat_server: FakeChatCompletions,
    llm_config: dict[str, Any],
    script: dict[str, str],
    reason: str,
) -> None:
    chat_server.end(
        script.get("outcome", "confirmed"),
        tool_name=script.get("tool", "end_conversation"),
        raw_arguments=script.get("raw"),
    )
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_access, llm_config).say("yes")
    assert failed.value.retryable is True
    assert reason in str(failed.value)


async def test_an_empty_answer_fails_retryably(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("   ")
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_access, llm_config).say("hello?")
    assert failed.value.retryable is True


async def test_reasoning_blocks_are_not_texted(
    llm_access: LlmAccess, chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("<think>She wants Tuesday.\nCheck the slot.</think>\n\nTuesday at 3 works!")
    output = await chat_for(llm_access, llm_config).say("Can I come Tuesday?")
    assert output.replies == ["Tuesday at 3 works!"]


@pytest.mark.parametrize(
    ("scheme", "host", "reason"),
    [
        ("http", "127.0.0.1", "must be an https URL"),
        ("https", "127.0.0.1", "loopback"),
        ("https", "[::ffff:127.0.0.1]", "loopback"),
        ("https", "2130706433", "loopback"),
    ],
)
async def test_a_loopback_base_url_is_refused_without_connecting(
    chat_server: FakeChatCompletions,
    llm_config: dict[str, Any],
    scheme: str,
    host: str,
    reason: str,
) -> None:
    """Without the operator trusting 127.0.0.1 the guard refuses it when connecting."""
    chat_server.reply("never sent")
    port = chat_server.base_url.split(":")[2].split("/")[0]
    config = {**llm_config, "base_url": f"{scheme}://{host}:{port}/v1"}
    access = llm_credentials.llm_access(Settings(), chat_server.api_key)
    with pytest.raises(AgentFailed) as failed:
        await chat_for(access, config).say("hi")
    assert failed.value.retryable is False  # the same URL will be refused again
    assert reason in str(failed.value)
    assert chat_server.requests == []


async def test_a_name_resolving_to_loopback_is_refused_when_connecting(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    """A public-looking name whose DNS answer is loopback (rebinding) never connects."""

    async def rebinding(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]

    def transport(seconds: float) -> httpx.AsyncBaseTransport:
        return SafeTransport(
            policy=UrlPolicy(), total_seconds=seconds, max_bytes=1 << 20, resolver=rebinding
        )

    access = LlmAccess(transport=transport, operator_base_url="https://api.openai.com/v1")
    port = chat_server.base_url.split(":")[2].split("/")[0]
    config = {**llm_config, "base_url": f"https://llm.example.com:{port}/v1"}
    with pytest.raises(AgentFailed, match=r"resolves to 127\.0\.0\.1 is a loopback address"):
        await chat_for(access, config).say("hi")
    assert chat_server.requests == []
