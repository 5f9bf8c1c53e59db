"""``/v1/messages``: send one, read, list, cancel."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from agentsms import webhooks
from agentsms.api import render, schemas
from agentsms.api.deps import CurrentProject, State, app_state
from agentsms.api.idempotent import answer, request_digest
from agentsms.api.intake import PendingSend
from agentsms.api.send_route import SendRoute
from agentsms.config import Settings
from agentsms.core import idempotency, personas, reactions
from agentsms.core import messages as service
from agentsms.core.conversations import ConversationInput
from agentsms.core.phone import parse_phone_field
from agentsms.core.sending import OutboundSpec
from agentsms.store.repositories.messages import MessageFilter

router = APIRouter(prefix="/v1/messages", tags=["messages"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Replays the first response for 24 h"),
]


def conversation_input(
    options: schemas.ConversationOptions | None, settings: Settings
) -> ConversationInput | None:
    """A send's ``conversation`` object: the given fields only, the webhook URL vetted."""
    if options is None:
        return None
    given = options.model_dump(exclude_unset=True, exclude={"metadata"})
    if given.get("persona_id") is not None:
        given["persona_id"] = str(given["persona_id"])
    if options.webhook_url is not None:
        webhooks.check_url(options.webhook_url, "conversation.webhook_url", settings)
    agent = given.get("persona_settings")
    if isinstance(agent, dict):
        personas.check_agent_urls(
            agent,
            "conversation.persona_settings",
            partial(webhooks.url_problem, settings=settings),
        )
    return ConversationInput(settings=given, metadata=options.metadata)


def to_spec(body: schemas.MessageCreate, settings: Settings) -> OutboundSpec:
    return OutboundSpec(
        to=body.to,
        body=body.body,
        from_=body.from_,
        media_urls=body.media_urls,
        channel=body.channel,
        send_at=body.send_at,
        metadata=body.metadata,
        external_id=body.external_id,
        validity_seconds=body.validity_seconds,
        variables=body.variables,
        literal=body.literal,
        conversation=conversation_input(body.conversation, settings),
        new_conversation=body.new_conversation,
        template_id=body.template_id,
        send_style=body.send_style,
        reply_to_message_id=body.reply_to_message_id,
    )


async def create_message(
    body: schemas.MessageCreate,
    project: CurrentProject,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Validate, store and queue one message. ``202`` means it is committed."""
    state = app_state(request)
    pending = PendingSend(project, to_spec(body, state.settings))
    if idempotency_key is None:
        result = await state.sends.submit(pending)
    else:
        async with idempotency.claim(project.id, idempotency_key):
            result = await state.sends.submit(
                replace(pending, key=idempotency_key, digest=request_digest(body, "/v1/messages"))
            )
    return answer(result.status, result.body, replayed=result.replayed)


router.add_api_route(
    "",
    create_message,
    methods=["POST"],
    status_code=202,
    response_model=schemas.Message,
    responses={422: {"model": schemas.Problem}, 409: {"model": schemas.Problem}},
    summary="Send a message",
    route_class_override=SendRoute,
)


@router.get("/{message_id}", response_model=schemas.Message, summary="Get a message")
async def get_message(message_id: str, project: CurrentProject, state: State) -> schemas.Message:
    """The message: status, sender, segments, price, timestamps and the last carrier error. ``404``
    when it is not in this project.
    """
    async with state.db.read() as conn:
        return render.message(await service.get_message(conn, project.id, message_id))


@router.get(
    "/{message_id}/events",
    response_model=list[schemas.MessageEvent],
    summary="A message's status changes, oldest first",
)
async def message_events(
    message_id: str, project: CurrentProject, state: State
) -> list[schemas.MessageEvent]:
    """Every status change of the message (queued, sent, delivered, failed ...) with its time and
    carrier detail, oldest first. ``404`` when it is not in this project.
    """
    async with state.db.read() as conn:
        return [render.event(row) for row in await service.timeline(conn, project.id, message_id)]


@router.get("", response_model=schemas.MessagePage, summary="List messages, newest first")
async def list_messages(
    project: CurrentProject,
    state: State,
    status: schemas.MessageStatus | None = None,
    purpose: schemas.Purpose | None = None,
    to: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    batch_id: str | None = None,
    conversation_id: str | None = None,
    created_after: Annotated[schemas.Moment | None, Query(description="ISO 8601 or unix")] = None,
    created_before: Annotated[schemas.Moment | None, Query(description="ISO 8601 or unix")] = None,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=500),
) -> schemas.MessagePage:
    """The project's messages, newest first, filtered by status, ``to``, ``from``, batch,
    conversation and creation time. A page holds up to ``limit``; pass ``next_cursor`` as
    ``cursor`` for the next one. A phone number that cannot be read is ``422``.
    """
    where = MessageFilter(
        project_id=project.id,
        status=status,
        purpose=purpose,
        to=e164_filter(to, "to"),
        from_=e164_filter(from_, "from"),
        batch_id=batch_id,
        conversation_id=conversation_id,
        created_after=created_after,
        created_before=created_before,
        before_id=cursor,
    )
    async with state.db.read() as conn:
        rows = await service.list_messages(conn, where, limit + 1)
    page = [render.message(row) for row in rows[:limit]]
    return schemas.MessagePage(data=page, next_cursor=page[-1].id if len(rows) > limit else None)


def e164_filter(value: str | None, field: str) -> str | None:
    """A phone number query parameter, normalised as a send normalises it."""
    if value is None:
        return None
    return parse_phone_field(value, field).e164


@router.post(
    "/{message_id}/cancel",
    response_model=schemas.Message,
    responses={409: {"model": schemas.Problem}},
    summary="Cancel a scheduled or queued message",
)
async def cancel_message(message_id: str, project: CurrentProject, state: State) -> schemas.Message:
    """Cancel a message that is still scheduled or queued; it is never sent. Returns the message,
    now ``canceled``. ``409`` ``not_cancelable`` once it was handed to the carrier.
    """
    async with state.db.write() as conn:
        return render.message(await service.cancel_message(conn, project.id, message_id))


@router.post(
    "/{message_id}/reactions",
    status_code=201,
    response_model=schemas.Reaction,
    responses={422: {"model": schemas.Problem}, 404: {"model": schemas.Problem}},
    summary="React to an iMessage message (tapback)",
)
async def react(
    message_id: str, body: schemas.ReactionCreate, project: CurrentProject, state: State
) -> schemas.Reaction:
    """iMessage only: a message of another channel is refused (``reactions_unsupported``)."""
    async with state.db.write() as conn:
        row = await reactions.react(conn, project.id, message_id, body.reaction)
    return render.reaction(row)


@router.get(
    "/{message_id}/reactions",
    response_model=schemas.ReactionList,
    summary="A message's reactions, oldest first",
)
async def list_reactions(
    message_id: str, project: CurrentProject, state: State
) -> schemas.ReactionList:
    """The tapbacks on the message, oldest first. ``404`` when it is not in
    this project.
    """
    async with state.db.read() as conn:
        rows = await reactions.reactions_of(conn, project.id, message_id)
    return schemas.ReactionList(data=[render.reaction(row) for row in rows])
