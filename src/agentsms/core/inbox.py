"""The web inbox: conversations with their last message, unread count and persona name.

Unread means: inbound messages after the conversation's last outbound message (from the
agent or a human). Answering a person is what "reads" their texts; opening a conversation
does not, so two people watching the same inbox see the same counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import conversations, personas
from agentsms.store.records import ConversationRecord, MessageRecord
from agentsms.store.repositories import inbox as repo
from agentsms.store.repositories.conversations import ConversationFilter


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One line of the inbox."""

    conversation: ConversationRecord
    last_message: MessageRecord | None
    unread: int
    persona_name: str | None

    @property
    def id(self) -> str:
        """The conversation's id."""
        return self.conversation.id

    @property
    def persona_id(self) -> str | None:
        """The persona the conversation's agent speaks as, if any."""
        value: Any = (self.conversation.settings or {}).get("persona_id")
        return str(value) if value is not None else None


async def persona_names(conn: AsyncConnection, project_id: str) -> dict[str, str]:
    """Each persona's name by its id."""
    return {row["id"]: row["name"] for row in await personas.list_personas(conn, project_id)}


async def summarize(
    conn: AsyncConnection, project_id: str, rows: Sequence[ConversationRecord]
) -> list[InboxRow]:
    """Inbox lines for these conversations, in the same order."""
    ids = [row.id for row in rows]
    last = await repo.last_messages(conn, ids)
    unread = await repo.unread_counts(conn, ids)
    names = await persona_names(conn, project_id) if rows else {}
    found = []
    for row in rows:
        persona = (row.settings or {}).get("persona_id")
        found.append(
            InboxRow(
                conversation=row,
                last_message=last.get(row.id),
                unread=unread.get(row.id, 0),
                persona_name=names.get(persona) if isinstance(persona, str) else None,
            )
        )
    return found


async def inbox(conn: AsyncConnection, where: ConversationFilter, limit: int) -> list[InboxRow]:
    """Conversations newest first, as inbox lines (``status`` is checked)."""
    rows = await conversations.list_conversations(conn, where, limit)
    return await summarize(conn, where.project_id, rows)


async def needing_attention(conn: AsyncConnection, project_id: str, limit: int) -> list[InboxRow]:
    """Open conversations that wait for a human, newest first."""
    where = ConversationFilter(project_id=project_id, status=conversations.NEEDS_ATTENTION)
    return await inbox(conn, where, limit)


async def lines_for(conn: AsyncConnection, project_id: str, ids: Sequence[str]) -> list[InboxRow]:
    """Inbox lines for these conversations of the project (unknown ids are skipped)."""
    rows = await repo.conversations_by_ids(conn, project_id, ids)
    return await summarize(conn, project_id, rows)
