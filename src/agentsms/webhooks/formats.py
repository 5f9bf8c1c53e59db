"""Payload formats: how a stored event is written into one endpoint's request body.

An endpoint names a format (``None``: agentsms's own payload, as stored). A format turns
the stored payload and the endpoint's ``options`` into the body to send, or ``None`` when
the endpoint has no use for that event (the delivery is then skipped, not failed).

- ``agentphone``: AgentPhone's agent webhooks. ``message.received`` becomes
  ``{"event": "agent.message", "channel", "timestamp", "agentId", "data": {messageId,
  conversationId, numberId, from, to, message, mediaUrls, direction, receivedAt},
  "conversationState", "recentHistory"}`` and ``reaction.received`` becomes
  ``agent.reaction``; ``options.context_limit`` bounds ``recentHistory``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

AGENTPHONE = "agentphone"
AGENTPHONE_EVENTS = ("message.received", "reaction.received")
DEFAULT_CONTEXT_LIMIT = 10

Format = Callable[[Mapping[str, Any], Mapping[str, Any]], "dict[str, Any] | None"]


def native(payload: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any] | None:
    """agentsms's own payload, unchanged."""
    return dict(payload)


def _history(data: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    entries = list(data.get("recent_history") or [])
    kept = entries[-limit:] if limit > 0 else []
    return [
        {
            "id": entry.get("id"),
            "direction": "inbound" if entry.get("role") == "person" else "outbound",
            "content": entry.get("body"),
            "timestamp": entry.get("created_at"),
        }
        for entry in kept
    ]


def agentphone(payload: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any] | None:
    """AgentPhone's ``agent.message`` / ``agent.reaction`` body, or ``None`` for other events."""
    kind = payload.get("type")
    if kind not in AGENTPHONE_EVENTS:
        return None
    data: Mapping[str, Any] = payload.get("data") or {}
    conversation: Mapping[str, Any] = data.get("conversation") or {}
    limit = int(options.get("context_limit", DEFAULT_CONTEXT_LIMIT))
    if kind == "message.received":
        message: Mapping[str, Any] = data.get("message") or {}
        channel = message.get("channel")
        body: dict[str, Any] = {
            "messageId": message.get("id"),
            "conversationId": message.get("conversation_id"),
            "numberId": conversation.get("number_id"),
            "from": message.get("from"),
            "to": message.get("to"),
            "message": message.get("body"),
            "mediaUrls": list(message.get("media_urls") or []),
            "direction": "inbound",
            "receivedAt": message.get("created_at"),
        }
        event = "agent.message"
    else:
        reaction: Mapping[str, Any] = data.get("reaction") or {}
        channel = reaction.get("channel")
        body = {
            "reactionId": reaction.get("id"),
            "messageId": reaction.get("message_id"),
            "conversationId": reaction.get("conversation_id"),
            "numberId": conversation.get("number_id"),
            "from": reaction.get("from"),
            "to": reaction.get("to"),
            "reactionType": reaction.get("reaction"),
            "direction": reaction.get("direction"),
            "receivedAt": reaction.get("created_at"),
        }
        event = "agent.reaction"
    return {
        "event": event,
        "channel": channel,
        "timestamp": payload.get("created_at"),
        "agentId": conversation.get("persona_id"),
        "data": body,
        "conversationState": dict(data.get("conversation_metadata") or {}),
        "recentHistory": _history(data, limit),
    }


FORMATS: dict[str, Format] = {"native": native, AGENTPHONE: agentphone}


def render(
    name: str | None, payload: Mapping[str, Any], options: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The body format ``name`` (``None``: native) makes of ``payload``."""
    return FORMATS[name or "native"](payload, options or {})
