"""AgentPhone's messaging API, drop-in at ``/compat/agentphone``.

``Authorization: Bearer <agentsms API key>``. ``POST /v1/messages`` sends one message from
an agent (an agentsms persona: ``agent_id``) to ``to_number``: ``media_urls`` with one URL
is an MMS, with 2 to 20 an iMessage carousel (no text alongside), ``send_style`` an iMessage
effect, ``reply_to_message_id`` an inline reply. ``GET /v1/numbers`` lists the project's
numbers and ``GET/POST /v1/agents`` its personas.

Errors are ``{"error": {"message", "code", "type", "details": [{"field", "message",
"type"}]}}``; a validation failure (422) also carries FastAPI's ``detail`` list, the shape
the page's generated clients read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import JSONResponse

from agentsms.api.compat._common import (
    Failure,
    Strict,
    Vendor,
    bearer_token,
    invalid,
    iso_z,
    json_body_docs,
    json_errors,
    parse_json,
    project_for_api_key,
    renamed,
)
from agentsms.api.compat.agentphone_webhooks import AGENTPHONE_EVENTS, DEFAULT_CONTEXT_LIMIT
from agentsms.api.compat.agentphone_webhooks import WEBHOOK_FORMAT as WEBHOOK_FORMAT
from agentsms.api.deps import State, client_address
from agentsms.api.state import AppState
from agentsms.core import conversations, numbers, personas, reactions, webhook_endpoints
from agentsms.core.conversations import ConversationFilter, ConversationInput
from agentsms.core.projects import Project
from agentsms.core.sending import OutboundSpec
from agentsms.core.webhook_endpoints import EndpointInput
from agentsms.errors import FieldError, NotFound, ValidationFailed
from agentsms.numeric import MAX_PAGE_OFFSET
from agentsms.store.records import ConversationRecord, MessageRecord
from agentsms.store.repositories import Row

NAME = "agentphone"
router = APIRouter(prefix=f"/compat/{NAME}", tags=["compat: AgentPhone"])
MAX_CAROUSEL = 20

# -- errors -----------------------------------------------------------------------------------

_CODES: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "invalid_request_error"),
    401: ("UNAUTHORIZED", "authentication_error"),
    403: ("FORBIDDEN", "permission_error"),
    404: ("NOT_FOUND", "not_found_error"),
    405: ("METHOD_NOT_ALLOWED", "invalid_request_error"),
    408: ("REQUEST_TIMEOUT", "api_error"),
    409: ("CONFLICT", "invalid_request_error"),
    413: ("REQUEST_TOO_LARGE", "invalid_request_error"),
    422: ("VALIDATION_ERROR", "validation_error"),
    429: ("RATE_LIMIT_EXCEEDED", "rate_limit_error"),
    500: ("INTERNAL_ERROR", "api_error"),
    501: ("NOT_IMPLEMENTED", "invalid_request_error"),
    502: ("CARRIER_ERROR", "api_error"),
    503: ("SERVICE_UNAVAILABLE", "api_error"),
    504: ("GATEWAY_TIMEOUT", "api_error"),
}
# Our codes that AgentPhone names its own way.
_SPECIFIC = {
    "phone_number_not_found": "PHONE_NUMBER_NOT_FOUND",
    "carrier_error": "CARRIER_ERROR",
    "spend_cap_reached": "SPEND_CAP_REACHED",
}


def error_body(failure: Failure) -> tuple[int, dict[str, Any]]:
    """AgentPhone's status and ``{"error": {...}}`` body for ``failure``."""
    code, kind = _CODES.get(failure.status, ("ERROR", "api_error"))
    code = _SPECIFIC.get(failure.code, code)
    details = [
        {"field": e.field, "message": e.message, "type": "value_error"} for e in failure.errors
    ]
    body: dict[str, Any] = {
        "error": {"message": failure.detail, "code": code, "type": kind, "details": details}
    }
    if failure.status == 422:
        body["detail"] = [
            {"loc": ["body", *_loc(e.field)], "msg": e.message, "type": "value_error"}
            for e in failure.errors
        ]
    return failure.status, body


def _loc(field: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        parts.append(int(index) if index else name)
    return parts


render_error = json_errors(error_body)


class PhoneNumberNotFound(NotFound):
    code = "phone_number_not_found"


async def _project(request: Request, state: State) -> Project:
    """The project of ``Authorization: Bearer <API key>``."""
    return await project_for_api_key(state, bearer_token(request), client_address(request))


# -- request and response shapes --------------------------------------------------------------


SendStyle = Literal[
    "celebration",
    "fireworks",
    "lasers",
    "love",
    "confetti",
    "balloons",
    "spotlight",
    "echo",
    "invisible",
    "gentle",
    "loud",
    "slam",
]


class SendMessageRequest(Strict):
    agent_id: str = Field(max_length=40, description="The agent (an agentsms persona id)")
    to_number: str = Field(max_length=32)
    body: str
    media_url: str | None = Field(default=None, description="Deprecated: use media_urls")
    media_urls: list[str] | None = None
    number_id: str | None = Field(default=None, max_length=40)
    send_style: SendStyle | None = None
    reply_to_message_id: str | None = Field(default=None, max_length=40)


class SendMessageResponse(BaseModel):
    id: str
    status: str
    channel: str
    from_number: str
    to_number: str
    media_urls: list[str] = Field(default_factory=list)
    reply_to_message_id: str | None
    reply_parent_unresolved: bool | None


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": code} for status, (code, _) in _CODES.items() if status != 502
}

# Our field names in a validation error as the AgentPhone fields the caller sent.
_RENAMES = {
    "to": "to_number",
    "from": "number_id",
    "channel": "media_urls",
    "conversation.persona_id": "agent_id",
}


def _renamed(error: ValidationFailed, singular: bool) -> ValidationFailed:
    def rename(field: str) -> str:
        name = _RENAMES.get(field, field)
        return "media_url" if singular and name.startswith("media_urls") else name

    return renamed(error, rename)


def _media(body: SendMessageRequest) -> tuple[list[str], str | None]:
    """The media URLs and the channel they need: one is an MMS (the line's media channel),
    2 to 20 an iMessage carousel. AgentPhone takes HTTPS URLs only; the core refuses hosts
    inside the network (``media_url_problem``)."""
    singular = body.media_urls is None and body.media_url is not None
    urls = list(body.media_urls or ([] if body.media_url is None else [body.media_url]))
    name = "media_url" if singular else "media_urls"
    faults: list[FieldError] = []
    if body.media_urls is not None and body.media_url is not None:
        faults.append(FieldError("media_url", "give media_urls or media_url, not both"))
    if len(urls) > MAX_CAROUSEL:
        faults.append(FieldError(name, f"at most {MAX_CAROUSEL} URLs"))
    for i, url in enumerate(urls):
        if urlsplit(url.strip()).scheme.lower() != "https":
            faults.append(
                FieldError(name if singular else f"{name}[{i}]", "must be a public HTTPS URL")
            )
    if faults:
        raise invalid(faults)
    return urls, "imessage" if len(urls) > 1 else None


@router.post(
    "/v1/messages",
    response_model=SendMessageResponse,
    responses=_ERRORS,
    summary="Send Message",
    openapi_extra=json_body_docs(SendMessageRequest),
)
async def send_message(request: Request, state: State) -> SendMessageResponse:
    """An SMS, MMS or iMessage from the agent's line (``number_id``, else chosen)."""
    project = await _project(request, state)
    body = await parse_json(request, SendMessageRequest)
    singular = body.media_urls is None and body.media_url is not None
    urls, channel = _media(body)
    async with state.db.write() as conn:
        sender: str | None = None
        if body.number_id is not None:
            try:
                sender = (await numbers.get_number(conn, project.id, body.number_id))["number"]
            except NotFound:
                raise PhoneNumberNotFound(
                    f"phone number {body.number_id} not found in this account"
                ) from None
        spec = OutboundSpec(
            to=body.to_number,
            body=body.body,
            from_=sender,
            media_urls=urls,
            channel=channel,
            literal=True,
            conversation=ConversationInput(settings={"persona_id": body.agent_id}),
            send_style=body.send_style,
            reply_to_message_id=body.reply_to_message_id,
        )
        try:
            row = await state.outbox.send(conn, project.id, spec, project_settings=project.settings)
        except ValidationFailed as error:
            raise _renamed(error, singular) from None
    return SendMessageResponse(
        id=row.id,
        status=row.status,
        channel=row.channel,
        from_number=row.from_number,
        to_number=row.to_number,
        media_urls=list(row.media_urls or []),
        reply_to_message_id=row.reply_to_message_id,
        reply_parent_unresolved=row.reply_parent_unresolved,
    )


# -- reactions --------------------------------------------------------------------------------

ReactionType = Literal["love", "like", "dislike", "laugh", "emphasize", "question"]


class ReactionRequest(Strict):
    reaction: ReactionType


class ReactionResponse(BaseModel):
    id: str
    reaction_type: str
    message_id: str
    channel: str


@router.post(
    "/v1/messages/{message_id}/reactions",
    response_model=ReactionResponse,
    responses=_ERRORS,
    summary="Send Reaction",
    openapi_extra=json_body_docs(ReactionRequest),
)
async def send_reaction(message_id: str, request: Request, state: State) -> ReactionResponse:
    """An iMessage tapback on a message; a message of an SMS line is refused (422)."""
    project = await _project(request, state)
    body = await parse_json(request, ReactionRequest)
    async with state.db.write() as conn:
        row = await reactions.react(conn, project.id, message_id, body.reaction)
    return ReactionResponse(
        id=row["id"],
        reaction_type=row["reaction"],
        message_id=row["message_id"],
        channel=row["channel"],
    )


# -- numbers and agents -----------------------------------------------------------------------


class PhoneNumber(BaseModel):
    id: str
    phoneNumber: str
    country: str | None
    status: str
    type: str
    capabilities: list[str]
    agentId: str | None
    createdAt: str | None
    purchasedAt: str | None
    externalId: str | None
    expiresAt: str | None


class NumberList(BaseModel):
    data: list[PhoneNumber]
    hasMore: bool
    total: int


def _number(row: Row) -> PhoneNumber:
    settings = dict(row.get("settings") or {})
    persona = (settings.get("conversation") or {}).get("persona_id")
    return PhoneNumber(
        id=row["id"],
        phoneNumber=row["number"],
        country=row["country"],
        status="active",
        type="imessage" if "imessage" in row["capabilities"] else "sms",
        capabilities=list(row["capabilities"]),
        agentId=None if persona is None else str(persona),
        createdAt=iso_z(row.get("created_at")),
        purchasedAt=iso_z(row.get("created_at")),
        externalId=settings.get("external_id"),
        expiresAt=settings.get("expires_at"),
    )


@router.get("/v1/numbers", response_model=NumberList, responses=_ERRORS, summary="List Numbers")
async def list_numbers(request: Request, state: State) -> NumberList:
    """The project's sender numbers, ``limit`` (1-100, default 20) from ``offset``."""
    project = await _project(request, state)
    limit, offset = _page_args(request)
    async with state.db.read() as conn:
        rows = await numbers.list_numbers(conn, project.id)
    page = rows[offset : offset + limit]
    return NumberList(
        data=[_number(row) for row in page],
        hasMore=offset + len(page) < len(rows),
        total=len(rows),
    )


class CreateAgentRequest(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    systemPrompt: str | None = Field(default=None, max_length=20000)
    beginMessage: str | None = Field(default=None, max_length=1600)
    model: str | None = Field(default=None, max_length=200)
    voiceMode: str | None = Field(default=None, max_length=40)


class AgentNumber(BaseModel):
    id: str
    phoneNumber: str
    status: str
    type: str


class Agent(BaseModel):
    id: str
    name: str
    description: str | None
    systemPrompt: str | None
    beginMessage: str | None
    model: str | None
    voiceMode: str | None
    createdAt: str | None
    numbers: list[AgentNumber] = Field(default_factory=list)


class AgentList(BaseModel):
    data: list[Agent]
    hasMore: bool
    total: int


DEFAULT_MODEL = "gpt-4o-mini"


def _agent(persona: Row, config: Mapping[str, Any], lines: Sequence[Row] = ()) -> Agent:
    """The persona as an AgentPhone agent; ``lines`` are the project's numbers (those whose
    conversations default to this persona are the agent's)."""
    agent = dict(config.get("agent") or {})
    extra = dict(config.get("agentphone") or {})
    attached = [_number(row) for row in lines]
    return Agent(
        id=persona["id"],
        name=persona["name"],
        description=extra.get("description"),
        systemPrompt=agent.get("system_prompt") or None,
        beginMessage=extra.get("beginMessage"),
        model=agent.get("model"),
        voiceMode=extra.get("voiceMode"),
        createdAt=iso_z(persona.get("created_at")),
        numbers=[
            AgentNumber(id=n.id, phoneNumber=n.phoneNumber, status=n.status, type=n.type)
            for n in attached
            if n.agentId == persona["id"]
        ],
    )


@router.post(
    "/v1/agents",
    response_model=Agent,
    status_code=201,
    responses=_ERRORS,
    summary="Create Agent",
    openapi_extra=json_body_docs(CreateAgentRequest),
)
async def create_agent(request: Request, state: State) -> JSONResponse:
    """A persona (published) whose agent is an LLM agent with the given system prompt."""
    project = await _project(request, state)
    body = await parse_json(request, CreateAgentRequest)
    config: dict[str, Any] = {
        "agent": {
            "kind": "llm",
            "model": body.model or DEFAULT_MODEL,
            "system_prompt": body.systemPrompt or "",
        },
        "agentphone": {
            "description": body.description,
            "beginMessage": body.beginMessage,
            "voiceMode": body.voiceMode,
        },
    }
    async with state.db.write() as conn:
        persona, version = await personas.create_persona(
            conn, project.id, body.name, config, publish=True
        )
    return JSONResponse(_agent(persona, version["config"]).model_dump(), status_code=201)


@router.get("/v1/agents", response_model=AgentList, responses=_ERRORS, summary="List Agents")
async def list_agents(request: Request, state: State) -> AgentList:
    """The project's personas, each with its production (else newest) version's config."""
    project = await _project(request, state)
    limit, offset = _page_args(request)
    async with state.db.read() as conn:
        rows = await personas.list_personas(conn, project.id)
        lines = await numbers.list_numbers(conn, project.id)
        agents = [
            _agent(row, await agent_config(conn, row), lines)
            for row in rows[offset : offset + limit]
        ]
    return AgentList(data=agents, hasMore=offset + len(agents) < len(rows), total=len(rows))


async def agent_config(conn: AsyncConnection, persona: Row) -> Mapping[str, Any]:
    """The persona's production (else newest) version's config."""
    versions = await personas.persona_versions_of(conn, persona["id"])
    chosen = [v for v in versions if v["version"] == persona["production_version"]]
    config = (chosen or list(versions)[-1:] or [{"config": {}}])[0]["config"]
    return dict(config or {})


# -- conversations ----------------------------------------------------------------------------


class ConversationMessage(BaseModel):
    id: str
    body: str
    fromNumber: str
    toNumber: str
    direction: str
    channel: str
    status: str
    failureReason: str | None
    mediaUrl: str | None
    mediaUrls: list[str]
    receivedAt: str | None
    conversationId: str | None
    replyToMessageId: str | None


class Conversation(BaseModel):
    id: str
    agentId: str | None
    phoneNumberId: str | None
    phoneNumber: str
    participant: str
    channel: str
    status: str
    metadata: dict[str, Any]
    messageCount: int
    lastMessageAt: str | None
    lastMessagePreview: str | None
    createdAt: str | None
    updatedAt: str | None
    endedAt: str | None
    messages: list[ConversationMessage] = Field(
        default_factory=list,
        description="Get Conversation only (empty in lists): its newest messages, oldest first",
    )


class ConversationList(BaseModel):
    data: list[Conversation]
    hasMore: bool
    total: int


class ConversationMessageList(BaseModel):
    data: list[ConversationMessage]
    hasMore: bool
    total: int


class UpdateConversationRequest(Strict):
    metadata: dict[str, Any] | None = Field(
        default=None, description="Merged into the conversation's; a null value removes a key"
    )


def _conversation(
    row: ConversationRecord,
    stats: tuple[int, MessageRecord] | None,
    messages: Sequence[MessageRecord] | None = None,
) -> Conversation:
    """``stats``: the message count and newest message (``conversations.message_stats``)."""
    persona = (row.settings or {}).get("persona_id")
    count, last = stats if stats is not None else (0, None)
    return Conversation(
        id=row.id,
        agentId=None if persona is None else str(persona),
        phoneNumberId=row.number_id,
        phoneNumber=row.agent_number,
        participant=row.user_number,
        channel=row.channel,
        status=row.status,
        metadata=dict(row.metadata or {}),
        messageCount=count,
        lastMessageAt=None if last is None else iso_z(last.created_at),
        lastMessagePreview=None if last is None else str(last.body)[:PREVIEW_LENGTH],
        createdAt=iso_z(row.created_at),
        updatedAt=iso_z(row.updated_at),
        endedAt=iso_z(row.ended_at),
        messages=[message_shape(m) for m in messages or ()],
    )


PREVIEW_LENGTH = 100


def message_shape(row: MessageRecord) -> ConversationMessage:
    """A stored message as AgentPhone's ``Message`` (``receivedAt``: when agentsms took it)."""
    urls = list(row.media_urls or [])
    return ConversationMessage(
        id=row.id,
        body=row.body,
        fromNumber=row.from_number,
        toNumber=row.to_number,
        direction=row.direction,
        channel=row.channel,
        status=row.status,
        failureReason=row.error_message,
        mediaUrl=urls[0] if urls else None,
        mediaUrls=urls,
        receivedAt=iso_z(row.created_at),
        conversationId=row.conversation_id,
        replyToMessageId=row.reply_to_message_id,
    )


def _int_fault(request: Request, name: str, least: int, most: int | None) -> FieldError | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return FieldError(name, "must be an integer")
    if value < least or (most is not None and value > most):
        bound = f"between {least} and {most}" if most is not None else f"{least} or more"
        return FieldError(name, f"must be {bound}")
    return None


def _int_arg(request: Request, name: str, default: int, least: int, most: int | None) -> int:
    """Query parameter ``name``, an integer in ``[least, most]`` (422 otherwise)."""
    fault = _int_fault(request, name, least, most)
    if fault is not None:
        raise invalid([fault])
    raw = request.query_params.get(name)
    return default if raw is None else int(raw)


def _page_args(request: Request, default_limit: int = 20) -> tuple[int, int]:
    """``limit`` (1-100) and ``offset`` (0 or more), every bad one named at once."""
    faults = [
        fault
        for fault in (
            _int_fault(request, "limit", 1, 100),
            _int_fault(request, "offset", 0, MAX_PAGE_OFFSET),
        )
        if fault is not None
    ]
    if faults:
        raise invalid(faults)
    return _int_arg(request, "limit", default_limit, 1, 100), _int_arg(
        request, "offset", 0, 0, MAX_PAGE_OFFSET
    )


@router.get(
    "/v1/conversations",
    response_model=ConversationList,
    responses=_ERRORS,
    summary="List Conversations",
)
async def list_conversations(request: Request, state: State) -> ConversationList:
    """Newest first, ``limit`` (1-100, default 20) from ``offset``."""
    project = await _project(request, state)
    limit, offset = _page_args(request)
    async with state.db.read() as conn:
        where = ConversationFilter(project_id=project.id)
        return await conversation_page(conn, where, limit, offset)


async def conversation_page(
    conn: AsyncConnection, where: ConversationFilter, limit: int, offset: int
) -> ConversationList:
    """One page of the conversations ``where`` selects, with their message counts."""
    rows = await conversations.list_conversations(conn, where, limit, offset)
    total = await conversations.count_conversations(conn, where)
    stats = await conversations.message_stats(conn, [row.id for row in rows])
    return ConversationList(
        data=[_conversation(row, stats.get(row.id)) for row in rows],
        hasMore=offset + len(rows) < total,
        total=total,
    )


@router.get(
    "/v1/conversations/{conversation_id}",
    response_model=Conversation,
    responses=_ERRORS,
    summary="Get Conversation",
)
async def get_conversation(conversation_id: str, request: Request, state: State) -> Conversation:
    """An AgentPhone conversation with its newest ``message_limit`` (1-100, default 50)
    messages, in AgentPhone's shape. Errors use AgentPhone's error body."""
    project = await _project(request, state)
    limit = _int_arg(request, "message_limit", 50, 1, 100)
    async with state.db.read() as conn:
        row = await conversations.get(conn, project.id, conversation_id)
        stats = await conversations.message_stats(conn, [row.id])
        recent = await conversations.messages_of(conn, row.id, limit=limit)
    return _conversation(row, stats.get(row.id), recent)


@router.patch(
    "/v1/conversations/{conversation_id}",
    response_model=Conversation,
    responses=_ERRORS,
    summary="Update Conversation",
    openapi_extra=json_body_docs(UpdateConversationRequest),
)
async def update_conversation(conversation_id: str, request: Request, state: State) -> Conversation:
    """Merge ``metadata`` into the conversation's."""
    project = await _project(request, state)
    body = await parse_json(request, UpdateConversationRequest)
    async with state.db.write() as conn:
        row = await conversations.update(conn, project.id, conversation_id, metadata=body.metadata)
        stats = await conversations.message_stats(conn, [row.id])
    return _conversation(row, stats.get(row.id))


@router.get(
    "/v1/conversations/{conversation_id}/messages",
    response_model=ConversationMessageList,
    responses=_ERRORS,
    summary="List Conversation Messages",
)
async def conversation_messages(
    conversation_id: str, request: Request, state: State
) -> ConversationMessageList:
    """Oldest first, ``limit`` (1-100, default 50) from ``offset``; ``before`` / ``after``
    (ISO 8601) keep the messages received before / after that time."""
    project = await _project(request, state)
    limit, offset = _page_args(request, default_limit=50)
    before, after = time_window(request)
    async with state.db.read() as conn:
        await conversations.get(conn, project.id, conversation_id)
        rows = [
            row
            for row in await conversations.messages_of(conn, conversation_id)
            if (before is None or row.created_at < before)
            and (after is None or row.created_at > after)
        ]
    page = rows[offset : offset + limit]
    return ConversationMessageList(
        data=[message_shape(row) for row in page],
        hasMore=offset + len(page) < len(rows),
        total=len(rows),
    )


def time_window(request: Request) -> tuple[datetime | None, datetime | None]:
    """The ``before`` and ``after`` query parameters (ISO 8601, UTC when no offset)."""
    found: dict[str, datetime | None] = {}
    faults: list[FieldError] = []
    for name in ("before", "after"):
        raw = request.query_params.get(name)
        found[name] = None
        if raw is None:
            continue
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            faults.append(FieldError(name, "must be an ISO 8601 time"))
            continue
        found[name] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if faults:
        raise invalid(faults)
    return found["before"], found["after"]


# -- webhooks ---------------------------------------------------------------------------------


class CreateWebhookRequest(Strict):
    url: str = Field(max_length=2048, description="Receives agent.message / agent.reaction")
    contextLimit: int | None = Field(
        default=None, ge=0, le=50, description="Messages of recentHistory (default 10)"
    )
    timeout: int | None = Field(default=None, gt=0, le=30, description="Seconds per attempt")


class Webhook(BaseModel):
    id: str
    url: str
    secret: str
    status: str
    contextLimit: int
    timeout: int
    createdAt: str | None


class DeletedWebhook(BaseModel):
    success: bool


def _webhook(row: Row, default_timeout: float) -> Webhook:
    """The webhook with its signing ``secret`` (AgentPhone shows it on every read: it is what
    ``verify_webhook`` needs)."""
    options = dict(row.get("options") or {})
    return Webhook(
        id=row["id"],
        url=row["url"],
        secret=row["secret"],
        status="active" if row["disabled_at"] is None else "disabled",
        contextLimit=int(options.get("context_limit", DEFAULT_CONTEXT_LIMIT)),
        timeout=round(row.get("timeout_seconds") or default_timeout),
        createdAt=iso_z(row.get("created_at")),
    )


async def all_webhooks(conn: AsyncConnection, project_id: str) -> list[Row]:
    """The project's AgentPhone webhooks: the account's and the agents' own."""
    rows = await webhook_endpoints.list_endpoints(conn, project_id, kind="endpoint", limit=500)
    return [row for row in rows if row.get("payload_format") == WEBHOOK_FORMAT]


def agent_of(row: Row) -> str | None:
    """The agent whose own webhook ``row`` is (``None``: the account's)."""
    agent = (row.get("options") or {}).get("agent_id")
    return None if agent is None else str(agent)


async def current_webhooks(conn: AsyncConnection, project_id: str) -> list[Row]:
    """The account's webhook (a list: none or one)."""
    return [row for row in await all_webhooks(conn, project_id) if agent_of(row) is None]


@router.post(
    "/v1/webhooks",
    response_model=Webhook,
    status_code=201,
    responses=_ERRORS,
    summary="Create Webhook",
    openapi_extra=json_body_docs(CreateWebhookRequest),
)
async def create_webhook(request: Request, state: State) -> JSONResponse:
    """The project's AgentPhone webhook (replacing any previous one); the answer carries its
    signing ``secret``, shown once."""
    project = await _project(request, state)
    body = await parse_json(request, CreateWebhookRequest)
    options: dict[str, Any] = {}
    if body.contextLimit is not None:
        options["context_limit"] = body.contextLimit
    try:
        async with state.db.write() as conn:
            # An agent with a webhook of its own has its events sent there instead.
            own = sorted({a for a in map(agent_of, await all_webhooks(conn, project.id)) if a})
            if own:
                options["skip_agents"] = own
            row = await replace_webhook(conn, project.id, body, options, state)
    except ValidationFailed as error:
        raise renamed(error, lambda f: "timeout" if f == "timeout_seconds" else f) from None
    answer = _webhook(row, state.settings.webhook_timeout_seconds)
    return JSONResponse(answer.model_dump(), status_code=201)


async def replace_webhook(
    conn: AsyncConnection,
    project_id: str,
    body: CreateWebhookRequest,
    options: dict[str, Any],
    state: AppState,
) -> Row:
    """A new AgentPhone webhook in place of the account's (or, with ``options.agent_id``,
    that agent's)."""
    agent = options.get("agent_id")
    for old in await all_webhooks(conn, project_id):
        if agent_of(old) == agent:
            await webhook_endpoints.delete_endpoint(conn, project_id, old["id"])
    return await webhook_endpoints.create_endpoint(
        conn,
        project_id,
        EndpointInput(
            url=body.url,
            event_types=list(AGENTPHONE_EVENTS),
            description="AgentPhone webhook" + (f" of agent {agent}" if agent else ""),
            signing_scheme=webhook_endpoints.HMAC_TIMESTAMPED,
            payload_format=WEBHOOK_FORMAT,
            timeout_seconds=body.timeout,
            options=options,
        ),
        state.settings,
    )


@router.get("/v1/webhooks", response_model=Webhook, responses=_ERRORS, summary="Get Webhook")
async def get_webhook(request: Request, state: State) -> Webhook:
    """The project's AgentPhone webhook (where inbound texts go), in AgentPhone's shape."""
    project = await _project(request, state)
    async with state.db.read() as conn:
        rows = await current_webhooks(conn, project.id)
    if not rows:
        raise NotFound("no webhook is configured for this account")
    return _webhook(rows[0], state.settings.webhook_timeout_seconds)


@router.delete(
    "/v1/webhooks", response_model=DeletedWebhook, responses=_ERRORS, summary="Delete Webhook"
)
async def delete_webhook(request: Request, state: State) -> DeletedWebhook:
    """Remove the project's AgentPhone webhook; inbound texts are no longer posted to it."""
    project = await _project(request, state)
    async with state.db.write() as conn:
        rows = await current_webhooks(conn, project.id)
        if not rows:
            raise NotFound("no webhook is configured for this account")
        for row in rows:
            await webhook_endpoints.delete_endpoint(conn, project.id, row["id"])
    return DeletedWebhook(success=True)


VENDOR = Vendor(NAME, router, render_error)
