"""``/v1/batches``: many recipients in one all-or-nothing request."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from agentsms.api import render, schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.api.idempotent import accept
from agentsms.api.messages import IdempotencyKey, conversation_input
from agentsms.config import Settings
from agentsms.core import messages as service
from agentsms.core.sending import BatchSpec, OutboundSpec
from agentsms.store.repositories.messages import MessageFilter

router = APIRouter(prefix="/v1/batches", tags=["batches"])


def to_spec(body: schemas.BatchCreate, settings: Settings) -> BatchSpec:
    """The batch ``body`` asks for (its size is the outbox's to check)."""
    items: list[OutboundSpec] = []
    given = conversation_input(body.conversation, settings)
    shared = OutboundSpec(
        to="",
        body=body.body,
        from_=body.from_,
        media_urls=body.media_urls,
        channel=body.channel,
        send_at=body.send_at,
        validity_seconds=body.validity_seconds,
        variables=body.variables,
        literal=body.literal,
        conversation=given,
        new_conversation=body.new_conversation,
    )
    for recipient in body.recipients:
        if isinstance(recipient, str):
            items.append(shared.sent_to(recipient))
        else:
            items.append(
                OutboundSpec(
                    to=recipient.to,
                    body=recipient.body if recipient.body is not None else body.body,
                    from_=body.from_,
                    media_urls=(
                        recipient.media_urls
                        if recipient.media_urls is not None
                        else body.media_urls
                    ),
                    channel=body.channel,
                    send_at=recipient.send_at or body.send_at,
                    metadata=recipient.metadata,
                    external_id=recipient.external_id,
                    validity_seconds=body.validity_seconds,
                    variables=body.variables | recipient.variables,
                    literal=body.literal,
                    conversation=given,
                    new_conversation=body.new_conversation,
                )
            )
    return BatchSpec(items=items, spacing_seconds=body.spacing_seconds, metadata=body.metadata)


@router.post(
    "",
    status_code=202,
    response_model=schemas.Batch,
    responses={422: {"model": schemas.Problem}, 409: {"model": schemas.Problem}},
    summary="Send to many recipients",
)
async def create_batch(
    body: schemas.BatchCreate,
    project: CurrentProject,
    state: State,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Validate every recipient, then store and queue them all in one transaction."""
    spec = to_spec(body, state.settings)

    async def work(conn: AsyncConnection) -> schemas.Batch:
        result = await state.outbox.send_batch(
            conn, project.id, spec, project_settings=project.settings
        )
        return render.batch(result.batch, result.counts, result.message_ids)

    return await accept(state, project.id, idempotency_key, body, "/v1/batches", work)


@router.get("/{batch_id}", response_model=schemas.Batch, summary="A batch and its progress")
async def get_batch(batch_id: str, project: CurrentProject, state: State) -> schemas.Batch:
    """The batch with a count of its messages per status, so progress reads at a glance. ``404``
    when it is not in this project.
    """
    async with state.db.read() as conn:
        row, counts = await service.get_batch(conn, project.id, batch_id)
    return render.batch(row, counts)


@router.get(
    "/{batch_id}/messages", response_model=schemas.MessagePage, summary="A batch's messages"
)
async def batch_messages(
    batch_id: str,
    project: CurrentProject,
    state: State,
    status: schemas.MessageStatus | None = None,
    cursor: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> schemas.MessagePage:
    """The batch's messages, newest first, optionally of one status; cursor pagination as in ``GET
    /v1/messages``. ``404`` when the batch is not in this project.
    """
    where = MessageFilter(project_id=project.id, batch_id=batch_id, status=status, before_id=cursor)
    async with state.db.read() as conn:
        await service.get_batch(conn, project.id, batch_id)
        rows = await service.list_messages(conn, where, limit + 1)
    page = [render.message(row) for row in rows[:limit]]
    return schemas.MessagePage(data=page, next_cursor=page[-1].id if len(rows) > limit else None)
