"""Reading replies with a model (structured output) through the local chat-completions
server, and falling back to the built-in understanding when the model is of no use."""

from __future__ import annotations

import json
import socket
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.fakes.chat_completions import FakeChatCompletions
from tests.unit.agents.conftest import Chat

from agentsms.agents import LlmAccess, build_agent, load_demo_pathway, validate_agent_config
from agentsms.agents.understanding_llm import parse_answer
from agentsms.errors import ValidationFailed

ANN = {"name": "Ann", "time": "on Tue Dec 2 at 3 PM", "timezone": "America/New_York"}


def reminder_with_model(llm_config: dict[str, Any], access: LlmAccess) -> Chat:
    pathway = load_demo_pathway()
    pathway["understanding_llm"] = llm_config
    return Chat(build_agent({"kind": "flow", "pathway": pathway}, llm=access), metadata=ANN)


async def test_the_model_reads_the_reply_with_a_json_schema(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], llm_access: LlmAccess
) -> None:
    chat = reminder_with_model(llm_config, llm_access)
    await chat.open()
    chat_server.reply(
        json.dumps({"intent": "reschedule", "confidence": 0.9, "proposed_time": "2026-12-14T10:00"})
    )
    output = await chat.say("the week after, monday-ish, first thing")
    assert output.ending is not None
    assert output.ending.outcome == "rescheduled"
    assert output.ending.extracted == {
        "new_time": "2026-12-14T10:00:00-05:00",
        "new_time_text": "Monday, December 14 at 10:00 AM",
    }
    (request,) = chat_server.requests
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    schema = response_format["json_schema"]["schema"]
    assert schema["properties"]["intent"]["enum"] == [
        "confirm",
        "cancel",
        "reschedule",
        "question",
        "unclear",
    ]
    assert request.body["model"] == "test-model"
    assert "Sunday 2026-11-29T10:0" in request.system_prompt  # the person's local now
    assert request.messages[-1] == {
        "role": "user",
        "content": "the week after, monday-ish, first thing",
    }
    assert request.messages[1]["role"] == "assistant"  # the question it answers


async def test_a_model_that_is_unsure_makes_the_flow_ask_again(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], llm_access: LlmAccess
) -> None:
    chat = reminder_with_model(llm_config, llm_access)
    await chat.open()
    chat_server.reply(json.dumps({"intent": "unclear", "confidence": 0.4, "proposed_time": None}))
    output = await chat.say("yes")  # the model's reading wins over the built-in one
    assert output.ending is None
    assert output.replies[0].startswith("Sorry, I didn't get that.")


@pytest.mark.parametrize(
    "answer",
    [
        "I think they want to confirm!",
        json.dumps({"intent": "maybe", "confidence": 0.9, "proposed_time": None}),
        json.dumps({"intent": "reschedule", "confidence": 0.9, "proposed_time": "someday"}),
        json.dumps({"intent": "confirm", "confidence": 7, "proposed_time": None}),
        json.dumps(["confirm"]),
    ],
)
async def test_garbage_from_the_model_falls_back_to_the_built_in_understanding(
    chat_server: FakeChatCompletions,
    llm_config: dict[str, Any],
    llm_access: LlmAccess,
    answer: str,
) -> None:
    chat = reminder_with_model(llm_config, llm_access)
    await chat.open()
    chat_server.reply(answer)
    output = await chat.say("I'll be there")
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"
    assert len(chat_server.requests) == 1


async def test_an_error_from_the_model_falls_back(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], llm_access: LlmAccess
) -> None:
    chat = reminder_with_model(llm_config, llm_access)
    await chat.open()
    chat_server.fail(500)
    output = await chat.say("can't make it")
    assert output.ending is not None
    assert output.ending.outcome == "canceled"


async def test_an_unreachable_model_falls_back(
    llm_config: dict[str, Any], llm_access: LlmAccess
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    chat = reminder_with_model(
        {**llm_config, "base_url": f"http://127.0.0.1:{port}/v1", "timeout_seconds": 2},
        llm_access,
    )
    await chat.open()
    output = await chat.say("not tomorrow, how about Thursday at 2")
    assert output.ending is not None
    assert output.ending.extracted["new_time"] == "2026-12-03T14:00:00-05:00"


def test_the_answer_is_kept_in_the_persons_zone() -> None:
    zone = ZoneInfo("America/Los_Angeles")
    answer = {"intent": "reschedule", "confidence": 0.8, "proposed_time": "2026-12-10T15:00"}
    understood = parse_answer(answer, zone)
    assert understood is not None
    assert understood.when == "2026-12-10T15:00:00-08:00"
    assert understood.when_text == "Thursday, December 10 at 3:00 PM"
    day = parse_answer({**answer, "proposed_time": "2026-12-10"}, zone)
    assert day is not None
    assert (day.when, day.when_text) == ("2026-12-10", "Thursday, December 10")
    utc = parse_answer({**answer, "proposed_time": "2026-12-10T23:00:00+00:00"}, zone)
    assert utc is not None
    assert utc.when == "2026-12-10T15:00:00-08:00"


def test_a_broken_understanding_llm_config_is_refused_on_upload() -> None:
    pathway = load_demo_pathway()
    pathway["understanding_llm"] = {"base_url": "ftp://nowhere", "temperature": 9}
    with pytest.raises(ValidationFailed) as failed:
        validate_agent_config({"kind": "flow", "pathway": pathway})
    fields = {error.field for error in failed.value.errors}
    assert {
        "agent.pathway.understanding_llm.model",
        "agent.pathway.understanding_llm.base_url",
        "agent.pathway.understanding_llm.temperature",
    } <= fields
