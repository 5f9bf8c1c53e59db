"""The dashboard in a real browser against a real server: what a person sees."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Server
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

NO_RELOAD = "window.__still_the_same_page = true"
SAME_PAGE = "() => window.__still_the_same_page === true"


def test_sign_in_compose_and_watch_delivery_live(page: Page, dashboard_server: Server) -> None:
    sign_in(page, dashboard_server.api_key)
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("To", exact=True).fill("+14155552671")
    page.get_by_label("Text", exact=True).press_sequentially("Your table is ready 😀")
    counter = page.locator("#counter")
    expect(counter).to_contain_text("UCS-2")
    expect(counter).to_contain_text("1 segment")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("heading", name=re.compile(r"Message msg_"))).to_be_visible()
    status = page.locator(".status-line .badge")
    first = status.inner_text()
    assert first in ("queued", "sending", "sent"), first
    page.evaluate(NO_RELOAD)
    expect(status).to_have_text("delivered")
    timeline = page.locator("#timeline .badge")
    expect(timeline).to_have_text(["queued", "sending", "sent", "delivered"])
    assert page.evaluate(SAME_PAGE), "the page was reloaded"
    screenshot(page, "message-delivered")


def test_csv_upload_of_50_rows_reaches_100_percent(page: Page, dashboard_server: Server) -> None:
    rows = "\n".join(f"+1415555{2600 + i},Person {i}" for i in range(50))
    csv = f"phone,name\n{rows}\n".encode()
    sign_in(page, dashboard_server.api_key)
    page.goto("/dashboard/compose?mode=csv")
    page.get_by_label("Recipients (CSV)").set_input_files(
        {"name": "people.csv", "mimeType": "text/csv", "buffer": csv}
    )
    page.get_by_label("Text template").fill("Hi {{name}}, your table is ready.")
    summary = page.locator("#preview-summary")
    expect(summary).to_have_text("50 recipients; 20 shown.")
    expect(page.locator("table.preview")).to_contain_text("Hi Person 0, your table is ready.")
    expect(page.locator("table.preview")).to_contain_text("Hi Person 19, your table is ready.")
    screenshot(page, "csv-preview")
    page.get_by_role("button", name="Send to everyone").click()

    expect(page.get_by_role("heading", name=re.compile(r"Batch batch_"))).to_be_visible()
    done = page.locator("#done-percent")
    assert done.inner_text() != "100 %"
    page.evaluate(NO_RELOAD)
    expect(done).to_have_text("100 %", timeout=30_000)
    expect(page.locator('[data-count="delivered"]')).to_have_text("50")
    expect(page.get_by_role("progressbar", name="Done")).to_have_attribute("aria-valuenow", "50")
    assert page.evaluate(SAME_PAGE), "the page was reloaded"
    screenshot(page, "batch-complete")


def test_wrong_api_key_is_refused(page: Page) -> None:
    page.goto("/dashboard")
    page.get_by_label("API key").fill("ask_not_a_real_key")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#api_key-error")
    expect(error).to_have_text("invalid API key")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("navigation", name="Dashboard")).to_have_count(0)
    screenshot(page, "sign-in-refused")


def test_a_form_without_its_csrf_token_is_refused(page: Page, dashboard_server: Server) -> None:
    sign_in(page, dashboard_server.api_key)
    page.goto("/dashboard/compose")
    page.get_by_label("To", exact=True).fill("+14155552699")
    page.get_by_label("Text", exact=True).fill("should never be sent")
    page.evaluate("document.querySelector('#compose-one input[name=csrf_token]').remove()")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Refused")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("valid security token")
    screenshot(page, "csrf-refused")
    with dashboard_server.client() as api:
        sent = api.get("/v1/messages", params={"to": "+14155552699"}).json()["data"]
    assert sent == []


def test_phone_sized_screen_and_keyboard(page: Page, dashboard_server: Server) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, dashboard_server.api_key)
    page.goto("/dashboard/messages")
    expect(page.get_by_role("heading", name="Messages")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="agentsms")).to_be_focused()
    screenshot(page, "messages-phone", full_page=False)


def test_batches_list_moves_live(page: Page, dashboard_server: Server) -> None:
    with dashboard_server.client() as api:
        recipients = [f"+1415555{2700 + i}" for i in range(5)]
        batch = api.post("/v1/batches", json={"recipients": recipients, "body": "hello"}).json()
    sign_in(page, dashboard_server.api_key)
    page.goto("/dashboard/batches")
    row = page.locator("tr", has=page.get_by_role("link", name=batch["id"]))
    done = row.locator("[data-done-percent]")
    assert done.inner_text() != "100 % done"
    page.evaluate(NO_RELOAD)
    expect(done).to_have_text("100 % done")
    assert page.evaluate(SAME_PAGE), "the page was reloaded"
    screenshot(page, "batches-list")
