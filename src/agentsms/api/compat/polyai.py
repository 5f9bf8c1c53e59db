"""PolyAI's outbound SMS API, drop-in at ``/compat/polyai``.

``POST /v1/outbound-sms`` with ``X-PolyAi-Auth-Token`` (an agentsms project API key) and
``X-TOKEN-ID`` (the connector: the project's id, ``proj_…``). Each call sends ``message``
to ``user_number`` from ``agent_number`` (or a number the sender pool chooses) and opens a
new conversation session (any open one on the thread is ended first) whose first message is
this greeting, under the named timeout policy ``polyai`` (after 24 h of silence in an
engaged conversation a warning; no reply within 10 minutes ends it). ``202`` with an empty
body; errors are ``{"detail": "..."}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from agentsms.api.compat._common import (
    Failure,
    Forbidden,
    Vendor,
    agent_writes,
    error_text,
    json_body_docs,
    json_errors,
    parse_json,
    rate_limit,
    renamed,
)
from agentsms.api.deps import State, client_address, project_for_key
from agentsms.core import numbers, projects
from agentsms.core.conversations import ConversationInput
from agentsms.core.sending import MAX_BODY_CHARS, OutboundSpec
from agentsms.core.spend import CODE as SPEND_CAP
from agentsms.errors import FieldError, NotFound, Unauthorized, ValidationFailed

NAME = "polyai"
POLICY = "polyai"
router = APIRouter(prefix=f"/compat/{NAME}", tags=["compat: PolyAI"])

# -- errors -----------------------------------------------------------------------------------

# PolyAI answers validation failures and conflicts with 400.
_STATUS = {409: 400, 422: 400}
_GENERIC = {
    500: "Internal server error.",
    503: "Service temporarily unavailable. Retry after a short delay.",
    504: "The server did not answer in time. Retry with backoff.",
}
# Our field names as PolyAI's.
_FIELDS = {"to": "user_number", "from": "agent_number", "body": "message"}


def _field(name: str) -> str:
    return _FIELDS.get(name, name)


def error_body(failure: Failure) -> tuple[int, dict[str, Any]]:
    """PolyAI's status and ``{"detail": "..."}`` body for ``failure``."""
    status = _STATUS.get(failure.status, failure.status)
    if status in _GENERIC:
        return status, {"detail": _GENERIC[status]}
    detail = agent_writes(error_text(failure))
    if status == 429 and failure.code != SPEND_CAP:
        detail = f"Per-project rate limit exceeded: {detail.rstrip('.')}. Back off and retry."
    return status, {"detail": detail}


render_error = json_errors(error_body)


# -- shapes -----------------------------------------------------------------------------------


class OutboundSmsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(
        default=None,
        description=f"The plain-text message (the session's greeting), at most {MAX_BODY_CHARS} "
        "characters. Without it, the conversation's agent (a default persona) writes the greeting.",
    )
    user_number: str = Field(max_length=32, description="Recipient phone number in E.164")
    agent_number: str | None = Field(
        default=None,
        max_length=32,
        description="Sender number in E.164: one of the project's numbers. If omitted, the "
        "sender pool picks one.",
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Invalid body, missing fields, bad E.164, or agent_number not "
        "provisioned for the project"
    },
    401: {"description": "Missing or invalid X-PolyAi-Auth-Token"},
    403: {"description": "The API key's project is not the connector's"},
    404: {"description": "Connector not found, or no numbers provisioned for the project"},
    429: {"description": "Per-project rate limit exceeded"},
    500: {"description": "Unexpected server error"},
}


def _renamed(error: ValidationFailed) -> ValidationFailed:
    return renamed(error, _field)


@router.post(
    "/v1/outbound-sms",
    status_code=202,
    response_class=Response,
    responses={202: {"description": "Accepted; empty body"}, **_ERRORS},
    summary="Send an outbound SMS",
    openapi_extra=json_body_docs(OutboundSmsRequest),
)
async def outbound_sms(request: Request, state: State) -> Response:
    """Send an SMS and open a new reply-enabled conversation session with it."""
    api_key = request.headers.get("x-polyai-auth-token", "").strip()
    if not api_key:
        raise Unauthorized("missing X-PolyAi-Auth-Token")
    project = await project_for_key(state, api_key, client_address(request))
    connector = request.headers.get("x-token-id", "").strip()
    if not connector:
        raise ValidationFailed(
            "X-TOKEN-ID: the connector header is required",
            errors=[FieldError("X-TOKEN-ID", "the connector header is required")],
        )
    if connector != project.id:
        async with state.db.read() as conn:
            other = await projects.get_project(conn, connector)
        if other is None:
            raise NotFound(f"connector {connector} not found")
        raise Forbidden("the API key's account does not match the connector's account")
    await rate_limit(state, project)
    body = await parse_json(request, OutboundSmsRequest)
    spec = OutboundSpec(
        to=body.user_number,
        body=body.message,
        from_=body.agent_number,
        channel="sms",
        literal=True,
        conversation=ConversationInput(settings={"policy": POLICY}),
        new_conversation=True,
    )
    async with state.db.write() as conn:
        if not await numbers.list_numbers(conn, project.id):
            raise NotFound("no numbers are provisioned for this project")
        try:
            await state.outbox.send(conn, project.id, spec, project_settings=project.settings)
        except ValidationFailed as error:
            raise _renamed(error) from None
    return Response(status_code=202)


VENDOR = Vendor(NAME, router, render_error)
