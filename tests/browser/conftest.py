"""Browser tests: Playwright driving Debian's chromium against a real ``agentsms serve``.

Never ``playwright install``: the browser is ``/usr/bin/chromium`` (``apt-get install
chromium``; ``.ci/run`` does it). One server and one browser serve a test module; each
test gets a fresh browser context (its own cookies). Module scope, not session scope:
Playwright's sync API runs an event loop of its own in this thread, which must be gone
before the asyncio tests of other modules run theirs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.acceptance.conftest import Server, start_server

CHROMIUM = os.environ.get("AGENTSMS_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Long enough that a page always shows a message before its receipt arrives.
DELIVERY_DELAY_SECONDS = 2.0
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    server = start_server(
        tmp,
        env={
            "AGENTSMS_SIMULATOR_DELIVERY_DELAY_SECONDS": str(DELIVERY_DELAY_SECONDS),
            "AGENTSMS_DATA_DIR": str(tmp / "data"),
        },
        name="dashboard",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: apt-get install -y chromium (never playwright install)"
    )
    browser = playwright.chromium.launch(executable_path=CHROMIUM)
    yield browser
    browser.close()


@pytest.fixture
def context(chromium: Browser, dashboard_server: Server) -> Iterator[BrowserContext]:
    opened = chromium.new_context(
        base_url=dashboard_server.url, viewport={"width": 1100, "height": 800}
    )
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save what the page shows now as ``artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page: Page, api_key: str) -> None:
    page.goto("/dashboard")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Dashboard").wait_for()
