"""``/dashboard/stream`` on a real server: HTML for htmx, scoped to the session's project."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from httpx_sse import connect_sse

from tests.acceptance.conftest import Server

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def signed_in(server: Server) -> Iterator[httpx.Client]:
    """A client holding a session cookie of the bootstrap project."""
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        token = CSRF.search(http.get("/dashboard/login").text)
        assert token is not None
        response = http.post(
            "/dashboard/login", data={"csrf_token": token.group(1), "api_key": server.api_key}
        )
        assert response.status_code == 303
        yield http


def test_stream_sends_each_status_as_html_until_delivered(server: Server) -> None:
    with server.client() as api:
        sent = api.post("/v1/messages", json={"to": "+14155552671", "body": "hi"}).json()
    seen: list[str] = []
    timeline = ""
    with signed_in(server) as http:
        params = {"after": "0", "message": sent["id"]}
        with connect_sse(http, "GET", "/dashboard/stream", params=params) as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            deadline = time.monotonic() + 20
            for event in source.iter_sse():
                if event.event == f"status-{sent['id']}":
                    found = re.search(r'data-status="(\w+)"', event.data)
                    assert found is not None, event.data
                    seen.append(found.group(1))
                elif event.event == f"timeline-{sent['id']}":
                    timeline = event.data
                # The timeline comes right after the status it belongs with.
                if "s-delivered" in timeline or time.monotonic() > deadline:
                    break
    assert seen[-1] == "delivered", seen
    assert 'class="badge s-delivered"' in timeline


def test_stream_moves_the_bar_of_every_batch_that_moved(server: Server) -> None:
    with server.client() as api:
        recipients = ["+14155552671", "+14155552672"]
        batch = api.post("/v1/batches", json={"recipients": recipients, "body": "hi"}).json()
    percents: list[str] = []
    with signed_in(server) as http:
        params = {"after": "0", "batches": "1"}
        with connect_sse(http, "GET", "/dashboard/stream", params=params) as source:
            deadline = time.monotonic() + 20
            for event in source.iter_sse():
                if event.event == f"batchbar-{batch['id']}":
                    found = re.search(r'data-done-percent="(\d+)"', event.data)
                    assert found is not None, event.data
                    percents.append(found.group(1))
                if (percents and percents[-1] == "100") or time.monotonic() > deadline:
                    break
    assert percents[-1] == "100", percents


def test_stream_without_a_session_says_no_content(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        response = http.get("/dashboard/stream")
    assert response.status_code == 204  # an EventSource stops reconnecting on 204
