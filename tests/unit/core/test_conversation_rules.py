"""Conversation rules without a database: settings precedence, policies, turn history."""

from __future__ import annotations

from datetime import UTC, datetime

from agentsms.core.agent_turns import build_history
from agentsms.core.conversations import (
    channel_family,
    defaults_problem,
    effective_settings,
    thread_key,
    timeout_problem,
)
from agentsms.store.records import MessageRecord


def test_send_settings_beat_the_numbers_which_beat_the_projects() -> None:
    project = {"conversation": {"context": "p", "timeout_seconds": 10, "persona_id": "a"}}
    number = {"conversation": {"context": "n", "persona_id": "b"}}
    merged = effective_settings(project, number, {"context": "s", "persona_id": None})
    assert merged["context"] == "s"
    assert merged["persona_id"] == "b"  # None given at send time does not erase a default
    assert merged["timeout_seconds"] == 10


def test_the_polyai_policy_fills_what_was_not_given() -> None:
    merged = effective_settings({}, {}, {"policy": "polyai"})
    assert merged["warning_seconds"] == 86_400
    assert merged["timeout_seconds"] == 86_400 + 600
    assert merged["engaged_only"] is True
    custom = effective_settings({}, {}, {"policy": "polyai", "warning_seconds": 3600})
    assert custom["warning_seconds"] == 3600


def test_a_warning_must_come_before_the_timeout() -> None:
    assert timeout_problem({"warning_seconds": 5, "timeout_seconds": 10}, "") is None
    problem = timeout_problem({"warning_seconds": 10, "timeout_seconds": 10}, "conversation.")
    assert problem is not None
    assert problem.field == "conversation.warning_seconds"
    assert defaults_problem({"policy": "nope"}) is not None
    assert defaults_problem({"colour": "red"}) is not None
    assert defaults_problem({"timeout_seconds": -1}) is not None
    assert defaults_problem({"timeout_seconds": 30, "persona_id": "x"}) is None


def test_sms_and_mms_share_a_thread() -> None:
    assert channel_family("mms") == "sms"
    assert thread_key("p", "+1", "+2", "mms") == thread_key("p", "+1", "+2", "sms")
    assert thread_key("p", "+1", "+2", "whatsapp") != thread_key("p", "+1", "+2", "sms")


def _message(id_: str, direction: str, body: str) -> MessageRecord:
    blank = dict.fromkeys(MessageRecord._fields)
    fields = {"id": id_, "direction": direction, "body": body, "created_at": datetime.now(UTC)}
    return MessageRecord.from_mapping(blank | fields)


def test_a_turn_sees_earlier_replies_and_not_later_texts() -> None:
    messages = [
        _message("msg_1", "outbound", "hello"),
        _message("msg_2", "inbound", "one"),
        _message("msg_3", "inbound", "two"),
        _message("msg_4", "outbound", "re: one"),
        _message("msg_5", "inbound", "three"),
        _message("msg_6", "outbound", ""),  # an opening still to be written
    ]
    history = build_history(messages, "msg_3", None)
    assert [m.body for m in history] == ["hello", "one", "re: one", "two"]
    assert [m.body for m in build_history(messages, None, "msg_6")] == [
        "hello",
        "one",
        "two",
        "re: one",
        "three",
    ]
