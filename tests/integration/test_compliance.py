"""Opt-out, opt-in and help keywords; texts to opted-out people refused at intake and dispatch."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, message_rows, problem_fields, settle

PERSON = "+14155553501"
OURS = "+14155550100"


async def _inbound(gateway: Gateway, body: str, person: str = PERSON) -> dict[str, Any]:
    response = await gateway.client.post(
        "/v1/simulator/inbound", json={"from": person, "to": OURS, "body": body}
    )
    assert response.status_code == 202, response.text
    message: dict[str, Any] = response.json()
    return message


async def _outbound_to(gateway: Gateway, person: str) -> list[Any]:
    return [
        r
        for r in await message_rows(gateway)
        if r["direction"] == "outbound" and r["to_number"] == person
    ]


async def _carrier_sends_to(gateway: Gateway, person: str) -> int:
    query = select(tables.simulator_sends.c.id).where(tables.simulator_sends.c.to_number == person)
    async with gateway.db.read() as conn:
        return len((await conn.execute(query)).all())


async def test_stop_opts_out_confirms_once_and_ends_the_conversation(gateway: Gateway) -> None:
    sent = await gateway.client.post("/v1/messages", json={"to": PERSON, "body": "Sale today!"})
    assert sent.status_code == 202
    stop = await _inbound(gateway, "  stop ")
    assert stop["conversation_id"] == sent.json()["conversation_id"]
    await _inbound(gateway, "STOP")  # a second STOP confirms nothing more

    replies = [r for r in await _outbound_to(gateway, PERSON) if r["purpose"] == "compliance"]
    assert len(replies) == 1
    assert "unsubscribed" in replies[0]["body"]
    await settle(gateway, [replies[0]["id"]])
    assert (await settle(gateway, [replies[0]["id"]]))[replies[0]["id"]]["status"] == "delivered"

    conversation = (await gateway.client.get(f"/v1/conversations/{stop['conversation_id']}")).json()
    assert conversation["status"] == "opted_out"
    assert conversation["end_reason"] == "opt_out"

    refused = await gateway.client.post("/v1/messages", json={"to": PERSON, "body": "one more?"})
    body = assert_problem(refused, 422, "recipient_opted_out")
    assert "to" in problem_fields(body)
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": ["+14155553502", PERSON], "body": "hi"}
    )
    body = assert_problem(batch, 422, "recipient_opted_out")
    assert "recipients[1].to" in problem_fields(body)
    assert len(await _outbound_to(gateway, "+14155553502")) == 0


async def test_every_opt_out_keyword_any_case_but_not_in_another_sense(gateway: Gateway) -> None:
    for i, word in enumerate(
        ["STOP", "stopall", "Unsubscribe", "end", "QUIT", "cancel", "revoke", "OptOut"]
    ):
        person = f"+1415555360{i}"
        await _inbound(gateway, f" {word}\n", person=person)
        refused = await gateway.client.post("/v1/messages", json={"to": person, "body": "x"})
        assert_problem(refused, 422, "recipient_opted_out")
    for i, text in enumerate(["I'll stop by at 3", "cancel my appointment", "please cancel"]):
        person = f"+1415555361{i}"
        await _inbound(gateway, text, person=person)
        allowed = await gateway.client.post("/v1/messages", json={"to": person, "body": "ok"})
        assert allowed.status_code == 202, allowed.text


async def test_opt_outs_are_recognised_as_people_type_them(gateway: Gateway) -> None:
    variants = [
        "Stop.",
        "stop!",
        "STOP please",
        "unsubscribe me",
        "opt out",
        "OPT-OUT",
        "\uff33\uff34\uff2f\uff30",  # full-width
        "S\u200bTOP",  # a zero-width space inside
        "please stop texting me",
        "remove me from this list",
        "take me off your list",
    ]
    for i, text in enumerate(variants):
        person = f"+141555536{20 + i}"
        await _inbound(gateway, text, person=person)
        refused = await gateway.client.post("/v1/messages", json={"to": person, "body": "x"})
        assert_problem(refused, 422, "recipient_opted_out")
        confirmations = await _outbound_to(gateway, person)
        assert [r["purpose"] for r in confirmations] == ["compliance"], text
    help_person = "+14155553650"
    await _inbound(gateway, "Help!", person=help_person)
    (answer,) = await _outbound_to(gateway, help_person)
    assert answer["body"] == "Reply STOP to unsubscribe. Msg&data rates may apply."


async def test_a_text_that_may_be_an_opt_out_is_asked_about_once_and_not_given_to_the_agent(
    gateway: Gateway,
) -> None:
    from agentsms.agents import load_demo_pathway

    persona = await gateway.client.post(
        "/v1/personas",
        json={
            "name": "R",
            "agent": {"kind": "flow", "pathway": load_demo_pathway()},
            "publish": True,
        },
    )
    person = "+14155553660"
    sent = await gateway.client.post(
        "/v1/messages", json={"to": person, "conversation": {"persona_id": persona.json()["id"]}}
    )
    assert sent.status_code == 202, sent.text
    await gateway.drain()
    await _inbound(gateway, "no stop", person=person)
    await gateway.drain()
    after_opening = (await _outbound_to(gateway, person))[1:]
    assert [(r["purpose"], r["body"]) for r in after_opening] == [
        ("compliance", "Reply STOP to confirm you want no more texts from us.")
    ]
    allowed = await gateway.client.post("/v1/messages", json={"to": person, "body": "ok"})
    assert allowed.status_code == 202, allowed.text  # not opted out


async def test_start_opts_back_in_but_yes_from_others_is_an_ordinary_reply(
    gateway: Gateway,
) -> None:
    await _inbound(gateway, "STOP")
    back = await _inbound(gateway, "Start")
    confirmations = [r for r in await _outbound_to(gateway, PERSON) if r["purpose"] == "compliance"]
    assert [("resubscribed" in r["body"]) for r in confirmations] == [False, True]
    allowed = await gateway.client.post("/v1/messages", json={"to": PERSON, "body": "welcome back"})
    assert allowed.status_code == 202, allowed.text
    # Opting back in starts an open conversation, which the next send continues.
    assert allowed.json()["conversation_id"] == back["conversation_id"]
    shown = (await gateway.client.get(f"/v1/conversations/{back['conversation_id']}")).json()
    assert shown["status"] == "open"

    other = "+14155553701"
    sent = await gateway.client.post(
        "/v1/messages", json={"to": other, "body": "Reply YES to confirm"}
    )
    yes = await _inbound(gateway, "YES", person=other)
    assert yes["conversation_id"] == sent.json()["conversation_id"]
    assert [r["purpose"] for r in await _outbound_to(gateway, other)] == ["api"]


async def test_help_gets_the_project_help_text_and_keywords_are_configurable(
    gateway: Gateway,
) -> None:
    patched = await gateway.client.patch(
        "/v1/project",
        json={
            "settings": {
                "help_message": "Acme Dental: call 555-0100.",
                "opt_out_keywords": ["BASTA"],
                "opt_out_message": "Bye from Acme.",
            }
        },
    )
    assert patched.status_code == 200, patched.text
    await _inbound(gateway, "help")
    await _inbound(gateway, "STOP")  # no longer an opt-out word for this project
    await _inbound(gateway, "basta")
    bodies = [r["body"] for r in await _outbound_to(gateway, PERSON)]
    assert bodies == ["Acme Dental: call 555-0100.", "Bye from Acme."]
    phrases = await gateway.client.patch(
        "/v1/project", json={"settings": {"opt_out_keywords": ["BASTA", "no more"]}}
    )
    assert phrases.status_code == 200, phrases.text
    bad = await gateway.client.patch("/v1/project", json={"settings": {"opt_out_keywords": [" "]}})
    assert_problem(bad, 422, "validation_failed")


async def test_opt_out_during_a_queued_batch_fails_the_rest_without_a_carrier_call(
    gateway: Gateway,
) -> None:
    people = [f"+1415555380{i}" for i in range(3)]
    batch = await gateway.client.post(
        "/v1/batches",
        json={"recipients": people * 2, "body": "Weekly deals"},
    )
    assert batch.status_code == 202, batch.text
    ids = batch.json()["message_ids"]
    await _inbound(gateway, "STOP", person=people[1])

    final = await settle(gateway, ids)
    for message_id in ids:
        row = final[message_id]
        if row["to_number"] == people[1]:
            assert row["status"] == "failed"
            assert row["error_code"] == "recipient_opted_out"
        else:
            assert row["status"] == "delivered"
    # Only the confirmation reached the opted-out person's phone.
    assert await _carrier_sends_to(gateway, people[1]) == 1
    assert await _carrier_sends_to(gateway, people[0]) == 2


async def test_an_opt_out_before_the_agent_writes_the_opening_cancels_it(
    gateway: Gateway,
) -> None:
    from agentsms.agents import load_demo_pathway

    persona = await gateway.client.post(
        "/v1/personas",
        json={
            "name": "R",
            "agent": {"kind": "flow", "pathway": load_demo_pathway()},
            "publish": True,
        },
    )
    person = "+14155553901"
    sent = await gateway.client.post(
        "/v1/messages", json={"to": person, "conversation": {"persona_id": persona.json()["id"]}}
    )
    assert sent.status_code == 202, sent.text
    await _inbound(gateway, "STOP", person=person)
    await gateway.drain()
    opening = (await gateway.client.get(f"/v1/messages/{sent.json()['id']}")).json()
    assert opening["status"] == "canceled"
    assert opening["error_code"] == "conversation_ended"
    # The person's phone got the confirmation and nothing from the agent.
    assert await _carrier_sends_to(gateway, person) == 1


async def test_number_conversation_defaults_are_validated(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/numbers",
        json={
            "number": "+14155550177",
            "settings": {"conversation": {"timeout_seconds": 5, "warning_seconds": 9}},
        },
    )
    assert_problem(response, 422, "validation_failed")
    assert "settings.conversation" in problem_fields(response.json())


async def test_a_large_batch_to_an_opted_out_person_is_refused_at_intake(
    gateway: Gateway,
) -> None:
    """Past the size where intake first asks whether anybody opted out at all, the opted-out
    recipient is still found and named, and nothing is stored."""
    people = [f"+1415555{3700 + i}" for i in range(30)]
    await _inbound(gateway, "STOP", person=people[17])
    before = len(await message_rows(gateway))

    refused = await gateway.client.post("/v1/batches", json={"recipients": people, "body": "hi"})

    body = assert_problem(refused, 422, "recipient_opted_out")
    assert list(problem_fields(body)) == ["recipients[17].to"]
    assert len(await message_rows(gateway)) == before
    others = [p for p in people if p != people[17]]
    accepted = await gateway.client.post("/v1/batches", json={"recipients": others, "body": "hi"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["total"] == len(others)


async def test_after_an_opt_out_only_the_one_confirmation_reaches_the_person(
    gateway: Gateway,
) -> None:
    """A queued agent reply, an agent turn and a scheduled send all stay unsent after an
    opt-out; the person gets exactly one confirmation, within five minutes."""
    from agentsms.agents import load_demo_pathway
    from agentsms.core.agent_turns import send_in_conversation
    from agentsms.store.repositories import conversations as conversations_repo

    persona = await gateway.client.post(
        "/v1/personas",
        json={
            "name": "R",
            "agent": {"kind": "flow", "pathway": load_demo_pathway()},
            "publish": True,
        },
    )
    person = "+14155553670"
    sent = await gateway.client.post(
        "/v1/messages", json={"to": person, "conversation": {"persona_id": persona.json()["id"]}}
    )
    assert sent.status_code == 202, sent.text
    await gateway.drain()
    assert await _carrier_sends_to(gateway, person) == 1  # the opening
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = await gateway.client.post(
        "/v1/messages", json={"to": person, "body": "See you soon!", "send_at": later.isoformat()}
    )
    assert scheduled.status_code == 202, scheduled.text
    async with gateway.db.write() as conn:
        conversation = await conversations_repo.get_by_id(conn, sent.json()["conversation_id"])
        assert conversation is not None
        queued_reply = await send_in_conversation(
            conn, gateway.outbox, conversation, "Thanks, see you then!", purpose="agent"
        )
    await _inbound(gateway, "yes", person=person)  # an agent turn waits in the queue too
    stop = await _inbound(gateway, "Stop.", person=person)
    async with gateway.db.write() as conn:  # the scheduled send falls due
        await conn.execute(
            update(tables.jobs)
            .where(tables.jobs.c.ref == scheduled.json()["id"])
            .values(run_at=time.time())
        )
    await gateway.drain()
    await _inbound(gateway, "STOP!", person=person)  # a second opt-out confirms nothing
    await gateway.drain()

    assert await _carrier_sends_to(gateway, person) == 2  # the opening and one confirmation
    rows = {r["id"]: r for r in await _outbound_to(gateway, person)}
    for message_id in (scheduled.json()["id"], queued_reply.id):
        assert rows[message_id]["status"] in ("failed", "canceled")
    (confirmation,) = [r for r in rows.values() if r["purpose"] == "compliance"]
    assert confirmation["status"] == "delivered"
    received = datetime.fromisoformat(stop["created_at"].replace("Z", "+00:00"))
    assert confirmation["sent_at"] - received < timedelta(minutes=5)
    delivered = [r["id"] for r in rows.values() if r["status"] == "delivered"]
    assert delivered == [sent.json()["id"], confirmation["id"]]
