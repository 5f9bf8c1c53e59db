"""Conversation timers are durable jobs: a server killed with -9 right after the send still
warns and ends the conversation once a new server runs on the same database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.acceptance.conftest import start_server

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]


def test_timers_fire_after_a_kill_9_and_restart(tmp_path: Path) -> None:
    first = start_server(tmp_path, name="timers")
    with first.client() as api:
        sent = api.post(
            "/v1/messages",
            json={
                "to": "+14155556101",
                "body": "Reply within 3 seconds",
                "conversation": {
                    "warning_seconds": 1.5,
                    "warning_message": "Still with us?",
                    "timeout_seconds": 3,
                    "timeout_message": "Closing.",
                },
            },
        )
        assert sent.status_code == 202, sent.text
    first.kill()
    conversation_id = sent.json()["conversation_id"]

    second = start_server(tmp_path, name="timers", database_url=first.database_url)
    deadline = time.monotonic() + 30
    with second.client() as api:
        while True:
            shown = api.get(f"/v1/conversations/{conversation_id}").json()
            if shown["status"] == "ended":
                break
            assert time.monotonic() < deadline, shown
            time.sleep(0.2)
    assert shown["end_reason"] == "timeout"
    assert [m["body"] for m in shown["messages"]] == [
        "Reply within 3 seconds",
        "Still with us?",
        "Closing.",
    ]
    second.stop()
