"""The flow agent walking the shipped demo pathway and custom pathways."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.fakes.chat_completions import FakeChatCompletions, ServerThread
from tests.unit.agents.conftest import Chat

from agentsms.agents import AgentFailed, LlmAccess, build_agent, load_demo_pathway
from agentsms.agents.flow import FlowAgent

DEMO = {"kind": "flow", "pathway": load_demo_pathway()}
ANN = {"name": "Ann", "time": "on Tue Dec 2 at 3 PM", "timezone": "America/New_York"}
OPENING = (
    "Hi Ann, this is a reminder of your appointment on Tue Dec 2 at 3 PM. "
    "Reply YES to confirm, R to reschedule, or C to cancel."
)
UNCLEAR = "Sorry, I didn't get that. Reply YES to confirm, R to reschedule, or C to cancel."
ASK_TIME = "No problem. What day and time would work better for you?"
BAD_TIME = (
    "Sorry, I couldn't read a day and time in that. Please reply with something like "
    '"Thursday at 3pm".'
)


def demo_chat(**kwargs: Any) -> Chat:
    return Chat(build_agent(DEMO), metadata=kwargs.pop("metadata", ANN), **kwargs)


async def test_opening_fills_the_templates_from_metadata() -> None:
    chat = demo_chat()
    output = await chat.open()
    assert output.replies == [OPENING]
    assert output.current_node_id == "remind"
    assert output.ending is None
    assert chat.state["node"] == "remind"


async def test_opening_uses_the_pathway_defaults_without_metadata() -> None:
    output = await demo_chat(metadata={}).open()
    assert output.replies[0].startswith(
        "Hi there, this is a reminder of your appointment coming up soon. Reply YES"
    )


@pytest.mark.parametrize(
    "reply",
    ["yes", "YES", "Yes!", "yes please", "👍", "👍🏽", "Confirmed.", "y", "ok see you then"],
)
async def test_confirm(reply: str) -> None:
    chat = demo_chat()
    await chat.open()
    output = await chat.say(reply)
    assert output.replies == ["Thanks Ann, your appointment is confirmed. See you then!"]
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"
    assert output.current_node_id == "confirmed"


@pytest.mark.parametrize("reply", ["C", "c.", "no", "Please cancel it", "I won't make it"])
async def test_cancel(reply: str) -> None:
    chat = demo_chat()
    await chat.open()
    output = await chat.say(reply)
    assert output.ending is not None
    assert output.ending.outcome == "canceled"
    assert output.replies == ["Thanks for letting us know, Ann. Your appointment is canceled."]


async def test_reschedule_asks_for_a_time_then_extracts_it() -> None:
    chat = demo_chat()
    await chat.open()
    output = await chat.say("R")
    assert output.replies == [ASK_TIME]
    assert output.ending is None
    assert output.current_node_id == "ask_new_time"
    output = await chat.say("how about thursday at 3pm")
    assert output.ending is not None
    assert output.ending.outcome == "rescheduled"
    # Sunday 2026-11-29 10:00 in New York; "thursday at 3pm" is 2026-12-03 15:00 there.
    assert output.ending.extracted == {
        "new_time": "2026-12-03T15:00:00-05:00",
        "new_time_text": "Thursday, December 3 at 3:00 PM",
    }
    assert output.replies == [
        "Thanks Ann! We've noted that you'd like to move your appointment to Thursday, "
        "December 3 at 3:00 PM. We'll confirm the new time shortly."
    ]


async def test_reschedule_with_the_time_in_the_same_reply() -> None:
    chat = demo_chat()
    await chat.open()
    output = await chat.say("Can we move it to Friday at 10am instead?")
    assert output.ending is not None
    assert output.ending.outcome == "rescheduled"
    assert output.ending.extracted["new_time"] == "2026-12-04T10:00:00-05:00"


async def test_reschedule_time_in_utc_without_a_timezone() -> None:
    chat = demo_chat(metadata={"name": "Bo"})
    await chat.open()
    await chat.say("reschedule please")
    output = await chat.say("tomorrow at 9:30am")
    assert output.ending is not None
    assert output.ending.extracted["new_time"] == "2026-11-30T09:30:00+00:00"


async def test_a_bare_day_is_extracted_as_a_date() -> None:
    chat = demo_chat()
    await chat.open()
    await chat.say("r")
    output = await chat.say("monday works")
    assert output.ending is not None
    assert output.ending.extracted == {
        "new_time": "2026-11-30",
        "new_time_text": "Monday, November 30",
    }


async def test_unreadable_times_are_asked_again_then_handed_off() -> None:
    chat = demo_chat()
    await chat.open()
    await chat.say("r")
    assert (await chat.say("whenever")).replies == [BAD_TIME]
    assert (await chat.say("dunno")).replies == [BAD_TIME]
    output = await chat.say("idk")
    assert output.ending is not None
    assert output.ending.outcome == "unclear"
    assert output.ending.extracted == {}


async def test_unclear_answer_asks_again_and_a_later_answer_still_counts() -> None:
    chat = demo_chat()
    await chat.open()
    output = await chat.say("hmm not sure yet")
    assert output.replies == [UNCLEAR]
    assert output.ending is None
    assert chat.state["retries"] == 1
    output = await chat.say("yes")
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"


async def test_three_unclear_answers_end_as_unclear_with_a_handoff() -> None:
    chat = demo_chat()
    await chat.open()
    assert (await chat.say("huh")).replies == [UNCLEAR]
    assert (await chat.say("??")).replies == [UNCLEAR]
    output = await chat.say("what")
    assert output.ending is not None
    assert output.ending.outcome == "unclear"
    assert output.replies == ["Thanks Ann. Someone from our team will follow up with you shortly."]
    assert output.current_node_id == "handoff"


async def test_the_callers_greeting_counts_as_the_opening() -> None:
    chat = demo_chat()
    chat.greeting("Your cleaning is tomorrow at 3. Reply YES to confirm.")
    output = await chat.say("yes")
    assert output.replies == ["Thanks Ann, your appointment is confirmed. See you then!"]
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"


async def test_a_person_writing_first_gets_the_opening() -> None:
    chat = demo_chat()
    output = await chat.say("hello?")
    assert output.replies == [OPENING]
    assert output.ending is None
    output = await chat.say("y")
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"


async def test_start_node_id_overrides_the_start() -> None:
    chat = demo_chat(start_node_id="ask_new_time")
    output = await chat.open()
    assert output.replies == [ASK_TIME]
    output = await chat.say("Dec 7 at 11am")
    assert output.ending is not None
    assert output.ending.extracted["new_time"] == "2026-12-07T11:00:00-05:00"


async def test_an_unknown_start_node_fails_without_retry() -> None:
    chat = demo_chat(start_node_id="nope")
    with pytest.raises(AgentFailed) as failed:
        await chat.open()
    assert failed.value.retryable is False
    assert "nope" in str(failed.value)


async def test_after_the_end_the_agent_stays_quiet() -> None:
    chat = demo_chat()
    await chat.open()
    await chat.say("yes")
    output = await chat.say("thanks!")
    assert output.replies == []
    assert output.ending is not None
    assert output.ending.outcome == "confirmed"


# -- custom pathways ----------------------------------------------------------------------


def flow(nodes: list[dict[str, Any]], start: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "flow", "pathway": {"start": start, "nodes": nodes, **extra}}


ORDER = flow(
    [
        {"id": "hello", "type": "say", "text": "Hi {{name | friend}}!", "next": "qty"},
        {
            "id": "qty",
            "type": "ask",
            "text": "How many boxes (1-10)? Or your order code like AB-123.",
            "save_as": "raw",
            "answers": [
                {"regex": r"(?P<code>[A-Z]{2}-\d{3})", "set": {"by": "code"}, "next": "done"},
                {"regex": r"\d", "next": "count"},
            ],
            "unclear": {"text": "Just a number please.", "max_retries": 1, "next": "lost"},
        },
        {
            "id": "count",
            "type": "extract",
            "variable": "boxes",
            "method": "number",
            "next": "size",
            "unclear": {"max_retries": 0, "next": "lost"},
        },
        {
            "id": "size",
            "type": "branch",
            "branches": [
                {"var": "boxes", "gt": 10, "next": "too_many"},
                {"var": "boxes", "gte": 5, "next": "big"},
            ],
            "default": "done",
        },
        {"id": "big", "type": "say", "text": "A big order!", "next": "done"},
        {"id": "too_many", "type": "end", "outcome": "too_many", "text": "Max 10, sorry."},
        {"id": "lost", "type": "end", "outcome": "no_answer"},
        {
            "id": "done",
            "type": "end",
            "outcome": "ordered",
            "text": "Got it: {{boxes | your order}} {{code}}",
        },
    ],
    start="hello",
)


async def test_say_then_ask_sends_two_texts_and_fallback_template() -> None:
    output = await Chat(build_agent(ORDER)).open()
    assert output.replies == [
        "Hi friend!",
        "How many boxes (1-10)? Or your order code like AB-123.",
    ]


@pytest.mark.parametrize(
    ("reply", "outcome", "replies", "extracted"),
    [
        ("3 please", "ordered", ["Got it: 3"], {"raw": "3 please", "boxes": 3}),
        ("7", "ordered", ["A big order!", "Got it: 7"], {"raw": "7", "boxes": 7}),
        ("12", "too_many", ["Max 10, sorry."], {"raw": "12", "boxes": 12}),
        (
            "code ab-123",  # regexes are case-insensitive
            "ordered",
            ["Got it: your order ab-123"],
            {"raw": "code ab-123", "code": "ab-123", "by": "code"},
        ),
    ],
)
async def test_regex_answers_extract_and_branch(
    reply: str, outcome: str, replies: list[str], extracted: dict[str, Any]
) -> None:
    chat = Chat(build_agent(ORDER), metadata={"name": "Sam"})
    await chat.open()
    output = await chat.say(reply)
    assert output.ending is not None
    assert output.ending.outcome == outcome
    assert output.replies == replies
    assert output.ending.extracted == extracted


async def test_custom_unclear_text_and_retry_limit() -> None:
    chat = Chat(build_agent(ORDER))
    await chat.open()
    assert (await chat.say("lots")).replies == ["Just a number please."]
    output = await chat.say("many")
    assert output.ending is not None
    assert output.ending.outcome == "no_answer"


async def test_extraction_schemas_pick_the_reported_variables() -> None:
    chat = Chat(
        build_agent(ORDER),
        extraction_schemas=[{"type": "object", "properties": {"boxes": {"type": "integer"}}}],
    )
    await chat.open()
    output = await chat.say("4")
    assert output.ending is not None
    assert output.ending.extracted == {"boxes": 4}


async def test_branch_on_metadata_and_outcome_template() -> None:
    config = flow(
        [
            {
                "id": "route",
                "type": "branch",
                "branches": [
                    {"var": "metadata.tier", "in": ["gold", "platinum"], "next": "vip"},
                    {"var": "tier", "exists": False, "next": "unknown"},
                ],
                "default": "plain",
            },
            {"id": "vip", "type": "end", "outcome": "vip_{{tier}}", "text": "Welcome back!"},
            {"id": "unknown", "type": "end", "outcome": "no_tier"},
            {"id": "plain", "type": "end", "outcome": "plain"},
        ],
        start="route",
    )
    for metadata, outcome in [
        ({"tier": "Gold"}, "vip_Gold"),
        ({}, "no_tier"),
        ({"tier": "x"}, "plain"),
    ]:
        output = await Chat(build_agent(config), metadata=metadata).open()
        assert output.ending is not None
        assert output.ending.outcome == outcome


# -- webhook nodes ------------------------------------------------------------------------


class SlotService:
    """A customer's booking API on a real local port."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 200

    async def slots(self, request: Request) -> Response:
        self.calls.append(
            {
                "customer": request.path_params["customer"],
                "raw_path": request.scope["raw_path"].decode(),
                "headers": dict(request.headers),
                "body": await request.json(),
            }
        )
        if self.status != 200:
            return JSONResponse({"error": "down"}, self.status)
        return JSONResponse({"slot": {"time": "Wed 9am", "id": 42}, "open": True})


@pytest.fixture(scope="module")
def slot_service() -> Iterator[tuple[SlotService, str]]:
    service = SlotService()
    server = ServerThread(
        Starlette(routes=[Route("/slots/{customer}", service.slots, methods=["POST"])])
    )
    server.start()
    yield service, server.url
    server.stop()


def webhook_flow(url: str, **node: Any) -> dict[str, Any]:
    return flow(
        [
            {
                "id": "lookup",
                "type": "webhook",
                "url": url + "/slots/{{customer}}",
                "headers": {"x-api-key": "{{api_key}}"},
                "next": "offer",
                **node,
            },
            {
                "id": "offer",
                "type": "end",
                "outcome": "offered",
                "text": "{{slot_time}} ok? {{open}}",
            },
            {
                "id": "sorry",
                "type": "end",
                "outcome": "lookup_failed",
                "text": "Sorry, try later.",
                "entry": True,
            },
        ],
        start="lookup",
        variables={"api_key": "k-1"},
    )


async def test_webhook_node_sends_variables_and_saves_the_answer(
    slot_service: tuple[SlotService, str],
) -> None:
    service, url = slot_service
    service.calls.clear()
    service.status = 200
    config = webhook_flow(url, save={"slot_time": "slot.time", "open": "open"})
    chat = Chat(build_agent(config), metadata={"customer": "c 7&x"})
    output = await chat.open()
    assert output.replies == ["Wed 9am ok? true"]
    assert output.ending is not None
    assert output.ending.extracted == {"slot_time": "Wed 9am", "open": True}
    [call] = service.calls
    assert call["raw_path"] == "/slots/c%207%26x"  # template values are URL-quoted
    assert call["customer"] == "c 7&x"
    assert call["headers"]["x-api-key"] == "k-1"
    assert call["body"] == {
        "conversation_id": "conv_test",
        "node_id": "lookup",
        "variables": {},
        "metadata": {"customer": "c 7&x"},
    }


async def test_webhook_node_merges_an_object_answer_without_save(
    slot_service: tuple[SlotService, str],
) -> None:
    service, url = slot_service
    service.status = 200
    output = await Chat(build_agent(webhook_flow(url)), metadata={"customer": "a"}).open()
    assert output.ending is not None
    assert output.ending.extracted == {"slot": {"time": "Wed 9am", "id": 42}, "open": True}


async def test_webhook_node_failure_goes_to_on_error(slot_service: tuple[SlotService, str]) -> None:
    service, url = slot_service
    service.status = 503
    config = webhook_flow(url, on_error="sorry")
    output = await Chat(build_agent(config), metadata={"customer": "a"}).open()
    assert output.ending is not None
    assert output.ending.outcome == "lookup_failed"
    assert output.replies == ["Sorry, try later."]


async def test_webhook_node_failure_without_on_error_is_retryable(
    slot_service: tuple[SlotService, str],
) -> None:
    service, url = slot_service
    service.status = 500
    with pytest.raises(AgentFailed) as failed:
        await Chat(build_agent(webhook_flow(url)), metadata={"customer": "a"}).open()
    assert failed.value.retryable is True
    assert "500" in str(failed.value)


# -- llm nodes ----------------------------------------------------------------------------


async def test_llm_node_takes_the_turn_and_routes_its_outcome(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], llm_access: LlmAccess
) -> None:
    config = flow(
        [
            {
                "id": "q",
                "type": "ask",
                "text": "Any questions before your visit, {{name}}?",
                "answers": [{"choices": ["no", "nope"], "next": "bye"}],
                "next": "ai",
            },
            {
                "id": "ai",
                "type": "llm",
                "agent": {k: v for k, v in llm_config.items() if k != "kind"},
                "task": "Answer questions about the visit of {{name}}.",
                "routes": {"book": "booked"},
            },
            {"id": "booked", "type": "end", "outcome": "booked", "text": "Booked!"},
            {"id": "bye", "type": "end", "outcome": "no_questions"},
        ],
        start="q",
    )
    chat = Chat(
        build_agent(copy.deepcopy(config), llm=llm_access),
        metadata={"name": "Ann"},
        task_context="Visit on Tuesday.",
    )
    await chat.open()
    chat_server.reply("Parking is free behind the building.")
    output = await chat.say("Where do I park?")
    assert output.replies == ["Parking is free behind the building."]
    assert output.current_node_id == "ai"
    [request] = chat_server.requests
    assert "Visit on Tuesday.\n\nAnswer questions about the visit of Ann." in request.system_prompt
    assert request.messages[-1] == {"role": "user", "content": "Where do I park?"}

    chat_server.end("book", {"day": "Tuesday"})
    output = await chat.say("Great, book me for Tuesday")
    assert output.replies == ["Booked!"]
    assert output.ending is not None
    assert output.ending.outcome == "booked"
    assert output.ending.extracted == {"day": "Tuesday"}


ZIP = flow(
    [
        {
            "id": "zip",
            "type": "extract",
            "variable": "zip",
            "method": "regex",
            "pattern": r"\b(\d{5})\b",
            "next": "done",
            "unclear": {"text": "Please send the 5 digits of your ZIP code.", "next": "give_up"},
        },
        {"id": "done", "type": "end", "outcome": "zip_given", "text": "Thanks! {{zip}} it is."},
        {"id": "give_up", "type": "end", "outcome": "no_zip"},
    ],
    start="zip",
)


async def test_the_callers_question_answered_by_an_extract_start_node() -> None:
    chat = Chat(build_agent(ZIP))
    chat.greeting("What's your ZIP code?")
    output = await chat.say("it's 10001 thanks")
    assert output.replies == ["Thanks! 10001 it is."]
    assert output.ending is not None
    assert output.ending.extracted == {"zip": "10001"}


async def test_an_extract_start_node_asks_again_once_per_unusable_reply() -> None:
    chat = Chat(build_agent(ZIP))
    chat.greeting("What's your ZIP code?")
    assert (await chat.say("not sure")).replies == ["Please send the 5 digits of your ZIP code."]
    assert chat.state["retries"] == 1
    assert (await chat.say("hmm")).replies == ["Please send the 5 digits of your ZIP code."]
    output = await chat.say("no idea")
    assert output.ending is not None
    assert output.ending.outcome == "no_zip"


async def test_llm_node_ending_outside_the_routes_ends_the_flow_with_its_variables(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], llm_access: LlmAccess
) -> None:
    config = flow(
        [
            {
                "id": "name",
                "type": "ask",
                "text": "Your name?",
                "save_as": "person",
                "next": "ai",
            },
            {"id": "ai", "type": "llm", "agent": llm_config},
        ],
        start="name",
    )
    chat = Chat(build_agent(config, llm=llm_access), dispositions=["done", "escalated"])
    await chat.open()
    chat_server.end("escalated", {"reason": "angry"}, message="A colleague will call you.")
    output = await chat.say("Kim")
    assert output.replies == ["A colleague will call you."]
    assert output.ending is not None
    assert output.ending.outcome == "escalated"
    assert output.ending.extracted == {"person": "Kim", "reason": "angry"}
    assert output.current_node_id == "ai"
    [request] = chat_server.requests
    assert '"person": "Kim"' in request.system_prompt  # flow variables reach the model


async def test_llm_node_failure_fails_the_turn(
    chat_server: FakeChatCompletions, llm_config: dict[str, Any], llm_access: LlmAccess
) -> None:
    config = flow([{"id": "ai", "type": "llm", "agent": llm_config}], start="ai")
    chat_server.fail(429)
    with pytest.raises(AgentFailed) as failed:
        await Chat(build_agent(config, llm=llm_access)).open()
    assert failed.value.retryable is True


async def test_times_are_read_in_the_zone_of_the_persons_number() -> None:
    # No timezone in the metadata: a San Francisco number's "4pm" is 4 PM Pacific.
    chat = demo_chat(metadata={"name": "Ann"}, person_number="+14155550123")
    await chat.open()
    output = await chat.say("can we do thursday at 4pm instead?")
    assert output.ending is not None
    assert output.ending.outcome == "rescheduled"
    assert output.ending.extracted == {
        "new_time": "2026-12-03T16:00:00-08:00",
        "new_time_text": "Thursday, December 3 at 4:00 PM",
    }
    assert "Thursday, December 3 at 4:00 PM" in output.replies[0]


async def test_the_metadata_timezone_wins_over_the_number() -> None:
    chat = demo_chat(person_number="+14155550123")  # ANN says America/New_York
    await chat.open()
    output = await chat.say("not tomorrow, how about Thursday at 2")
    assert output.ending is not None
    assert output.ending.extracted["new_time"] == "2026-12-03T14:00:00-05:00"


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("I'll be there", "confirmed"),
        ("that works", "confirmed"),
        ("yess", "confirmed"),
        ("can't make it", "canceled"),
        ("I don't need it anymore", "canceled"),
        ("any chance of 9:30 instead", "rescheduled"),
        ("Where do I park?", "question"),
    ],
)
async def test_the_demo_pathway_understands_ordinary_replies(reply: str, outcome: str) -> None:
    chat = demo_chat()
    await chat.open()
    output = await chat.say(reply)
    assert output.ending is not None
    assert output.ending.outcome == outcome


async def test_cancel_after_being_asked_for_a_new_time() -> None:
    chat = demo_chat()
    await chat.open()
    assert (await chat.say("need to reschedule")).replies == [ASK_TIME]
    output = await chat.say("actually just cancel it please")
    assert output.ending is not None
    assert output.ending.outcome == "canceled"


@pytest.mark.parametrize(
    ("reply", "outcome"), [("C please", "canceled"), ("y thanks!", "confirmed")]
)
async def test_a_choice_with_polite_words_around_it(reply: str, outcome: str) -> None:
    chat = demo_chat()
    await chat.open()
    output = await chat.say(reply)
    assert output.ending is not None
    assert output.ending.outcome == outcome


async def test_an_agent_built_again_from_the_same_config_reads_the_same_pathway() -> None:
    """A conversation builds its agent every turn: the pathway is validated once per config,
    and a changed config gets its own (never the old one's)."""
    first, again = build_agent(copy.deepcopy(DEMO)), build_agent(copy.deepcopy(DEMO))
    assert isinstance(first, FlowAgent)
    assert isinstance(again, FlowAgent)
    assert again.pathway is first.pathway
    changed = copy.deepcopy(DEMO)
    changed["pathway"]["variables"] = {**changed["pathway"].get("variables", {}), "x": "y"}
    other = build_agent(changed)
    assert isinstance(other, FlowAgent)
    assert other.pathway is not first.pathway
    assert other.pathway.variables["x"] == "y"
    assert "x" not in first.pathway.variables
    # Still the same agent: its opening is unchanged.
    output = await Chat(again, metadata=ANN).open()
    assert output.replies == (await Chat(first, metadata=ANN).open()).replies
