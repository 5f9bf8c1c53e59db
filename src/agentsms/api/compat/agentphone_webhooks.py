"""AgentPhone's webhook bodies: the ``agentphone`` payload format of a webhook endpoint.

A pure translation of agentsms's standard webhook payload (no FastAPI, no database), so a
worker delivering webhooks loads it without loading AgentPhone's routers. ``runtime``
registers it with ``webhooks.formats`` at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WEBHOOK_FORMAT = "agentphone"
AGENTPHONE_EVENTS = ("message.received", "reaction.received")
DEFAULT_CONTEXT_LIMIT = 10


def _history(data: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    entries = list(data.get("recent_history") or [])
    kept = entries[-limit:] if limit > 0 else []
    return [
        {
            "content": entry.get("body"),
            "direction": "inbound" if entry.get("role") == "person" else "outbound",
            "channel": entry.get("channel"),
            "at": entry.get("created_at"),
        }
        for entry in kept
    ]


def webhook_body(payload: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any] | None:
    """AgentPhone's ``agent.message`` / ``agent.reaction`` body of a stored agentsms event
    (``message.received`` / ``reaction.received``), or ``None`` for other events.
    ``options``: ``context_limit`` bounds ``recentHistory``; an agent's own webhook has
    ``agent_id`` (only that agent's conversations), the account's ``skip_agents`` (the
    agents that have their own)."""
    kind = payload.get("type")
    if kind not in AGENTPHONE_EVENTS:
        return None
    data: Mapping[str, Any] = payload.get("data") or {}
    conversation: Mapping[str, Any] = data.get("conversation") or {}
    persona = conversation.get("persona_id")
    own = options.get("agent_id")
    elsewhere = (own is not None and persona != own) or persona in (
        options.get("skip_agents") or ()
    )
    if elsewhere and not payload.get("test"):
        return None  # another agent's webhook, or this agent's own webhook, gets it
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
    shaped: dict[str, Any] = {
        "event": event,
        "channel": channel,
        "timestamp": payload.get("created_at"),
        "agentId": conversation.get("persona_id"),
        "data": body,
        "conversationState": dict(data.get("conversation_metadata") or {}),
        "recentHistory": _history(data, limit),
    }
    if payload.get("test"):
        shaped["test"] = True
    return shaped
