"""The web inbox in a real browser: replies arrive live; a human takes over."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

import agentsms.agents
from agentsms.agents.pathway import load_demo_pathway, parse_pathway
from tests.acceptance.conftest import Server
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

DEMO_PATHWAY = Path(agentsms.agents.__file__).parent / "pathways" / "appointment_reminder.yaml"

OURS = "+14155550100"
NO_RELOAD = "window.__still_the_same_page = true"
SAME_PAGE = "() => window.__still_the_same_page === true"


def _text_in(server: Server, person: str, body: str) -> dict[str, Any]:
    with server.client() as http:
        response = http.post(
            "/v1/simulator/inbound", json={"from": person, "to": OURS, "body": body}
        )
    assert response.status_code == 202, response.text
    message: dict[str, Any] = response.json()
    return message


def test_a_reply_appears_in_the_inbox_live(page: Page, dashboard_server: Server) -> None:
    known = _text_in(dashboard_server, "+14155553101", "Is my table still booked?")
    sign_in(page, dashboard_server.api_key)
    page.get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    known_row = page.locator(f"#conv-{known['conversation_id']}")
    expect(known_row.locator(".unread-count")).to_have_text("1")
    page.evaluate(NO_RELOAD)

    fresh = _text_in(dashboard_server, "+14155553102", "Can I bring my dog?")
    fresh_row = page.locator(f"#conv-{fresh['conversation_id']}")
    expect(fresh_row).to_contain_text("Can I bring my dog?")
    expect(fresh_row).to_contain_text("+14155553102")
    expect(page.locator("#inbox-rows tr").first).to_have_id(f"conv-{fresh['conversation_id']}")

    _text_in(dashboard_server, "+14155553101", "Party of four, 8 pm")
    expect(known_row).to_contain_text("Party of four, 8 pm")
    expect(known_row.locator(".unread-count")).to_have_text("2")
    expect(page.locator(f"#conv-{fresh['conversation_id']}")).to_have_count(1)
    assert page.evaluate(SAME_PAGE), "the page was reloaded"
    screenshot(page, "inbox-live")


def test_a_human_reply_pauses_the_agent(page: Page, dashboard_server: Server) -> None:
    inbound = _text_in(dashboard_server, "+14155553111", "I would like to talk to a person")
    sign_in(page, dashboard_server.api_key)
    page.goto(f"/dashboard/conversations/{inbound['conversation_id']}")
    expect(page.get_by_role("heading", name=re.compile("Conversation with"))).to_be_visible()
    expect(page.locator("#agent-state")).to_have_text("answering")
    page.get_by_label("Reply as a human").fill("Hi, this is Sam from the front desk.")
    page.get_by_role("button", name="Send reply").click()

    expect(page.get_by_role("status")).to_contain_text("The agent is paused")
    expect(page.locator("#agent-state")).to_have_text("paused: a human is answering")
    expect(page.get_by_role("button", name="Resume agent")).to_be_visible()
    bubble = page.locator(".bubble.outbound").last
    expect(bubble).to_contain_text("Hi, this is Sam from the front desk.")
    page.evaluate(NO_RELOAD)
    expect(bubble.locator(".badge")).to_have_text("delivered")

    _text_in(dashboard_server, "+14155553111", "Thanks Sam!")
    expect(page.locator(".bubble.inbound").last).to_contain_text("Thanks Sam!")
    assert page.evaluate(SAME_PAGE), "the page was reloaded"
    screenshot(page, "conversation-takeover")


def test_upload_a_pathway_and_see_it_drawn(page: Page, dashboard_server: Server) -> None:
    demo = DEMO_PATHWAY.read_text()
    sign_in(page, dashboard_server.api_key)
    page.get_by_role("link", name="Personas").click()
    page.get_by_label("Name", exact=True).last.fill("Reminders")
    page.get_by_label("…or paste it").fill(demo.replace("start: remind", "start: nowhere"))
    page.get_by_role("button", name="Upload pathway").click()
    expect(page.locator("#document-error")).to_contain_text("start: unknown node 'nowhere'")

    page.get_by_label("Pathway file (JSON or YAML)").set_input_files(str(DEMO_PATHWAY))
    page.get_by_label("…or paste it").fill("")
    page.get_by_role("button", name="Upload pathway").click()
    expect(page.get_by_role("heading", name="Pathway Reminders")).to_be_visible()
    graph = page.get_by_role("img", name="Reminders, version 1")
    expect(graph).to_be_visible()
    expect(graph.locator("g.node")).to_have_count(len(parse_pathway(load_demo_pathway()).nodes))
    expect(graph.locator('g.node.start[data-node="remind"]')).to_be_visible()
    screenshot(page, "pathway-graph")
