"""The web inbox's summaries of conversations: last message and unread count."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.records import ConversationRecord, MessageRecord
from agentsms.store.tables import conversations, messages


async def last_messages(
    conn: AsyncConnection, conversation_ids: Sequence[str]
) -> dict[str, MessageRecord]:
    """The newest message of each of these conversations (those that have one)."""
    if not conversation_ids:
        return {}
    m = messages.c
    newest = (
        select(m.conversation_id, func.max(m.id).label("last_id"))
        .where(m.conversation_id.in_(list(conversation_ids)))
        .group_by(m.conversation_id)
        .subquery()
    )
    query = select(messages).join(newest, m.id == newest.c.last_id)
    rows = [MessageRecord.from_row(row) for row in await conn.execute(query)]
    return {row.conversation_id: row for row in rows if row.conversation_id is not None}


async def unread_counts(conn: AsyncConnection, conversation_ids: Sequence[str]) -> dict[str, int]:
    """How many inbound messages each conversation has after its last outbound one."""
    if not conversation_ids:
        return {}
    m = messages.c
    ids = list(conversation_ids)
    last_out = (
        select(m.conversation_id, func.max(m.id).label("last_out"))
        .where(m.conversation_id.in_(ids), m.direction == "outbound")
        .group_by(m.conversation_id)
        .subquery()
    )
    query = (
        select(m.conversation_id, func.count())
        .select_from(messages.outerjoin(last_out, m.conversation_id == last_out.c.conversation_id))
        .where(
            m.conversation_id.in_(ids),
            m.direction == "inbound",
            or_(last_out.c.last_out.is_(None), m.id > last_out.c.last_out),
        )
        .group_by(m.conversation_id)
    )
    return {cid: int(n) for cid, n in (await conn.execute(query)).all()}


async def conversations_by_ids(
    conn: AsyncConnection, project_id: str, conversation_ids: Sequence[str]
) -> list[ConversationRecord]:
    """These conversations of the project, newest first."""
    if not conversation_ids:
        return []
    c = conversations.c
    query = (
        select(conversations)
        .where(c.project_id == project_id, c.id.in_(list(conversation_ids)))
        .order_by(c.id.desc())
    )
    return [ConversationRecord.from_row(row) for row in await conn.execute(query)]
