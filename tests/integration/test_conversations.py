"""Conversations: opened by sends, joined by inbound texts, listed, shown, updated, ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.conversation_helpers import forget_deliveries, text_in
from tests.integration.helpers import assert_problem, count, jobs_for, problem_fields


@pytest.fixture(autouse=True)
async def _no_lingering_deliveries(gateway: Gateway) -> AsyncIterator[None]:
    yield
    await forget_deliveries(gateway)


PERSON = "+14155553201"


async def _send(gateway: Gateway, **payload: Any) -> dict[str, Any]:
    response = await gateway.client.post("/v1/messages", json=payload)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def _conversation(gateway: Gateway, conversation_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"/v1/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_send_opens_a_conversation_that_replies_and_later_sends_join(
    gateway: Gateway,
) -> None:
    first = await _send(
        gateway,
        to=PERSON,
        body="Hi, your table is ready",
        conversation={"context": "restaurant", "metadata": {"order": "A17"}},
    )
    assert first["conversation_id"].startswith("conv_")
    reply = await text_in(gateway, PERSON, "on my way")
    second = await _send(gateway, to=PERSON, body="See you soon")
    assert reply["conversation_id"] == first["conversation_id"]
    assert second["conversation_id"] == first["conversation_id"]

    shown = await _conversation(gateway, first["conversation_id"])
    assert shown["status"] == "open"
    assert shown["agent_number"] == "+14155550100"
    assert shown["user_number"] == PERSON
    assert shown["channel"] == "sms"
    assert shown["metadata"] == {"order": "A17"}
    assert shown["settings"]["context"] == "restaurant"
    assert [m["body"] for m in shown["messages"]] == [
        "Hi, your table is ready",
        "on my way",
        "See you soon",
    ]
    assert [m["direction"] for m in shown["messages"]] == ["outbound", "inbound", "outbound"]
    assert (
        await count(
            gateway,
            tables.conversations,
            tables.conversations.c.project_id == gateway.project_id,
        )
        == 1
    )


async def test_settings_persist_until_replaced(gateway: Gateway) -> None:
    first = await _send(
        gateway,
        to=PERSON,
        body="one",
        conversation={"context": "first", "task_context": "task", "metadata": {"a": 1}},
    )
    await _send(gateway, to=PERSON, body="two", conversation={"context": "second"})
    await _send(gateway, to=PERSON, body="three")
    shown = await _conversation(gateway, first["conversation_id"])
    assert shown["settings"]["context"] == "second"
    assert shown["settings"]["task_context"] == "task"
    assert shown["metadata"] == {"a": 1}


async def test_new_conversation_archives_the_open_one(gateway: Gateway) -> None:
    first = await _send(gateway, to=PERSON, body="old topic")
    fresh = await _send(gateway, to=PERSON, body="new topic", new_conversation=True)
    assert fresh["conversation_id"] != first["conversation_id"]
    old = await _conversation(gateway, first["conversation_id"])
    assert old["status"] == "ended"
    assert old["end_reason"] == "new_conversation"
    assert old["ended_at"] is not None
    reply = await text_in(gateway, PERSON, "which one?")
    assert reply["conversation_id"] == fresh["conversation_id"]


async def test_inbound_without_a_conversation_starts_one(gateway: Gateway) -> None:
    message = await text_in(gateway, "+14155553202", "hello, who is this?")
    shown = await _conversation(gateway, message["conversation_id"])
    assert shown["status"] == "open"
    assert shown["user_number"] == "+14155553202"
    assert [m["id"] for m in shown["messages"]] == [message["id"]]


async def test_list_filters_and_cursor_pagination(gateway: Gateway) -> None:
    ids = []
    for i in range(5):
        sent = await _send(gateway, to=f"+1415555330{i}", body="hi")
        ids.append(sent["conversation_id"])
    await gateway.client.post(f"/v1/conversations/{ids[0]}/end", json={"outcome": "done"})

    page = (await gateway.client.get("/v1/conversations", params={"limit": 2})).json()
    assert [c["id"] for c in page["data"]] == [ids[4], ids[3]]
    rest = (
        await gateway.client.get(
            "/v1/conversations", params={"limit": 10, "cursor": page["next_cursor"]}
        )
    ).json()
    assert [c["id"] for c in rest["data"]] == [ids[2], ids[1], ids[0]]
    assert rest["next_cursor"] is None

    ended = (await gateway.client.get("/v1/conversations", params={"status": "ended"})).json()
    assert [c["id"] for c in ended["data"]] == [ids[0]]
    by_outcome = (await gateway.client.get("/v1/conversations", params={"outcome": "done"})).json()
    assert [c["id"] for c in by_outcome["data"]] == [ids[0]]
    by_user = (
        await gateway.client.get("/v1/conversations", params={"user_number": "+1 415 555 3302"})
    ).json()
    assert [c["id"] for c in by_user["data"]] == [ids[2]]
    by_agent = (
        await gateway.client.get("/v1/conversations", params={"agent_number": "+14155550100"})
    ).json()
    assert len(by_agent["data"]) == 5
    bad = await gateway.client.get("/v1/conversations", params={"status": "archived"})
    assert bad.status_code == 422


async def test_patch_merges_metadata_and_end_records_outcome(gateway: Gateway) -> None:
    sent = await _send(gateway, to=PERSON, body="hi", conversation={"metadata": {"a": 1, "b": 2}})
    cid = sent["conversation_id"]
    patched = await gateway.client.patch(
        f"/v1/conversations/{cid}", json={"metadata": {"b": None, "c": 3}, "context": "vip"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"] == {"a": 1, "c": 3}
    assert patched.json()["settings"]["context"] == "vip"

    ended = await gateway.client.post(
        f"/v1/conversations/{cid}/end", json={"outcome": "sold", "extracted": {"qty": 2}}
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    assert ended.json()["outcome"] == "sold"
    assert ended.json()["extracted"] == {"qty": 2}
    # The next text after an ended conversation opens a new one.
    again = await _send(gateway, to=PERSON, body="hi again")
    assert again["conversation_id"] != cid


async def test_unknown_conversation_is_404_and_bad_patch_is_422(gateway: Gateway) -> None:
    missing = await gateway.client.get("/v1/conversations/conv_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert_problem(missing, 404, "not_found")
    sent = await _send(gateway, to=PERSON, body="hi")
    bad = await gateway.client.patch(
        f"/v1/conversations/{sent['conversation_id']}", json={"colour": "red"}
    )
    assert bad.status_code == 422


async def test_warning_not_shorter_than_timeout_is_invalid_timeout_config(
    gateway: Gateway,
) -> None:
    response = await gateway.client.post(
        "/v1/messages",
        json={
            "to": PERSON,
            "body": "hi",
            "conversation": {"timeout_seconds": 60, "warning_seconds": 60},
        },
    )
    body = assert_problem(response, 422, "invalid_timeout_config")
    assert "conversation.warning_seconds" in problem_fields(body)
    batch = await gateway.client.post(
        "/v1/batches",
        json={
            "recipients": [PERSON],
            "body": "hi",
            "conversation": {"timeout_seconds": 30, "warning_seconds": 45},
        },
    )
    assert_problem(batch, 422, "invalid_timeout_config")
    assert (
        await count(gateway, tables.messages, tables.messages.c.project_id == gateway.project_id)
        == 0
    )
    # A project default applies too: the project's timeout under the send's warning.
    patched = await gateway.client.patch(
        "/v1/project", json={"settings": {"conversation": {"timeout_seconds": 100}}}
    )
    assert patched.status_code == 200, patched.text
    over = await gateway.client.post(
        "/v1/messages",
        json={"to": PERSON, "body": "hi", "conversation": {"warning_seconds": 120}},
    )
    assert_problem(over, 422, "invalid_timeout_config")
    bad_default = await gateway.client.patch(
        "/v1/project",
        json={"settings": {"conversation": {"timeout_seconds": 10, "warning_seconds": 20}}},
    )
    assert_problem(bad_default, 422, "validation_failed")


async def test_batch_opens_one_conversation_per_recipient(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/batches",
        json={
            "recipients": ["+14155553401", "+14155553402", "+14155553401"],
            "body": "hello",
            "conversation": {"metadata": {"campaign": "spring"}},
        },
    )
    assert response.status_code == 202, response.text
    listed = (await gateway.client.get("/v1/conversations")).json()["data"]
    assert sorted(c["user_number"] for c in listed) == ["+14155553401", "+14155553402"]
    assert all(c["metadata"] == {"campaign": "spring"} for c in listed)
    messages = (await gateway.client.get(f"/v1/batches/{response.json()['id']}/messages")).json()[
        "data"
    ]
    by_person: dict[str, set[str]] = {}
    for message in messages:
        by_person.setdefault(message["to"], set()).add(message["conversation_id"])
    assert all(len(v) == 1 for v in by_person.values())


async def test_webhook_context_has_conversation_and_history(gateway: Gateway) -> None:
    from agentsms.core.conversations import webhook_context

    sent = await _send(
        gateway,
        to=PERSON,
        body="hi",
        conversation={"webhook_url": "https://hooks.example.com/x", "metadata": {"k": "v"}},
    )
    await text_in(gateway, PERSON, "hello back")
    async with gateway.db.read() as conn:
        context = await webhook_context(conn, sent["conversation_id"])
    assert context is not None
    assert context["conversation"]["id"] == sent["conversation_id"]
    assert context["conversation"]["metadata"] == {"k": "v"}
    assert [h["body"] for h in context["recent_history"]] == ["hi", "hello back"]
    assert [h["role"] for h in context["recent_history"]] == ["agent", "person"]
    assert context["webhook_url"] == "https://hooks.example.com/x"
    assert await jobs_for(gateway, sent["conversation_id"]) == []


async def test_webhook_contexts_of_many_conversations_match_one_at_a_time(
    gateway: Gateway,
) -> None:
    """The batched read gives each conversation what the single read gives: its own newest
    ``HISTORY_FOR_WEBHOOKS`` messages, oldest first, and leaves unknown ids out."""
    from agentsms.core.conversations import (
        HISTORY_FOR_WEBHOOKS,
        webhook_context,
        webhook_contexts,
    )

    long_one = await _send(gateway, to="+14155553211", body="long 0")
    for i in range(1, HISTORY_FOR_WEBHOOKS + 3):
        await text_in(gateway, "+14155553211", f"long {i}")
    short_one = await _send(gateway, to="+14155553212", body="short 0")
    await text_in(gateway, "+14155553212", "short 1")
    ids = [str(long_one["conversation_id"]), str(short_one["conversation_id"])]
    async with gateway.db.read() as conn:
        many = await webhook_contexts(conn, [*ids, "conv_unknown", ids[0]])
        one_by_one = {cid: await webhook_context(conn, cid) for cid in ids}
    assert sorted(many) == sorted(ids)
    assert many == one_by_one
    long_history = [h["body"] for h in many[ids[0]]["recent_history"]]
    assert long_history == [f"long {i}" for i in range(3, HISTORY_FOR_WEBHOOKS + 3)]
    assert [h["body"] for h in many[ids[1]]["recent_history"]] == ["short 0", "short 1"]


async def test_concurrent_first_sends_share_one_conversation(gateway: Gateway) -> None:
    person = "+14155553501"
    responses = await asyncio.gather(
        *(
            gateway.client.post("/v1/messages", json={"to": person, "body": f"text {i}"})
            for i in range(6)
        )
    )
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
    assert len({r.json()["conversation_id"] for r in responses}) == 1
    assert (
        await count(
            gateway,
            tables.conversations,
            tables.conversations.c.project_id == gateway.project_id,
            tables.conversations.c.user_number == person,
        )
        == 1
    )
