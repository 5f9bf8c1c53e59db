"""Replies never go unanswered by accident: the project's ``default_persona_id`` answers
conversations that no setting gives an agent, e.g. those opened through a compat shape."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    demo_persona,
    forget_deliveries,
    text_in,
    wait_for,
)
from tests.integration.helpers import assert_problem, problem_fields


async def _set_default(gateway: Gateway, persona: str | None) -> httpx.Response:
    response = await gateway.client.patch("/v1/project", json={"default_persona_id": persona})
    gateway.app.state.agentsms.key_cache.clear()
    return response


def _compat(gateway: Gateway, base: str, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url=f"http://testserver/compat/{base}",
        **kwargs,
    )


async def test_default_persona_is_validated_shown_and_cleared(gateway: Gateway) -> None:
    unknown = await _set_default(gateway, "persona_nope")
    fields = problem_fields(assert_problem(unknown, 422, "validation_failed"))
    assert "no persona persona_nope" in fields["default_persona_id"]
    draft = await gateway.client.post(
        "/v1/personas", json={"name": "Draft", "pathway_template": "lead_follow_up"}
    )
    assert draft.status_code == 201, draft.text
    unpublished = await _set_default(gateway, draft.json()["id"])
    fields = problem_fields(assert_problem(unpublished, 422, "validation_failed"))
    assert "production version" in fields["default_persona_id"]

    persona = await demo_persona(gateway)
    by_alias = await _set_default(gateway, str(persona["alias"]))
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["default_persona_id"] == persona["id"]
    assert "default_persona_id" not in by_alias.json()["settings"]
    renamed = await gateway.client.patch("/v1/project", json={"name": "Renamed"})
    assert renamed.json()["default_persona_id"] == persona["id"]  # kept unless named
    cleared = await _set_default(gateway, None)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["default_persona_id"] is None
    assert (await gateway.client.get("/v1/project")).json()["default_persona_id"] is None


async def test_a_reply_to_a_polyai_or_vida_send_is_answered_by_the_default_persona(
    gateway: Gateway,
) -> None:
    persona = await demo_persona(gateway, name="Front desk")
    polyai_person, vida_person = "+14155557101", "+14155557102"
    async with _compat(
        gateway,
        "polyai",
        headers={"X-PolyAi-Auth-Token": gateway.api_key, "X-TOKEN-ID": gateway.project_id},
    ) as client:
        sent = await client.post(
            "/v1/outbound-sms",
            json={"message": "Thanks for calling!", "user_number": polyai_person},
        )
    assert sent.status_code == 202, sent.text
    async with _compat(gateway, "vida", params={"token": gateway.api_key}) as client:
        sent = await client.post(
            "/api/v2/agent/outboundSms", json={"target": vida_person, "content": "Hello!"}
        )
    assert sent.status_code == 200, sent.text

    # Without a default, a reply is recorded and left to a human.
    unanswered = await text_in(gateway, polyai_person, "yes")
    await gateway.drain()
    shown = (await gateway.client.get(f"/v1/conversations/{unanswered['conversation_id']}")).json()
    assert [m["purpose"] for m in shown["messages"]] == ["api", "inbound"]

    assert (await _set_default(gateway, persona["id"])).status_code == 200
    for person in (polyai_person, vida_person):
        inbound = await text_in(gateway, person, "yes")
        shown = await wait_for(
            gateway, inbound["conversation_id"], lambda c: c["messages"][-1]["purpose"] == "agent"
        )
        reply = shown["messages"][-1]
        assert reply["direction"] == "outbound"
        assert reply["to"] == person
        # The demo pathway (its ``name`` variable defaults to "there") wrote it.
        assert "there" in reply["body"]
    await forget_deliveries(gateway)
