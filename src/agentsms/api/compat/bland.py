"""Bland's SMS API, drop-in at ``/compat/bland``.

``POST /v1/sms/send`` sends one message (or has the conversation's agent write it when
``agent_message`` is absent) in the conversation of ``agent_number`` and ``user_number``,
through the same core send as ``POST /v1/messages``: the Bland fields become the send's
``conversation`` settings (persona, pathway, timers, outcomes, webhook). ``GET
/v1/sms/conversations`` and ``GET /v1/sms/conversations/{id}`` read conversations back in
Bland's shapes. A per-send ``webhook`` receives the conversation-end status webhook in
Bland's shape (the ``bland`` webhook format of ``bland_webhooks``). The API key goes in
``authorization`` as is or as ``Bearer KEY``. Errors are
``{"data": null, "errors": [{"error": "CODE", "message": "..."}]}``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from agentsms.api.compat._common import (
    Failure,
    Strict,
    Vendor,
    agent_writes,
    iso_z,
    json_body_docs,
    json_errors,
    parse_json,
    project_for_api_key,
)
from agentsms.api.compat.bland_webhooks import WEBHOOK_FORMAT
from agentsms.api.deps import State, client_address
from agentsms.api.idempotent import accept
from agentsms.api.schemas import PersonaRef, TimerSeconds, Version
from agentsms.core import conversations, webhook_endpoints
from agentsms.core.conversations import ConversationFilter, ConversationInput
from agentsms.core.phone import parse_phone_field
from agentsms.core.projects import Project
from agentsms.core.sending import OutboundSpec
from agentsms.errors import FieldError, NotFound, ValidationFailed
from agentsms.store.records import ConversationRecord, MessageRecord

NAME = "bland"
SENT = "SMS sent successfully"
MAX_PAGE_SIZE = 100
MAX_OFFSET = 10_000
router = APIRouter(prefix=f"/compat/{NAME}", tags=["compat: Bland"])

# -- errors -----------------------------------------------------------------------------------

# Bland answers a bad request with 400; it has no 422.
_STATUS = {422: 400}
# Our names in error messages and fields, as the Bland caller wrote them.
_NAMES = {
    "to": "user_number",
    "from": "agent_number",
    "body": "agent_message",
    "template_id": "content_sid",
    "conversation.timeout_seconds": "time_out",
    "conversation.warning_seconds": "warning_time",
    "conversation.webhook_url": "webhook",
    "timeout_seconds": "time_out",
    "warning_seconds": "warning_time",
    "webhook_url": "webhook",
}
_WORDS = re.compile(r"\b(timeout_seconds|warning_seconds|webhook_url|template_id)\b")


# ``body`` names the request body itself in these (``parse_json``), not ``agent_message``.
_BODY_ITSELF = frozenset({"is not valid JSON", "must be a JSON object"})


def bland_field(name: str, message: str = "") -> str:
    """Our field path as the Bland request field."""
    if name == "body" and message in _BODY_ITSELF:
        return name
    if name == "body" and message.startswith("missing variable"):
        return "content_variables"
    if name in _NAMES:
        return _NAMES[name]
    return name.removeprefix("conversation.")


def _message(text: str) -> str:
    text = agent_writes(text).replace("give body or", "give agent_message or")
    return _WORDS.sub(lambda m: _NAMES[m.group(1)], text)


def error_body(failure: Failure) -> tuple[int, dict[str, Any]]:
    """Bland's status and ``{"data": null, "errors": [...]}`` body for ``failure``."""
    status = _STATUS.get(failure.status, failure.status)
    code = failure.code.upper()
    if failure.errors:
        errors = [
            {"error": code, "message": f"{bland_field(e.field, e.message)}: {_message(e.message)}"}
            for e in failure.errors
        ]
    else:
        errors = [{"error": code, "message": _message(failure.detail)}]
    return status, {"data": None, "errors": errors}


render_error = json_errors(error_body)


# -- auth -------------------------------------------------------------------------------------


async def _project(request: Request, state: State) -> Project:
    """The project of ``authorization: KEY`` (or ``Bearer KEY``)."""
    raw = request.headers.get("authorization", "").strip()
    scheme, _, rest = raw.partition(" ")
    key = rest.strip() if scheme.lower() == "bearer" and rest.strip() else raw
    return await project_for_api_key(state, key or None, client_address(request))


# -- request and response shapes --------------------------------------------------------------


class PersonaSettings(Strict):
    pathway_id: str | None = Field(default=None, max_length=200)
    pathway_version: Version | None = None
    start_node_id: str | None = Field(default=None, max_length=100)


class SendRequest(Strict):
    user_number: str = Field(max_length=32, description="The person, E.164")
    agent_number: str = Field(max_length=32, description="A number of the project's pool")
    agent_message: str | None = Field(
        default=None, description="Absent: the conversation's agent writes the message"
    )
    request_data: dict[str, Any] | None = Field(
        default=None, description="Stored as the message's metadata"
    )
    new_conversation: bool = False
    persona_id: PersonaRef | None = Field(default=None, description="Persona id or alias")
    persona_version: Literal["production", "draft"] | None = None
    persona_settings: PersonaSettings | None = None
    pathway_id: str | None = Field(default=None, max_length=200)
    pathway_version: Version | None = None
    start_node_id: str | None = Field(default=None, max_length=100)
    webhook: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] | None = None
    disposition_ids: list[str] | None = None
    citation_schema_ids: list[str] | None = None
    channel: Literal["sms", "whatsapp", "imessage"] | None = None
    content_sid: str | None = Field(
        default=None, max_length=200, description="A template stored in agentsms (id or key)"
    )
    content_variables: dict[str, Any] | None = Field(
        default=None, description="Fill the template's {{name}} placeholders"
    )
    time_out: TimerSeconds | None = None
    timeout_message: str | None = Field(default=None, max_length=1600)
    warning_time: TimerSeconds | None = None
    warning_message: str | None = Field(default=None, max_length=1600)


class SendData(BaseModel):
    message: str
    conversation_id: str
    workflow_id: str
    message_id: str


class SendResponse(BaseModel):
    data: SendData
    errors: None = None


class ConversationItem(BaseModel):
    id: str
    created_at: str
    updated_at: str
    user_number: str
    agent_number: str
    variables: dict[str, Any]
    current_node_id: str | None
    is_active: bool
    message_count: int
    last_message: str | None
    last_message_at: str | None
    effective_channel: str
    summary: str | None
    citation_variables: dict[str, Any]
    disposition_tag: str | None


class ConversationMessage(BaseModel):
    id: str
    created_at: str
    message: str
    from_: str = Field(serialization_alias="from")
    to: str
    sender: Literal["USER", "AGENT"]
    status: str
    error_code: str | None


class ConversationDetail(ConversationItem):
    timed_out_at: str | None
    messages: list[ConversationMessage]


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request (INVALID_TIMEOUT_CONFIG, VALIDATION_FAILED, ...)"},
    401: {"description": "Missing or unknown API key"},
    404: {"description": "Not found"},
    409: {"description": "idempotency-key reused with a different request"},
    429: {"description": "Rate limited"},
}

# -- sending ----------------------------------------------------------------------------------


def _settings(body: SendRequest) -> dict[str, Any]:
    """The send's conversation settings: only the fields the caller gave."""
    given: dict[str, Any] = {
        "persona_id": None if body.persona_id is None else str(body.persona_id),
        "persona_version": body.persona_version,
        "pathway_id": body.pathway_id,
        "pathway_version": body.pathway_version,
        "start_node_id": body.start_node_id,
        "disposition_ids": body.disposition_ids,
        "citation_schema_ids": body.citation_schema_ids,
        "timeout_seconds": body.time_out,
        "timeout_message": body.timeout_message,
        "warning_seconds": body.warning_time,
        "warning_message": body.warning_message,
    }
    if body.persona_settings is not None:
        # Bland: persona_settings outranks the top-level pathway fields.
        given.update(body.persona_settings.model_dump(exclude_none=True))
    if body.webhook is not None:
        given["webhook_url"] = body.webhook
        given["webhook_format"] = WEBHOOK_FORMAT
    return {key: value for key, value in given.items() if value is not None}


def to_spec(body: SendRequest, state: State) -> OutboundSpec:
    if body.webhook is not None:
        webhook_endpoints.check_url(body.webhook, "webhook", state.settings)
    if body.content_variables is not None and body.content_sid is None:
        raise ValidationFailed(
            "content_variables: needs content_sid",
            errors=[FieldError("content_variables", "needs content_sid")],
        )
    settings = _settings(body)
    return OutboundSpec(
        to=body.user_number,
        body=body.agent_message,
        from_=body.agent_number,
        channel=body.channel,
        metadata=body.request_data or {},
        # agent_message is sent as written; a content_sid template is filled.
        literal=True,
        template_id=body.content_sid,
        variables=body.content_variables or {},
        conversation=ConversationInput(settings=settings, metadata=body.metadata),
        new_conversation=body.new_conversation,
    )


@router.post(
    "/v1/sms/send",
    response_model=SendResponse,
    responses=_ERRORS,
    summary="Send SMS Message",
    openapi_extra=json_body_docs(SendRequest),
)
async def send_sms(request: Request, state: State) -> Response:
    """Send from ``agent_number`` to ``user_number``, creating or resuming the conversation.

    Header ``idempotency-key``: a repeat of the same request returns the first answer and
    sends nothing more.
    """
    project = await _project(request, state)
    body = await parse_json(request, SendRequest)
    spec = to_spec(body, state)

    async def work(conn: AsyncConnection) -> SendResponse:
        row = await state.outbox.send(conn, project.id, spec, project_settings=project.settings)
        return SendResponse(
            data=SendData(
                message=SENT,
                conversation_id=row.conversation_id,
                workflow_id=row.id,
                message_id=row.id,
            )
        )

    key = request.headers.get("idempotency-key") or None
    path = f"/compat/{NAME}/v1/sms/send"
    return await accept(state, project.id, key, body, path, work, status=200)


# -- conversations ----------------------------------------------------------------------------


def _item(row: ConversationRecord, stats: tuple[int, MessageRecord] | None) -> dict[str, Any]:
    count, last = stats if stats is not None else (0, None)
    return {
        "id": row.id,
        "created_at": iso_z(row.created_at),
        "updated_at": iso_z(row.updated_at),
        "user_number": row.user_number,
        "agent_number": row.agent_number,
        "variables": dict(row.state or {}),
        "current_node_id": row.current_node_id,
        "is_active": row.status in conversations.ACTIVE,
        "message_count": count,
        "last_message": None if last is None else last.body,
        "last_message_at": None if last is None else iso_z(last.created_at),
        "effective_channel": row.channel,
        "summary": None,
        "citation_variables": dict(row.extracted or {}),
        "disposition_tag": row.outcome,
    }


def _message_shape(row: MessageRecord) -> ConversationMessage:
    inbound = row.direction == "inbound"
    return ConversationMessage(
        id=row.id,
        created_at=iso_z(row.created_at) or "",
        message=row.body,
        from_=row.from_number,
        to=row.to_number,
        sender="USER" if inbound else "AGENT",
        status=str(row.status).upper(),
        error_code=row.error_code,
    )


class Pagination(BaseModel):
    page: int
    pageSize: int
    hasMore: bool


class ListExtra(BaseModel):
    pagination: Pagination


class ListResponse(BaseModel):
    data: list[ConversationItem]
    errors: None = None
    extra: ListExtra


class DetailResponse(BaseModel):
    data: ConversationDetail
    errors: None = None


def _number(value: str | None, name: str) -> str | None:
    return None if value is None else parse_phone_field(value, name).e164


@router.get(
    "/v1/sms/conversations",
    response_model=ListResponse,
    responses=_ERRORS,
    summary="List SMS conversations, newest first",
)
async def list_conversations(
    request: Request,
    state: State,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)] = 50,
    user_number: str | None = None,
    agent_number: str | None = None,
) -> ListResponse:
    """``page`` and ``pageSize`` page through the conversations; filter by either number."""
    project = await _project(request, state)
    offset = (page - 1) * page_size
    if offset > MAX_OFFSET:
        raise ValidationFailed(
            f"page: at most {MAX_OFFSET} conversations can be skipped",
            errors=[FieldError("page", f"at most {MAX_OFFSET} conversations can be skipped")],
        )
    where = ConversationFilter(
        project_id=project.id,
        user_number=_number(user_number, "user_number"),
        agent_number=_number(agent_number, "agent_number"),
    )
    async with state.db.read() as conn:
        rows = await conversations.list_conversations(conn, where, offset + page_size + 1)
        shown = list(rows[offset : offset + page_size])
        stats = await conversations.message_stats(conn, [row.id for row in shown])
    return ListResponse(
        data=[ConversationItem(**_item(row, stats.get(row.id))) for row in shown],
        extra=ListExtra(
            pagination=Pagination(
                page=page, pageSize=page_size, hasMore=len(rows) > offset + page_size
            )
        ),
    )


@router.get(
    "/v1/sms/conversations/{conversation_id}",
    response_model=DetailResponse,
    responses=_ERRORS,
    summary="Get an SMS conversation with its messages",
)
async def get_conversation(conversation_id: str, request: Request, state: State) -> Response:
    """A Bland SMS conversation with its messages, in Bland's shape.

    Errors use Bland's error body.
    """
    project = await _project(request, state)
    async with state.db.read() as conn:
        try:
            row = await conversations.get(conn, project.id, conversation_id)
        except NotFound:
            raise NotFound(f"conversation {conversation_id} not found") from None
        history = await conversations.messages_of(conn, conversation_id)
        stats = await conversations.message_stats(conn, [conversation_id])
    timed_out = row.end_reason == "timeout"
    detail = ConversationDetail(
        **_item(row, stats.get(conversation_id)),
        timed_out_at=iso_z(row.ended_at) if timed_out else None,
        messages=[_message_shape(m) for m in history],
    )
    answer = DetailResponse(data=detail)
    return Response(answer.model_dump_json(by_alias=True), media_type="application/json")


VENDOR = Vendor(NAME, router, render_error)
