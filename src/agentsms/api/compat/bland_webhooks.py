"""Bland's webhook bodies: the ``bland`` format a send's ``webhook`` URL receives.

A pure translation of agentsms's standard webhook payload (no FastAPI, no database), so a
worker delivering webhooks loads it without loading Bland's router. ``runtime`` registers
it with ``webhooks.formats`` at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WEBHOOK_FORMAT = "bland"

# Acceptance is the send's own answer; every later step of a message is a webhook.
_MESSAGE_STEPS = frozenset(
    {"sent", "delivered", "undelivered", "failed", "received", "canceled", "expired"}
)


def message_webhook(data: Mapping[str, Any]) -> dict[str, Any]:
    """Bland's message webhook of a ``message.*`` event: the message as the conversation's
    ``messages`` show it, where it stands, and the send's ``metadata``."""
    message = data.get("message") or {}
    conversation = data.get("conversation") or {}
    inbound = message.get("direction") == "inbound"
    return {
        "type": "message",
        "conversation_id": message.get("conversation_id"),
        "message_id": message.get("id"),
        "status": str(message.get("status") or "").upper(),
        "message": message.get("body"),
        "from": message.get("from"),
        "to": message.get("to"),
        "sender": "USER" if inbound else "AGENT",
        "phone_number": conversation.get("user_number"),
        "agent_number": conversation.get("agent_number"),
        "channel": message.get("channel"),
        "error_code": message.get("error_code"),
        "created_at": message.get("created_at"),
        "metadata": dict(data.get("conversation_metadata") or {}),
    }


def status_webhook(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Bland's webhook of an event: a message webhook for each step of a message after its
    acceptance, the status webhook for ``conversation.ended``, nothing for others."""
    kind = str(payload.get("type") or "")
    data = payload.get("data") or {}
    if kind.startswith("message.") and kind.removeprefix("message.") in _MESSAGE_STEPS:
        return message_webhook(data)
    if kind != "conversation.ended":
        return None
    conversation = data.get("conversation") or {}
    return {
        "type": "status",
        "conversation_id": conversation.get("id"),
        "status": "ended",
        "phone_number": conversation.get("user_number"),
        "agent_number": conversation.get("agent_number"),
        "channel": conversation.get("channel"),
        "message_count": data.get("message_count", 0),
        "metadata": dict(data.get("metadata") or {}),
    }
