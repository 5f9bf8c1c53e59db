"""Vida's outbound SMS API, drop-in at ``/compat/vida``.

``POST /api/v2/agent/outboundSms?token=KEY`` queues one task per target (a single
``target`` with ``content``; ``targets`` as strings sharing ``content``; ``targets`` as
objects with per-item overrides) as one agentsms batch. A task is an agentsms message:
its id is the message id. ``context`` and ``taskContext`` become the conversation's
``context`` / ``task_context`` (what the agent reads), ``agentId`` the persona with that
numeric alias, ``scheduledFor`` (unix seconds) the send time, ``scheduleSpacingSec`` a
stagger per index, ``meta`` the conversation's and message's metadata, ``externalTaskId``
the message's ``external_id``. A target is E.164 or a username of the project's
``contacts`` setting (see ``core.contacts``).

``GET /api/v2/tasks`` (``limit``, ``offset``, ``since``, ``until``), ``GET`` and ``DELETE``
``/api/v2/tasks/{id}`` read and cancel tasks. Errors are ``{"success": false, "message"}``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from agentsms.api.compat._common import (
    Failure,
    Strict,
    Vendor,
    error_text,
    json_body_docs,
    json_errors,
    parse_json,
    project_for_api_key,
    renamed,
)
from agentsms.api.deps import State, client_address
from agentsms.core import messages as service
from agentsms.core.conversations import ConversationInput
from agentsms.core.messages import MessageFilter
from agentsms.core.projects import Project
from agentsms.core.sending import LATEST_SEND_AT, BatchSpec, OutboundSpec
from agentsms.errors import FieldError, NotFound, ValidationFailed
from agentsms.numeric import INT32_MAX, MAX_PAGE_OFFSET
from agentsms.store.records import MessageRecord

NAME = "vida"
INITIATED = "Outbound SMS initiated."
MAX_LIST = 500
LATEST = int(LATEST_SEND_AT.timestamp())  # the latest scheduledFor
router = APIRouter(prefix=f"/compat/{NAME}", tags=["compat: Vida"])

# -- errors -----------------------------------------------------------------------------------

# Vida answers validation failures and conflicts with 400.
_STATUS = {409: 400, 422: 400}
_GENERIC = {
    500: "Internal server error.",
    503: "Service temporarily unavailable. Retry after a short delay.",
    504: "The server did not answer in time. Retry with backoff.",
}


def error_body(failure: Failure) -> tuple[int, dict[str, Any]]:
    """Vida's status and ``{"success": false, "message": "..."}`` body for ``failure``."""
    status = _STATUS.get(failure.status, failure.status)
    message = _GENERIC[status] if status in _GENERIC else error_text(failure)
    return status, {"success": False, "message": message}


render_error = json_errors(error_body)


# -- shapes -----------------------------------------------------------------------------------


class TargetItem(Strict):
    target: str = Field(max_length=100, description="Phone in E.164 or a contact username")
    content: str | None = Field(default=None, description="Per-item message body")
    context: str | None = Field(default=None, max_length=20_000)
    taskContext: str | None = Field(default=None, max_length=20_000)
    agentId: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="A persona's numeric alias"
    )
    scheduledFor: int | None = Field(default=None, ge=0, le=LATEST, description="Unix seconds")
    meta: dict[str, Any] | None = None
    externalTaskId: str | None = Field(default=None, max_length=200)


class OutboundSmsRequest(Strict):
    target: str | None = Field(
        default=None, max_length=100, description="Phone in E.164 or a contact username"
    )
    targets: list[str | TargetItem] | None = Field(
        default=None, min_length=1, description="Destinations, or objects with per-item options"
    )
    content: str | None = Field(default=None, description="Message body (shared by targets)")
    context: str | None = Field(
        default=None, max_length=20_000, description="Context for the agent handling it"
    )
    taskContext: str | None = Field(
        default=None, max_length=20_000, description="Task-specific context"
    )
    agentId: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="A persona's numeric alias"
    )
    scheduledFor: int | None = Field(default=None, ge=0, le=LATEST, description="Unix seconds")
    scheduleSpacingSec: int | None = Field(
        default=None,
        ge=0,
        le=86_400,
        description="Stagger scheduledFor by this many seconds per index",
    )
    meta: dict[str, Any] | None = None
    externalTaskId: str | None = Field(default=None, max_length=200)


class Task(BaseModel):
    """One queued message."""

    id: str
    target: str
    to: str
    from_: str = Field(alias="from")
    content: str
    context: str | None
    taskContext: str | None
    agentId: int | None
    meta: dict[str, Any] | None
    externalTaskId: str | None
    scheduledFor: int | None
    status: str
    conversationId: str | None
    createdAt: int
    sentAt: int | None
    deliveredAt: int | None
    error: str | None


class OutboundSmsResponse(BaseModel):
    success: bool
    message: str
    inserted: int
    tasks: list[Task]


class TaskList(BaseModel):
    success: bool
    tasks: list[Task]
    limit: int
    offset: int


class TaskAnswer(BaseModel):
    success: bool
    message: str | None = None
    task: Task


class ErrorBody(BaseModel):
    success: bool
    message: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad Request"},
    401: {"model": ErrorBody, "description": "Unauthorized"},
    404: {"model": ErrorBody, "description": "Not found (tasks)"},
    429: {"model": ErrorBody, "description": "Rate limit exceeded"},
    500: {"model": ErrorBody, "description": "Server Error"},
}

# -- translation ------------------------------------------------------------------------------


def _seconds(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def task(row: MessageRecord) -> Task:
    """A message as Vida's task."""
    data = dict(row.metadata or {})
    agent = data.get("agentId")
    return Task.model_validate(
        {
            "id": row.id,
            "target": data.get("target") or row.to_number,
            "to": row.to_number,
            "from": row.from_number,
            "content": row.body,
            "context": data.get("context"),
            "taskContext": data.get("taskContext"),
            "agentId": agent if isinstance(agent, int) else None,
            "meta": data.get("meta"),
            "externalTaskId": row.external_id,
            "scheduledFor": _seconds(row.send_at),
            "status": row.status,
            "conversationId": row.conversation_id,
            "createdAt": _seconds(row.created_at),
            "sentAt": _seconds(row.sent_at),
            "deliveredAt": _seconds(row.delivered_at),
            "error": row.error_message,
        }
    )


def _field(name: str, single: bool) -> str:
    """Our field path in a validation error as the Vida field the caller sent."""
    match = re.match(r"^recipients\[(\d+)\]\.(.*)$", name)
    where = ""
    if match:
        index, name = match.groups()
        where = "" if single else f"targets[{index}]."
    renames = {
        "to": "target",
        "body": "content",
        "conversation.persona_id": "agentId",
        "conversation.context": "context",
        "conversation.task_context": "taskContext",
        "recipients": "targets",
    }
    return where + renames.get(name, name)


def _renamed(error: ValidationFailed, single: bool) -> ValidationFailed:
    return renamed(error, lambda name: _field(name, single))


def _items(body: OutboundSmsRequest) -> list[TargetItem]:
    if body.target is not None and body.targets is not None:
        raise ValidationFailed(
            "target: give either target or targets, not both",
            errors=[FieldError("target", "give either target or targets, not both")],
        )
    if body.target is not None:
        if body.content is None:
            raise ValidationFailed(
                "content: is required with target",
                errors=[FieldError("content", "is required with target")],
            )
        return [TargetItem(target=body.target)]
    if body.targets is None:
        raise ValidationFailed(
            "target: target or targets is required",
            errors=[FieldError("target", "target or targets is required")],
        )
    return [TargetItem(target=t) if isinstance(t, str) else t for t in body.targets]


def to_batch(body: OutboundSmsRequest) -> BatchSpec:
    """The request as one agentsms batch: per-item values over the shared ones."""
    shared: dict[str, ConversationInput] = {}
    specs: list[OutboundSpec] = []
    for item in _items(body):
        context = item.context if item.context is not None else body.context
        task_context = item.taskContext if item.taskContext is not None else body.taskContext
        agent = item.agentId if item.agentId is not None else body.agentId
        scheduled = item.scheduledFor if item.scheduledFor is not None else body.scheduledFor
        meta = (
            None
            if body.meta is None and item.meta is None
            else (body.meta or {}) | (item.meta or {})
        )
        settings = {
            key: value
            for key, value in (
                ("context", context),
                ("task_context", task_context),
                ("persona_id", None if agent is None else str(agent)),
            )
            if value is not None
        }
        # One object per distinct setting: the batch checks each once.
        signature = json.dumps([settings, meta], sort_keys=True, default=str)
        conversation = shared.setdefault(signature, ConversationInput(settings, meta))
        record = {
            "target": item.target,
            "context": context,
            "taskContext": task_context,
            "agentId": agent,
            "meta": meta,
        }
        specs.append(
            OutboundSpec(
                to=item.target,
                body=item.content if item.content is not None else body.content,
                send_at=None if scheduled is None else datetime.fromtimestamp(scheduled, UTC),
                metadata={k: v for k, v in record.items() if v is not None},
                external_id=(
                    item.externalTaskId if item.externalTaskId is not None else body.externalTaskId
                ),
                literal=True,
                conversation=conversation,
            )
        )
    return BatchSpec(items=specs, spacing_seconds=body.scheduleSpacingSec)


async def _project(request: Request, state: State) -> Project:
    return await project_for_api_key(
        state, request.query_params.get("token"), client_address(request)
    )


# -- endpoints --------------------------------------------------------------------------------


@router.post(
    "/api/v2/agent/outboundSms",
    response_model=OutboundSmsResponse,
    response_model_by_alias=True,
    responses=_ERRORS,
    summary="Queue outbound SMS text message(s) from your Agent",
    openapi_extra=json_body_docs(OutboundSmsRequest),
)
async def outbound_sms(request: Request, state: State) -> JSONResponse:
    """One task per target, accepted all or nothing; ``200`` means they are committed."""
    project = await _project(request, state)
    body = await parse_json(request, OutboundSmsRequest)
    spec = to_batch(body)
    try:
        async with state.db.write() as conn:
            result = await state.outbox.send_batch(
                conn, project.id, spec, project_settings=project.settings
            )
            rows = await service.get_messages(conn, project.id, result.message_ids)
    except ValidationFailed as error:
        raise _renamed(error, body.target is not None) from None
    answer = OutboundSmsResponse(
        success=True,
        message=INITIATED,
        inserted=len(result.message_ids),
        tasks=[task(rows[i]) for i in result.message_ids],
    )
    return JSONResponse(answer.model_dump(by_alias=True))


def _moment(name: str, raw: str | None) -> datetime | None:
    """A ``since``/``until`` bound: unix seconds or ISO 8601."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", value):
            return datetime.fromtimestamp(float(value), UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise ValidationFailed(
            f"{name}: must be unix seconds or an ISO 8601 time",
            errors=[FieldError(name, "must be unix seconds or an ISO 8601 time")],
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _whole(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationFailed(
            f"{name}: must be a whole number from {low} to {high}",
            errors=[FieldError(name, f"must be a whole number from {low} to {high}")],
        )
    return value


@router.get(
    "/api/v2/tasks",
    response_model=TaskList,
    responses=_ERRORS,
    summary="List tasks (newest first)",
)
async def list_tasks(request: Request, state: State) -> JSONResponse:
    """The project's queued outbound SMS tasks (messages sent in a batch), newest first;
    ``since``/``until`` bound their creation time (unix seconds or ISO 8601)."""
    project = await _project(request, state)
    query = request.query_params
    limit = _whole("limit", query.get("limit"), 50, 1, MAX_LIST)
    offset = _whole("offset", query.get("offset"), 0, 0, MAX_PAGE_OFFSET)
    where = MessageFilter(
        project_id=project.id,
        direction="outbound",
        batched=True,
        created_after=_moment("since", query.get("since")),
        created_before=_moment("until", query.get("until")),
    )
    async with state.db.read() as conn:
        rows = await service.list_messages(conn, where, limit, offset)
    answer = TaskList(success=True, tasks=[task(row) for row in rows], limit=limit, offset=offset)
    return JSONResponse(answer.model_dump(by_alias=True))


async def _task_row(state: State, project: Project, task_id: str) -> MessageRecord:
    async with state.db.read() as conn:
        found = await service.get_messages(conn, project.id, [task_id])
    row = found.get(task_id)
    if row is None or row.direction != "outbound" or row.batch_id is None:
        raise NotFound(f"task {task_id} not found")
    return row


@router.get(
    "/api/v2/tasks/{task_id}", response_model=TaskAnswer, responses=_ERRORS, summary="Get a task"
)
async def get_task(task_id: str, request: Request, state: State) -> JSONResponse:
    """A Vida outbound SMS task and its state, in Vida's shape. Errors use Vida's error body."""
    project = await _project(request, state)
    row = await _task_row(state, project, task_id)
    return JSONResponse(TaskAnswer(success=True, task=task(row)).model_dump(by_alias=True))


@router.delete(
    "/api/v2/tasks/{task_id}",
    response_model=TaskAnswer,
    responses=_ERRORS,
    summary="Cancel a queued or scheduled task",
)
async def cancel_task(task_id: str, request: Request, state: State) -> JSONResponse:
    """Cancel a Vida task that is still queued or scheduled; it is never sent. Errors use Vida's
    error body.
    """
    project = await _project(request, state)
    await _task_row(state, project, task_id)
    async with state.db.write() as conn:
        row = await service.cancel_message(conn, project.id, task_id)
    answer = TaskAnswer(success=True, message="Task canceled.", task=task(row))
    return JSONResponse(answer.model_dump(by_alias=True))


VENDOR = Vendor(NAME, router, render_error)
