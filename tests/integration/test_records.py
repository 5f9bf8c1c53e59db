"""Store records: what the repositories return for messages and conversations is typed,
matches the tables column for column, and reads back what the API wrote."""

from __future__ import annotations

from agentsms.store.records import ConversationRecord, DispatchMessage, MessageRecord
from agentsms.store.repositories import conversations as conversations_repo
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.repositories import optouts as optouts_repo
from agentsms.store.tables import conversations, messages
from agentsms.store.types import utcnow
from tests.compilations import counting_compilations
from tests.conftest import Gateway


def test_record_fields_are_the_table_columns_in_order() -> None:
    assert MessageRecord._fields == tuple(messages.c.keys())
    assert ConversationRecord._fields == tuple(conversations.c.keys())
    assert set(DispatchMessage._fields) <= set(messages.c.keys())


async def test_a_sent_message_reads_back_as_records(gateway: Gateway) -> None:
    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155552671",
            "body": "typed",
            "metadata": {"order": "42"},
            "conversation": {"metadata": {"topic": "records"}},
        },
    )
    assert sent.status_code == 202, sent.text
    body = sent.json()
    async with gateway.db.read() as conn:
        message = await messages_repo.get_message(conn, gateway.project_id, body["id"])
        by_id = await messages_repo.messages_by_ids(conn, [body["id"]])
        dispatch = await messages_repo.dispatch_rows(conn, [body["id"]])
        conversation = await conversations_repo.get(
            conn, gateway.project_id, body["conversation_id"]
        )
        history = await conversations_repo.messages_of(conn, body["conversation_id"])
    assert isinstance(message, MessageRecord)
    assert by_id == {body["id"]: message}
    assert (message.id, message.body, message.to_number) == (body["id"], "typed", "+14155552671")
    assert message.metadata == {"order": "42"}
    assert message.status == body["status"] == "queued"
    assert message.in_flight is False
    assert message.created_at.tzinfo is not None
    assert message.as_dict()["conversation_id"] == body["conversation_id"]
    assert MessageRecord.from_mapping(message.as_dict()) == message

    row = dispatch[body["id"]]
    assert isinstance(row, DispatchMessage)
    assert {name: getattr(row, name) for name in row._fields} == {
        name: getattr(message, name) for name in row._fields
    }

    assert isinstance(conversation, ConversationRecord)
    assert conversation.id == body["conversation_id"]
    assert conversation.metadata == {"topic": "records"}
    assert conversation.agent_paused is False
    assert conversation.status == "open"
    assert [m.id for m in history] == [message.id]


async def test_active_by_keys_with_opt_out_tells_who_opted_out(gateway: Gateway) -> None:
    person = "+14155552672"
    sent = await gateway.client.post("/v1/messages", json={"to": person, "body": "hi"})
    assert sent.status_code == 202, sent.text
    async with gateway.db.write() as conn:
        conversation = await conversations_repo.get(
            conn, gateway.project_id, sent.json()["conversation_id"]
        )
        assert conversation is not None
        assert conversation.thread_key is not None
        key = conversation.thread_key
        before = await conversations_repo.active_by_keys_with_opt_out(conn, [key])
        # The opt-out row alone (the service would also end the conversation).
        await optouts_repo.record(conn, gateway.project_id, person, "STOP", utcnow())
        after = await conversations_repo.active_by_keys_with_opt_out(conn, [key])
        plain = await conversations_repo.active_by_keys(conn, [key, "no|such|thread|sms"])
    assert before == {key: (conversation, False)}
    assert after == {key: (conversation, True)}
    assert plain == {key: conversation}


async def test_recent_messages_of_several_conversations_read_each_once(gateway: Gateway) -> None:
    """Each of the conversations asked for keeps its own newest messages, oldest first, none
    twice; a conversation never asked for or unknown is not in the answer; and one
    statement shape serves any number of conversations (compiled at the first)."""
    conversation_ids: list[str] = []
    for n in range(4):
        sent = await gateway.client.post(
            "/v1/messages",
            json={"to": f"+1415555270{n}", "body": f"first {n}", "conversation": {}},
        )
        assert sent.status_code == 202, sent.text
        conversation_ids.append(sent.json()["conversation_id"])
        for extra in range(n):
            more = await gateway.client.post(
                f"/v1/conversations/{sent.json()['conversation_id']}/messages",
                json={"body": f"more {n}.{extra}"},
            )
            assert more.status_code == 202, more.text
    asked = [conversation_ids[3], conversation_ids[1], "conv_unknown"]
    async with gateway.db.read() as conn:
        recent = await conversations_repo.recent_messages(conn, asked, limit=2)
        with counting_compilations(gateway.db) as compiled:
            for count in (1, 2, 3, 4):
                await conversations_repo.recent_messages(conn, conversation_ids[:count], limit=3)
    assert compiled == []
    assert set(recent) == {conversation_ids[3], conversation_ids[1]}
    assert [m.body for m in recent[conversation_ids[3]]] == ["more 3.1", "more 3.2"]
    assert [m.body for m in recent[conversation_ids[1]]] == ["first 1", "more 1.0"]
