"""``/v1/conversations``: threads with people, their messages, takeover, end, agent control."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query

from agentsms import agents
from agentsms.api import render, schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.api.messages import e164_filter
from agentsms.core import agent_turns
from agentsms.core import conversations as service
from agentsms.numeric import MAX_PAGE_OFFSET
from agentsms.store.records import ConversationRecord, MessageRecord
from agentsms.store.repositories.conversations import ConversationFilter

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


def conversation(
    row: ConversationRecord, messages: Sequence[MessageRecord] | None = None
) -> schemas.Conversation:
    settings = dict(row.settings or {})
    return schemas.Conversation(
        id=row.id,
        status=row.status,
        agent_number=row.agent_number,
        user_number=row.user_number,
        channel=row.channel,
        persona_id=settings.get("persona_id"),
        agent_paused=bool(row.agent_paused),
        metadata=dict(row.metadata or {}),
        settings=agents.without_secrets(settings),
        outcome=row.outcome,
        extracted=dict(row.extracted or {}),
        end_reason=row.end_reason,
        current_node_id=row.current_node_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        messages=None if messages is None else [render.message(m) for m in messages],
    )


@router.get("", response_model=schemas.ConversationPage, summary="List conversations")
async def list_conversations(
    project: CurrentProject,
    state: State,
    status: schemas.ConversationStatus | None = None,
    agent_number: Annotated[str | None, Query(description="Our number")] = None,
    user_number: Annotated[str | None, Query(description="The person's number")] = None,
    persona_id: str | None = None,
    outcome: str | None = None,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(
        default=0, ge=0, le=MAX_PAGE_OFFSET, description="Skip this many (after the cursor)"
    ),
    with_total: bool = Query(default=False, description="Count every match into total"),
) -> schemas.ConversationPage:
    """Newest first."""
    where = ConversationFilter(
        project_id=project.id,
        status=status,
        agent_number=e164_filter(agent_number, "agent_number"),
        user_number=e164_filter(user_number, "user_number"),
        persona_id=persona_id,
        outcome=outcome,
        before_id=cursor,
    )
    async with state.db.read() as conn:
        rows = await service.list_conversations(conn, where, limit + 1, offset)
        total = await service.count_conversations(conn, where) if with_total else None
    page = [conversation(row) for row in rows[:limit]]
    return schemas.ConversationPage(
        data=page, next_cursor=page[-1].id if len(rows) > limit else None, total=total
    )


@router.get(
    "/{conversation_id}",
    response_model=schemas.Conversation,
    summary="A conversation with its messages",
)
async def get_conversation(
    conversation_id: str, project: CurrentProject, state: State
) -> schemas.Conversation:
    """The conversation (person, our number, status, agent state, metadata, outcome) with its
    messages, oldest first. ``404`` when it is not in this project.
    """
    async with state.db.read() as conn:
        row = await service.get(conn, project.id, conversation_id)
        messages = await service.messages_of(conn, conversation_id)
    return conversation(row, messages)


@router.post(
    "/{conversation_id}/messages",
    status_code=202,
    response_model=schemas.Message,
    responses={409: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
    summary="Send within the conversation as a human (pauses the agent)",
)
async def send_in_conversation(
    conversation_id: str,
    body: schemas.ConversationMessageCreate,
    project: CurrentProject,
    state: State,
) -> schemas.Message:
    """A human answers within the conversation: the text goes to the person from the conversation's
    number, and the agent is paused until resumed. ``202`` with the message; ``409``
    ``conversation_not_active`` once the conversation has ended.
    """
    async with state.db.write() as conn:
        row = await agent_turns.human_message(
            conn,
            state.outbox,
            project.id,
            conversation_id,
            body.body,
            body.media_urls,
            project_settings=project.settings,
        )
    return render.message(row)


@router.post(
    "/{conversation_id}/end", response_model=schemas.Conversation, summary="End the conversation"
)
async def end_conversation(
    conversation_id: str,
    project: CurrentProject,
    state: State,
    body: schemas.ConversationEnd | None = None,
) -> schemas.Conversation:
    """Ends an active conversation (an ended one is returned unchanged)."""
    body = body or schemas.ConversationEnd()
    async with state.db.write() as conn:
        row = await service.end(
            conn, project.id, conversation_id, outcome=body.outcome, extracted=body.extracted
        )
    return conversation(row)


@router.patch(
    "/{conversation_id}",
    response_model=schemas.Conversation,
    summary="Update metadata (merged) or the agent's context",
)
async def update_conversation(
    conversation_id: str,
    body: schemas.ConversationUpdate,
    project: CurrentProject,
    state: State,
) -> schemas.Conversation:
    """Merge keys into the conversation's metadata or replace the context its agent reads. Returns
    the conversation.
    """
    settings = body.model_dump(exclude_unset=True, exclude={"metadata"})
    async with state.db.write() as conn:
        row = await service.update(
            conn, project.id, conversation_id, metadata=body.metadata, settings=settings
        )
    return conversation(row)


@router.post(
    "/{conversation_id}/agent",
    response_model=schemas.Conversation,
    responses={422: {"model": schemas.Problem}},
    summary="Pause or resume the conversation's agent",
)
async def control_agent(
    conversation_id: str,
    body: schemas.AgentControl,
    project: CurrentProject,
    state: State,
) -> schemas.Conversation:
    """Pause the agent (a human answers) or resume it; resuming lets the agent answer the person's
    last text if it is still unanswered. ``422`` ``conversation_not_active`` for an ended
    conversation.
    """
    async with state.db.write() as conn:
        row = await service.set_agent_paused(conn, project.id, conversation_id, body.paused)
    return conversation(row)
