"""Agents in conversations: the demo flow end to end through the simulator, ordered turns,
openings written by the agent, failures handed to a human, takeover, personas and pathways."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agentsms.agents import load_demo_pathway
from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    REMINDED,
    RESCHEDULE,
    agent_server,
    create_persona,
    demo_persona,
    forget_deliveries,
    insecure_gateway,
    script_replies,
    send_with_webhook_agent,
    start_reminder,
    text_in,
    wait_for,
    webhook_agent,
)
from tests.integration.helpers import assert_problem, problem_fields


async def test_demo_pathway_runs_a_whole_conversation_through_the_simulator(
    gateway: Gateway,
) -> None:
    person = "+14155554101"
    hook = await gateway.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.example.com/ended", "event_types": ["conversation.ended"]},
    )
    assert hook.status_code == 201, hook.text
    persona = await demo_persona(gateway, name="Reminders")
    sent = await start_reminder(gateway, person, persona["id"])
    assert sent["body"] == ""  # the agent writes it
    cid = sent["conversation_id"]

    shown = await wait_for(gateway, cid, lambda c: c["status"] == "ended")
    assert shown["outcome"] == "rescheduled"
    assert shown["end_reason"] == "agent"
    assert "new_time" in shown["extracted"]
    texts = [(m["direction"], m["body"]) for m in shown["messages"]]
    assert texts[0][0] == "outbound"
    assert texts[0][1].startswith("Hi Ana, this is a reminder of your appointment on Tue Dec 2")
    assert texts[1] == ("inbound", RESCHEDULE)
    assert texts[2][0] == "outbound"
    assert "move your appointment" in texts[2][1]
    assert len(texts) == 3
    assert shown["messages"][0]["id"] == sent["id"]
    log = (await gateway.client.get("/v1/simulator/log", params={"to": person})).json()
    assert [row["body"] for row in log["data"]] == [texts[0][1], texts[2][1]]

    query = select(tables.webhook_events.c.payload).where(
        tables.webhook_events.c.project_id == gateway.project_id,
        tables.webhook_events.c.type == "conversation.ended",
    )
    async with gateway.db.read() as conn:
        (ended,) = [dict(row[0]) for row in (await conn.execute(query)).all()]
    assert ended["data"]["outcome"] == "rescheduled"
    assert ended["data"]["extracted"] == shown["extracted"]
    assert ended["data"]["metadata"] == REMINDED
    assert [h["role"] for h in ended["data"]["recent_history"]] == ["agent", "person", "agent"]
    await forget_deliveries(gateway)


async def test_a_bodyless_send_without_an_agent_is_refused(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/messages", json={"to": "+14155554102"})
    body = assert_problem(response, 422, "validation_failed")
    assert problem_fields(body) == {"body": "must not be empty unless media_urls is given"}


async def test_pathways_are_validated_on_upload_and_usable_by_id(gateway: Gateway) -> None:
    broken = load_demo_pathway()
    broken["nodes"][0]["answers"][0]["next"] = "nowhere"
    response = await gateway.client.post(
        "/v1/pathways", json={"name": "broken", "document": broken}
    )
    assert response.status_code == 422, response.text
    fields = problem_fields(response.json())
    assert any(f.startswith("document.") and "remind" in f for f in fields), fields

    created = await gateway.client.post(
        "/v1/pathways", json={"name": "reminder", "document": load_demo_pathway()}
    )
    assert created.status_code == 201, created.text
    pathway = created.json()
    assert [v["version"] for v in pathway["versions"]] == [1]
    again = await gateway.client.post(
        f"/v1/pathways/{pathway['id']}/versions", json={"document": load_demo_pathway()}
    )
    assert [v["version"] for v in again.json()["versions"]] == [1, 2]

    person = "+14155554103"
    await script_replies(gateway, person, "yes")
    sent = await gateway.client.post(
        "/v1/messages",
        json={"to": person, "conversation": {"pathway_id": pathway["id"], "pathway_version": 2}},
    )
    assert sent.status_code == 202, sent.text
    shown = await wait_for(gateway, sent.json()["conversation_id"], lambda c: c["outcome"])
    assert shown["outcome"] == "confirmed"
    missing = await gateway.client.post(
        "/v1/messages", json={"to": person, "conversation": {"pathway_id": "pw_nothing"}}
    )
    assert "conversation.pathway_id" in problem_fields(missing.json())


async def test_persona_versions_draft_and_production(gateway: Gateway) -> None:
    pathway = load_demo_pathway()
    persona = await create_persona(gateway, name="P", agent={"kind": "flow", "pathway": pathway})
    assert persona["production_version"] is None
    assert persona["alias"] >= 1
    no_prod = await gateway.client.post(
        "/v1/messages", json={"to": "+14155554104", "conversation": {"persona_id": persona["id"]}}
    )
    assert "conversation.persona_version" in problem_fields(no_prod.json())

    changed = dict(pathway)
    changed["nodes"] = [dict(n) for n in pathway["nodes"]]
    changed["nodes"][0]["text"] = "Draft greeting for {{name}}. Reply YES, R or C."
    versions = await gateway.client.post(
        f"/v1/personas/{persona['id']}/versions",
        json={"agent": {"kind": "flow", "pathway": changed}},
    )
    assert [v["version"] for v in versions.json()["versions"]] == [1, 2]
    published = await gateway.client.post(f"/v1/personas/{persona['id']}/versions/1/publish")
    assert published.json()["production_version"] == 1
    by_alias = await gateway.client.get(f"/v1/personas/{persona['alias']}")
    assert by_alias.json()["id"] == persona["id"]

    production = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155554105", "conversation": {"persona_id": persona["alias"]}},
    )
    by_persona = await gateway.client.get("/v1/conversations", params={"persona_id": persona["id"]})
    assert [c["id"] for c in by_persona.json()["data"]] == [production.json()["conversation_id"]]
    draft = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155554106",
            "conversation": {"persona_id": persona["id"], "persona_version": "draft"},
        },
    )
    await gateway.drain()
    first = (await gateway.client.get(f"/v1/messages/{production.json()['id']}")).json()
    second = (await gateway.client.get(f"/v1/messages/{draft.json()['id']}")).json()
    assert first["body"].startswith("Hi there, this is a reminder")
    assert second["body"].startswith("Draft greeting for there.")
    bad = await gateway.client.post(
        "/v1/personas", json={"name": "x", "agent": {"kind": "flow", "pathway": {"nodes": []}}}
    )
    assert bad.status_code == 422


async def test_persona_settings_override_the_persona(gateway: Gateway) -> None:
    persona = await demo_persona(gateway, name="Q")
    other = load_demo_pathway()
    other["nodes"][0]["text"] = "Override says hi. Reply YES, R or C."
    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155554107",
            "conversation": {
                "persona_id": persona["id"],
                "persona_settings": {"pathway": other},
            },
        },
    )
    assert sent.status_code == 202, sent.text
    await gateway.drain()
    message = (await gateway.client.get(f"/v1/messages/{sent.json()['id']}")).json()
    assert message["body"] == "Override says hi. Reply YES, R or C."


async def test_dispositions_and_extraction_schemas(gateway: Gateway) -> None:
    made = await gateway.client.post(
        "/v1/dispositions", json={"name": "confirmed", "description": "will come"}
    )
    assert made.status_code == 201, made.text
    duplicate = await gateway.client.post("/v1/dispositions", json={"name": "confirmed"})
    assert duplicate.status_code == 409
    schema = await gateway.client.post(
        "/v1/extraction-schemas",
        json={"name": "booking", "schema": {"type": "object", "properties": {"day": {}}}},
    )
    assert schema.status_code == 201, schema.text
    assert schema.json()["schema"]["type"] == "object"
    bad = await gateway.client.post(
        "/v1/extraction-schemas", json={"name": "x", "schema": {"type": "string"}}
    )
    assert "schema" in problem_fields(bad.json())
    listed = (await gateway.client.get("/v1/dispositions")).json()["data"]
    assert [d["name"] for d in listed] == ["confirmed"]
    unknown = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155554108",
            "body": "hi",
            "conversation": {
                "disposition_ids": [made.json()["id"], "disp_missing"],
                "citation_schema_ids": [schema.json()["id"]],
            },
        },
    )
    assert list(problem_fields(unknown.json())) == ["conversation.disposition_ids[1]"]


# --- a customer's webhook agent on a real local socket --------------------------------------


async def test_several_texts_at_once_get_one_reply_each_in_order(gateway: Gateway) -> None:
    person = "+14155554201"
    with agent_server() as (server, url):
        async with insecure_gateway(gateway) as gw:
            sent = await send_with_webhook_agent(gw, person, url, "Hello from the shop")
            for text in ("one", "two", "three"):
                await text_in(gw, person, text)
            cid = sent["conversation_id"]
            shown = await wait_for(gw, cid, lambda c: len(c["messages"]) >= 7)
            bodies = [m["body"] for m in shown["messages"]]
            assert bodies[:4] == ["Hello from the shop", "one", "two", "three"]
            assert bodies[4:] == ["re: one", "re: two", "re: three"]
            assert len(server.turns) == 3
            # Each turn saw the earlier replies and not the texts still waiting.
            assert [h["text"] for h in server.turns[1]["history"]] == [
                "Hello from the shop",
                "one",
                "re: one",
                "two",
            ]


async def test_a_failing_agent_is_retried_then_needs_attention(gateway: Gateway) -> None:
    person = "+14155554202"
    with agent_server() as (server, url):
        server.status = 503
        async with insecure_gateway(gateway) as gw:
            sent = await send_with_webhook_agent(gw, person, url)
            cid = sent["conversation_id"]
            await text_in(gw, person, "hey")
            shown = await wait_for(gw, cid, lambda c: c["status"] == "needs_attention")
            assert len(server.turns) == 3  # agent_max_attempts
            assert [m["body"] for m in shown["messages"]] == ["Hi", "hey"]

            # A human answers, then hands back to the agent, which answers the next text.
            human = await gw.client.post(
                f"/v1/conversations/{cid}/messages", json={"body": "A person here, sorry!"}
            )
            assert human.status_code == 202, human.text
            paused = (await gw.client.get(f"/v1/conversations/{cid}")).json()
            assert paused["agent_paused"] is True
            server.status = 200
            resumed = await gw.client.post(f"/v1/conversations/{cid}/agent", json={"paused": False})
            assert resumed.json()["status"] == "open"
            assert resumed.json()["agent_paused"] is False
            await text_in(gw, person, "thanks")
            shown = await wait_for(gw, cid, lambda c: c["messages"][-1]["body"] == "re: thanks")
            assert [m["body"] for m in shown["messages"]][-2:] == ["thanks", "re: thanks"]


async def test_a_paused_agent_stays_quiet(gateway: Gateway) -> None:
    person = "+14155554203"
    with agent_server() as (server, url):
        async with insecure_gateway(gateway) as gw:
            sent = await send_with_webhook_agent(gw, person, url)
            cid = sent["conversation_id"]
            paused = await gw.client.post(f"/v1/conversations/{cid}/agent", json={"paused": True})
            assert paused.json()["agent_paused"] is True
            await text_in(gw, person, "hey")
            await gw.drain()
            assert server.turns == []
            ended = await gw.client.post(f"/v1/conversations/{cid}/end")
            assert ended.json()["status"] == "ended"
            refused = await gw.client.post(f"/v1/conversations/{cid}/agent", json={"paused": False})
            assert refused.status_code == 422


@pytest.mark.parametrize("word", ["STOP"])
async def test_the_agent_never_sees_an_opt_out(gateway: Gateway, word: str) -> None:
    person = "+14155554204"
    with agent_server() as (server, url):
        async with insecure_gateway(gateway) as gw:
            sent = await send_with_webhook_agent(gw, person, url)
            await text_in(gw, person, word)
            await gw.drain()
            assert server.turns == []
            shown = (await gw.client.get(f"/v1/conversations/{sent['conversation_id']}")).json()
            assert shown["status"] == "opted_out"


async def test_a_numbers_default_persona_answers_a_stranger(gateway: Gateway) -> None:
    persona = await demo_persona(gateway, name="Front desk")
    number = await gateway.client.post(
        "/v1/numbers",
        json={
            "number": "+14155550142",
            "throughput_mps": 100,
            "settings": {"conversation": {"persona_id": persona["id"]}},
        },
    )
    assert number.status_code == 201, number.text
    inbound = await text_in(gateway, "+14155554301", "yes", to="+14155550142")
    cid = inbound["conversation_id"]
    # The pathway starts from its first node: the stranger gets the greeting question.
    shown = await wait_for(gateway, cid, lambda c: len(c["messages"]) == 2)
    assert shown["messages"][1]["body"].startswith("Hi there, this is a reminder")
    await text_in(gateway, "+14155554301", "yes", to="+14155550142")
    shown = await wait_for(gateway, cid, lambda c: c["status"] == "ended")
    assert shown["outcome"] == "confirmed"
    assert shown["messages"][-1]["direction"] == "outbound"
    assert shown["messages"][-1]["from"] == "+14155550142"
    listed = (
        await gateway.client.get("/v1/conversations", params={"persona_id": persona["id"]})
    ).json()["data"]
    assert [c["id"] for c in listed] == [cid]


async def test_a_bodyless_batch_gets_one_opening_per_recipient(gateway: Gateway) -> None:
    persona = await demo_persona(gateway, name="Batch")
    batch = await gateway.client.post(
        "/v1/batches",
        json={
            "recipients": [
                {"to": "+14155554401"},
                {"to": "+14155554402"},
            ],
            "conversation": {"persona_id": persona["id"], "metadata": {"name": "Sam"}},
        },
    )
    assert batch.status_code == 202, batch.text
    await gateway.drain()
    for message_id in batch.json()["message_ids"]:
        message = (await gateway.client.get(f"/v1/messages/{message_id}")).json()
        assert message["body"].startswith("Hi Sam, this is a reminder")
        assert message["status"] in ("sent", "delivered")


async def test_an_llm_persona_holds_a_conversation_and_ends_it_with_a_tool_call(
    gateway: Gateway,
) -> None:
    from tests.fakes.chat_completions import FakeChatCompletions

    fake = FakeChatCompletions().start()
    try:
        fake.reply("Hi Ana! Is Tuesday at 10 still good for your cleaning?")
        fake.end("confirmed", {"day": "Tuesday"}, text="Great, see you Tuesday at 10. Bye!")
        async with insecure_gateway(gateway) as gw:
            stored = await gw.client.put("/v1/llm-credentials", json={"api_key": fake.api_key})
            assert stored.status_code == 200, stored.text
            confirmed = await gw.client.post("/v1/dispositions", json={"name": "confirmed"})
            persona = await create_persona(
                gw,
                name="Dental assistant",
                agent={
                    "kind": "llm",
                    "model": "gpt-test",
                    "base_url": fake.base_url,
                    "system_prompt": "You are the assistant of Acme Dental.",
                },
                publish=True,
            )
            person = "+14155554501"
            await script_replies(gw, person, "Yes, that works")
            sent = await gw.client.post(
                "/v1/messages",
                json={
                    "to": person,
                    "conversation": {
                        "persona_id": persona["id"],
                        "context": "Patient Ana, cleaning on Tuesday at 10.",
                        "task_context": "Confirm the appointment.",
                        "disposition_ids": [confirmed.json()["id"]],
                    },
                },
            )
            assert sent.status_code == 202, sent.text
            cid = sent.json()["conversation_id"]
            shown = await wait_for(gw, cid, lambda c: c["status"] == "ended")
            assert shown["outcome"] == "confirmed"
            assert shown["extracted"] == {"day": "Tuesday"}
            assert [(m["direction"], m["body"]) for m in shown["messages"]] == [
                ("outbound", "Hi Ana! Is Tuesday at 10 still good for your cleaning?"),
                ("inbound", "Yes, that works"),
                ("outbound", "Great, see you Tuesday at 10. Bye!"),
            ]
            assert len(fake.requests) == 2
            prompt = fake.requests[1].system_prompt
            assert "Acme Dental" in prompt
            assert "Patient Ana, cleaning on Tuesday at 10." in prompt
            assert "Confirm the appointment." in prompt
            said = [m.get("content") for m in fake.requests[1].messages]
            assert "Yes, that works" in said
    finally:
        fake.stop()


async def test_a_private_webhook_url_is_refused_at_send_time(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155554601",
            "body": "hi",
            "conversation": {"webhook_url": "http://127.0.0.1:9/hook"},
        },
    )
    assert response.status_code == 422, response.text
    assert "conversation.webhook_url" in problem_fields(response.json())
    assert (await gateway.client.get("/v1/conversations")).json()["data"] == []


async def test_a_pathway_can_be_uploaded_as_yaml(gateway: Gateway) -> None:
    from importlib import resources

    text = (
        resources.files("agentsms.agents")
        .joinpath("pathways/appointment_reminder.yaml")
        .read_text(encoding="utf-8")
    )
    created = await gateway.client.post("/v1/pathways", json={"name": "yaml", "document": text})
    assert created.status_code == 201, created.text
    assert created.json()["versions"][0]["document"] == load_demo_pathway()
    broken = await gateway.client.post(
        "/v1/pathways", json={"name": "bad", "document": "nodes: [unclosed"}
    )
    assert broken.status_code == 422
    assert "document" in problem_fields(broken.json())


async def test_the_agent_gets_dispositions_schemas_context_and_start_node(
    gateway: Gateway,
) -> None:
    person = "+14155554701"
    with agent_server() as (server, url):
        async with insecure_gateway(gateway) as gw:
            disposition = await gw.client.post("/v1/dispositions", json={"name": "booked"})
            schema = await gw.client.post(
                "/v1/extraction-schemas",
                json={
                    "name": "booking",
                    "schema": {"type": "object", "properties": {"day": {"type": "string"}}},
                },
            )
            sent = await gw.client.post(
                "/v1/messages",
                json={
                    "to": person,
                    "conversation": {
                        "persona_settings": webhook_agent(url),
                        "context": "ctx",
                        "task_context": "task",
                        "start_node_id": "ask_day",
                        "disposition_ids": [disposition.json()["id"]],
                        "citation_schema_ids": [schema.json()["id"]],
                        "metadata": {"k": 1},
                    },
                },
            )
            assert sent.status_code == 202, sent.text
            await gw.drain()
            (turn,) = server.turns
            assert turn["history"] == []  # the opening: nobody has written yet
            assert turn["context"] == "ctx"
            assert turn["task_context"] == "task"
            assert turn["start_node_id"] == "ask_day"
            assert turn["dispositions"] == ["booked"]
            assert turn["extraction_schemas"] == [
                {"title": "booking", "type": "object", "properties": {"day": {"type": "string"}}}
            ]
            assert turn["metadata"] == {"k": 1}
            message = (await gw.client.get(f"/v1/messages/{sent.json()['id']}")).json()
            assert message["body"] == "opening"


async def test_start_node_id_starts_the_flow_there(gateway: Gateway) -> None:
    persona = await demo_persona(gateway, name="S")
    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155554702",
            "conversation": {"persona_id": persona["id"], "start_node_id": "ask_new_time"},
        },
    )
    await gateway.drain()
    message = (await gateway.client.get(f"/v1/messages/{sent.json()['id']}")).json()
    assert message["body"] == "No problem. What day and time would work better for you?"


async def test_agent_text_is_sent_as_written_and_an_unsendable_reply_needs_a_human(
    gateway: Gateway,
) -> None:
    person = "+14155554801"
    with agent_server() as (server, url):
        async with insecure_gateway(gateway) as gw:
            server.answer = {"reply": "Your code is {{code}}, literally."}
            sent = await send_with_webhook_agent(gw, person, url)
            cid = sent["conversation_id"]
            await text_in(gw, person, "?")
            shown = await wait_for(gw, cid, lambda c: len(c["messages"]) == 3)
            assert shown["messages"][-1]["body"] == "Your code is {{code}}, literally."

            server.answer = {"replies": ["x" * 2000]}
            await text_in(gw, person, "!")
            shown = await wait_for(gw, cid, lambda c: c["status"] == "needs_attention")
            assert [m["body"] for m in shown["messages"]][-1] == "!"


async def test_a_new_time_is_read_and_stored_in_the_persons_zone(gateway: Gateway) -> None:
    """No timezone in the metadata: a San Francisco number's "Thursday at 2" is 2 PM
    Pacific, stored with its offset and written back in the reply."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    person = "+14155554190"
    persona = await demo_persona(gateway, name="Reminders tz")
    await script_replies(gateway, person, "not tomorrow, how about Thursday at 2")
    response = await gateway.client.post(
        "/v1/messages",
        json={"to": person, "conversation": {"persona_id": persona["id"], "metadata": REMINDED}},
    )
    assert response.status_code == 202, response.text
    shown = await wait_for(gateway, response.json()["conversation_id"], lambda c: c["outcome"])
    assert shown["outcome"] == "rescheduled"
    new_time = datetime.fromisoformat(shown["extracted"]["new_time"])
    assert (new_time.strftime("%A"), new_time.hour, new_time.minute) == ("Thursday", 14, 0)
    pacific = new_time.astimezone(ZoneInfo("America/Los_Angeles"))
    assert new_time.utcoffset() == pacific.utcoffset()
    assert shown["extracted"]["new_time_text"].endswith("at 2:00 PM")
    assert shown["extracted"]["new_time_text"] in shown["messages"][-1]["body"]
    await forget_deliveries(gateway)
