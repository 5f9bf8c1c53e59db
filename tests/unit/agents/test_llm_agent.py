"""The llm agent against a local server speaking the chat-completions wire format."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from tests.fakes.chat_completions import FakeChatCompletions
from tests.unit.agents.conftest import Chat

from agentsms.agents import AgentFailed, build_agent
from agentsms.agents.llm import OPENING_CUE

DISPOSITIONS = ["confirmed", "rescheduled", "canceled"]
SCHEMA = {
    "type": "object",
    "properties": {"new_time": {"type": "string", "description": "The new appointment time"}},
}


def chat_for(config: dict[str, Any], **kwargs: Any) -> Chat:
    return Chat(
        build_agent(config),
        context=kwargs.pop("context", "Bright Smile Dental, 12 Main St."),
        task_context=kwargs.pop("task_context", "Confirm Ann's cleaning on Tuesday at 3 PM."),
        metadata=kwargs.pop("metadata", {"name": "Ann", "patient_id": 7}),
        dispositions=kwargs.pop("dispositions", DISPOSITIONS),
        extraction_schemas=kwargs.pop("extraction_schemas", [SCHEMA]),
        **kwargs,
    )


async def test_opening_prompt_carries_persona_context_task_and_metadata(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("Hi Ann! This is Riley from Bright Smile. See you Tuesday at 3?")
    output = await chat_for(llm_config).open()
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
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat = chat_for(llm_config)
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
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("Hello!")
    await chat_for(llm_config).open()
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
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("Hello!")
    schema = {"name": "email", "type": "string", "format": "email"}
    await chat_for(llm_config, dispositions=[], extraction_schemas=[schema]).open()
    parameters = chat_server.requests[0].tools[0]["function"]["parameters"]
    assert "enum" not in parameters["properties"]["outcome"]
    assert parameters["properties"]["extracted"]["properties"] == {
        "email": {"type": "string", "format": "email"}
    }
    assert "Allowed outcomes" not in chat_server.requests[0].system_prompt


async def test_tool_call_ends_the_conversation(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat = chat_for(llm_config)
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
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat = chat_for(llm_config)
    chat_server.end("confirmed", text="Perfect, you're confirmed.")
    output = await chat.say("yes")
    assert output.replies == ["Perfect, you're confirmed."]
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"
    assert output.ending.extracted == {}


async def test_max_history_keeps_the_newest_texts(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat = chat_for({**llm_config, "max_history": 2, "max_tokens": 80})
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
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], status: int, retryable: bool
) -> None:
    chat_server.fail(status, "upstream says no")
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_config).say("hi")
    assert failed.value.retryable is retryable
    assert str(status) in str(failed.value)
    assert "upstream says no" in str(failed.value)
    assert len(chat_server.requests) == 1  # no hidden retries inside the client


async def test_a_wrong_key_is_not_retried(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-wrong")
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_config).say("hi")
    assert failed.value.retryable is False
    assert "401" in str(failed.value)


async def test_a_missing_key_fails_before_calling(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_LLM_KEY")
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_config).say("hi")
    assert failed.value.retryable is False
    assert "TEST_LLM_KEY" in str(failed.value)
    assert chat_server.requests == []


async def test_a_keyless_server_gets_a_placeholder_key(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.api_key = "not-needed"
    try:
        chat_server.reply("hello")
        output = await chat_for({**llm_config, "api_key_env": None}).say("hi")
    finally:
        chat_server.api_key = "sk-test-key"
    assert output.replies == ["hello"]


async def test_a_slow_server_times_out_as_retryable(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("too late", delay=1.5)
    with pytest.raises(AgentFailed) as failed:
        await chat_for({**llm_config, "timeout_seconds": 0.3}).say("hi")
    assert failed.value.retryable is True
    assert "timed out" in str(failed.value).lower()


async def test_an_unreachable_server_is_retryable(llm_config: dict[str, Any]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = {**llm_config, "base_url": f"http://127.0.0.1:{port}/v1"}
    with pytest.raises(AgentFailed) as failed:
        await chat_for(config).say("hi")
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
        await chat_for(llm_config).say("yes")
    assert failed.value.retryable is True
    assert reason in str(failed.value)


async def test_an_empty_answer_fails_retryably(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("   ")
    with pytest.raises(AgentFailed) as failed:
        await chat_for(llm_config).say("hello?")
    assert failed.value.retryable is True


async def test_reasoning_blocks_are_not_texted(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any]
) -> None:
    chat_server.reply("<think>She wants Tuesday.\nCheck the slot.</think>\n\nTuesday at 3 works!")
    output = await chat_for(llm_config).say("Can I come Tuesday?")
    assert output.replies == ["Tuesday at 3 works!"]
