"""Signing schemes and payload formats chosen per webhook endpoint."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from agentsms.api.compat.agentphone import WEBHOOK_FORMAT
from agentsms.runtime import register_webhook_formats
from agentsms.webhooks import formats, signing

STAMP = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _vendor_formats() -> None:
    """The formats a process registers at start-up (the API and the worker alike)."""
    register_webhook_formats()


def test_hmac_timestamped_signs_timestamp_dot_body_with_each_key() -> None:
    body = '{"event":"agent.message"}'
    headers = signing.scheme(signing.HMAC_TIMESTAMPED)("evt_1", STAMP, body, ["new", "old"])
    ts = str(int(STAMP.timestamp()))
    assert headers["x-webhook-timestamp"] == ts
    expected = [
        "sha256=" + hmac.new(key, f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
        for key in (b"new", b"old")
    ]
    assert headers["x-webhook-signature"].split(",") == expected
    assert headers["x-webhook-id"] == "evt_1"


def test_default_scheme_is_standard_webhooks() -> None:
    headers = signing.scheme(None)("evt_1", STAMP, "{}", [signing.new_secret()])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")


def test_agentphone_format_skips_events_it_does_not_carry() -> None:
    assert formats.render(WEBHOOK_FORMAT, {"type": "message.sent", "data": {}}, {}) is None
    payload = {"type": "message.sent", "data": {"x": 1}}
    assert formats.render(None, payload, None) == payload


def test_agentphone_format_bounds_recent_history() -> None:
    history = [
        {"id": f"msg_{i}", "role": "person" if i % 2 else "agent", "body": str(i)} for i in range(6)
    ]
    payload = {
        "type": "message.received",
        "created_at": "2026-11-29T12:00:00Z",
        "data": {
            "message": {"id": "msg_5", "channel": "sms", "body": "5", "media_urls": []},
            "conversation": {"persona_id": "persona_1", "number_id": "num_1"},
            "conversation_metadata": {"step": 2},
            "recent_history": history,
        },
    }
    body = formats.render(WEBHOOK_FORMAT, payload, {"context_limit": 3})
    assert body is not None
    assert body["event"] == "agent.message"
    assert body["agentId"] == "persona_1"
    assert body["data"]["numberId"] == "num_1"
    assert body["conversationState"] == {"step": 2}
    assert [h["content"] for h in body["recentHistory"]] == ["3", "4", "5"]
    assert [h["direction"] for h in body["recentHistory"]] == ["inbound", "outbound", "inbound"]
    none = formats.render(WEBHOOK_FORMAT, payload, {"context_limit": 0})
    assert none is not None
    assert none["recentHistory"] == []
