"""Reactions to messages (iMessage tapbacks: love, like, dislike, laugh, emphasize,
question).

``react`` records our reaction to a message of an iMessage conversation; SMS, MMS and
WhatsApp messages cannot carry one. ``receive`` records a person's reaction to one of our
messages and tells the customer (``reaction.received``, with the conversation's context).

No carrier adapter of agentsms speaks iMessage tapbacks yet: an outbound reaction is
stored (and listed with its message) but not handed to a carrier; the simulator's
``POST /v1/simulator/reactions`` plays a person reacting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.errors import FieldError, NotFound, ValidationFailed, invalid
from agentsms.ids import new_id
from agentsms.store.records import MessageRecord
from agentsms.store.repositories import Row
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.repositories import reactions as repo
from agentsms.store.types import utcnow
from agentsms.webhooks import emit

REACTIONS = ("love", "like", "dislike", "laugh", "emphasize", "question")
REACTIONS_UNSUPPORTED = "reactions_unsupported"
RECEIVED = "reaction.received"


def _check(reaction: str) -> None:
    if reaction not in REACTIONS:
        raise invalid("reaction", f"must be one of {', '.join(REACTIONS)}")


async def _message(conn: AsyncConnection, project_id: str, message_id: str) -> MessageRecord:
    message = await messages_repo.get_message(conn, project_id, message_id)
    if message is None:
        raise NotFound(f"message {message_id} not found")
    if message.channel != "imessage":
        raise ValidationFailed(
            f"message_id: reactions are iMessage only; message {message_id} went by "
            f"{message.channel}",
            errors=[FieldError("message_id", "is not an iMessage message")],
            code=REACTIONS_UNSUPPORTED,
        )
    return message


def _row(message: MessageRecord, reaction: str, direction: str) -> dict[str, Any]:
    ours = message.from_number if message.direction == "outbound" else message.to_number
    theirs = message.contact
    return {
        "id": new_id("rxn"),
        "project_id": message.project_id,
        "message_id": message.id,
        "conversation_id": message.conversation_id,
        "direction": direction,
        "reaction": reaction,
        "channel": message.channel,
        "from_number": ours if direction == "outbound" else theirs,
        "to_number": theirs if direction == "outbound" else ours,
        "created_at": utcnow(),
    }


async def react(conn: AsyncConnection, project_id: str, message_id: str, reaction: str) -> Row:
    """Our ``reaction`` to a message of an iMessage conversation."""
    _check(reaction)
    message = await _message(conn, project_id, message_id)
    row = _row(message, reaction, "outbound")
    await repo.insert_reaction(conn, row)
    return row


async def receive(conn: AsyncConnection, project_id: str, message_id: str, reaction: str) -> Row:
    """The person's ``reaction`` to a message; emits ``reaction.received``."""
    _check(reaction)
    message = await _message(conn, project_id, message_id)
    row = _row(message, reaction, "inbound")
    await repo.insert_reaction(conn, row)
    data: dict[str, Any] = {"reaction": public(row)}
    if row["conversation_id"] is not None:
        # Imported when used: core.conversations imports core.messages.
        from agentsms.core import conversations

        context = await conversations.webhook_context(conn, row["conversation_id"])
        if context is not None:
            conversation: Mapping[str, Any] = context["conversation"]
            data |= {
                "conversation": conversation,
                "conversation_metadata": dict(conversation.get("metadata") or {}),
                "recent_history": context["recent_history"],
            }
    await emit(conn, project_id=project_id, event_type=RECEIVED, data=data)
    return row


async def reactions_of(conn: AsyncConnection, project_id: str, message_id: str) -> Sequence[Row]:
    """A message's reactions, oldest first."""
    if await messages_repo.get_message(conn, project_id, message_id) is None:
        raise NotFound(f"message {message_id} not found")
    return await repo.reactions_of(conn, project_id, message_id)


def public(row: Row) -> dict[str, Any]:
    """A reaction as the API and webhooks show it."""
    return {
        "id": row["id"],
        "message_id": row["message_id"],
        "conversation_id": row["conversation_id"],
        "direction": row["direction"],
        "reaction": row["reaction"],
        "channel": row["channel"],
        "from": row["from_number"],
        "to": row["to_number"],
        "created_at": row["created_at"].isoformat().replace("+00:00", "Z"),
    }
