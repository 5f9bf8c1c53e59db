"""Shipped pathways are a gallery: listed, shown, and a persona made from one runs it."""

from __future__ import annotations

from typing import Any

from agentsms.agents.pathway import parse_pathway
from tests.conftest import Gateway
from tests.integration.conversation_helpers import forget_deliveries, text_in, wait_for
from tests.integration.helpers import assert_problem, problem_fields

SHIPPED = {"appointment_reminder", "lead_follow_up", "satisfaction_survey"}


async def _persona_from(gateway: Gateway, template: str, **body: Any) -> dict[str, Any]:
    response = await gateway.client.post(
        "/v1/personas", json={"pathway_template": template, "publish": True, **body}
    )
    assert response.status_code == 201, response.text
    persona: dict[str, Any] = response.json()
    return persona


async def _converse(
    gateway: Gateway, persona_id: str, person: str, metadata: dict[str, str], *replies: str
) -> dict[str, Any]:
    """Open a conversation the persona starts, answer each of its questions with
    ``replies``; the conversation once it ended."""
    opened = await gateway.client.post(
        "/v1/messages",
        json={"to": person, "conversation": {"persona_id": persona_id, "metadata": metadata}},
    )
    assert opened.status_code == 202, opened.text
    cid = opened.json()["conversation_id"]
    for reply in replies:
        await wait_for(gateway, cid, lambda c: c["messages"][-1]["direction"] == "outbound")
        await text_in(gateway, person, reply)
    return await wait_for(gateway, cid, lambda c: c["status"] == "ended")


async def test_the_gallery_lists_and_shows_valid_shipped_pathways(gateway: Gateway) -> None:
    listed = await gateway.client.get("/v1/pathway-templates")
    assert listed.status_code == 200, listed.text
    templates = {t["id"]: t for t in listed.json()["data"]}
    assert set(templates) == SHIPPED
    for template_id, template in templates.items():
        assert template["object"] == "pathway_template"
        assert template["name"]
        assert len(template["description"]) > 40
        assert parse_pathway(template["document"]).id == template_id
    one = await gateway.client.get("/v1/pathway-templates/lead_follow_up")
    assert one.json() == templates["lead_follow_up"]
    missing = await gateway.client.get("/v1/pathway-templates/nope")
    assert_problem(missing, 404, "not_found")


async def test_a_persona_from_a_template_is_named_after_it_and_runs_its_document(
    gateway: Gateway,
) -> None:
    persona = await _persona_from(gateway, "satisfaction_survey")
    assert persona["name"] == "Satisfaction survey"
    template = (await gateway.client.get("/v1/pathway-templates/satisfaction_survey")).json()
    assert persona["versions"][0]["config"] == {
        "agent": {"kind": "flow", "pathway": template["document"]}
    }
    named = await _persona_from(gateway, "lead_follow_up", name="Leads (spring)")
    assert named["name"] == "Leads (spring)"

    unknown = await gateway.client.post("/v1/personas", json={"pathway_template": "nope"})
    fields = problem_fields(assert_problem(unknown, 422, "validation_failed"))
    assert "lead_follow_up" in fields["pathway_template"]
    both = await gateway.client.post(
        "/v1/personas",
        json={"pathway_template": "lead_follow_up", "agent": {"kind": "flow"}, "name": "x"},
    )
    assert "pathway_template" in problem_fields(assert_problem(both, 422, "validation_failed"))
    nameless = await gateway.client.post("/v1/personas", json={"agent": {"kind": "flow"}})
    assert "name" in problem_fields(assert_problem(nameless, 422, "validation_failed"))


async def test_the_satisfaction_survey_ends_with_rating_and_comment(gateway: Gateway) -> None:
    persona = await _persona_from(gateway, "satisfaction_survey")
    metadata = {"name": "Ana", "business": "Bella's Bistro", "visit": "your dinner on Friday"}
    high = await _converse(
        gateway, persona["id"], "+14155558101", metadata, "4/5", "The staff were lovely"
    )
    assert high["messages"][0]["body"].startswith("Hi Ana, thanks for choosing Bella's Bistro!")
    assert high["outcome"] == "promoter"
    assert high["extracted"] == {"rating": "4", "comment": "The staff were lovely"}
    low = await _converse(gateway, persona["id"], "+14155558102", metadata, "not good", "no")
    assert low["outcome"] == "detractor"
    assert low["extracted"] == {"rating": 2, "comment": None}
    assert "manager at Bella's Bistro" in low["messages"][-1]["body"]
    await forget_deliveries(gateway)


async def test_lead_follow_up_books_a_call_or_takes_an_email(gateway: Gateway) -> None:
    persona = await _persona_from(gateway, "lead_follow_up")
    metadata = {"name": "Sam", "business": "Acme Solar", "interest": "rooftop panels"}
    booked = await _converse(
        gateway, persona["id"], "+14155558201", metadata, "Yes please", "Thursday at 2pm"
    )
    assert booked["outcome"] == "call_booked"
    assert set(booked["extracted"]) == {"call_time", "call_time_text"}
    assert "Thursday" in booked["messages"][-1]["body"]
    info = await _converse(
        gateway, persona["id"], "+14155558202", metadata, "just email info to sam@example.com"
    )
    assert info["outcome"] == "info_requested"
    assert info["extracted"] == {"email": "sam@example.com"}
    no = await _converse(gateway, persona["id"], "+14155558203", metadata, "nope")
    assert no["outcome"] == "not_interested"
    await forget_deliveries(gateway)
