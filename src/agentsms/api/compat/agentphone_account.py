"""AgentPhone's account resources at ``/compat/agentphone``, as its official Python SDK
(``agentphone``) calls them: numbers (get, buy from the simulator, update, release, their
messages), contacts, agents beyond create and list (their own webhooks too), the typing
indicator, webhook delivery logs, test events and statistics (usage is
``agentphone_usage``). Voice (calls, voices) answers 501 in AgentPhone's error body:
agentsms carries messages only.

Same auth and error shape as ``agentphone``; this module only adds paths to the surface.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import JSONResponse

from agentsms.api.compat._common import (
    Strict,
    Vendor,
    iso_z,
    json_body_docs,
    parse_json,
    renamed,
)
from agentsms.api.compat.agentphone import (
    _ERRORS,
    NAME,
    Agent,
    ConversationList,
    ConversationMessage,
    CreateWebhookRequest,
    PhoneNumber,
    PhoneNumberNotFound,
    Webhook,
    _agent,
    _int_arg,
    _number,
    _page_args,
    _project,
    _webhook,
    agent_config,
    agent_of,
    all_webhooks,
    conversation_page,
    current_webhooks,
    message_shape,
    render_error,
    replace_webhook,
    time_window,
)
from agentsms.api.deps import State
from agentsms.api.state import AppState
from agentsms.core import (
    address_book,
    clock,
    conversations,
    numbers,
    personas,
    usage,
    webhook_endpoints,
)
from agentsms.core import messages as message_service
from agentsms.core.address_book import ContactInput
from agentsms.core.conversations import ConversationFilter
from agentsms.core.messages import MessageFilter
from agentsms.core.numbers import CHANNELS
from agentsms.core.webhook_endpoints import EndpointInput
from agentsms.errors import AgentsmsError, NotFound, ValidationFailed, invalid
from agentsms.store.repositories import Row

router = APIRouter(prefix=f"/compat/{NAME}", tags=["compat: AgentPhone"])


class VoiceNotSupported(AgentsmsError):
    status = 501
    code = "voice_not_supported"
    title = "Not implemented"


class Success(BaseModel):
    success: bool


# -- voice: not carried ------------------------------------------------------------------------


async def _voice(request: Request, state: State) -> None:
    await _project(request, state)
    raise VoiceNotSupported(
        "voice is not available: agentsms carries SMS, MMS, WhatsApp and iMessage only"
    )


for _path in (
    "/v1/calls",
    "/v1/calls/{rest:path}",
    "/v1/agents/voices",
    "/v1/agents/{agent_id}/calls",
    "/v1/numbers/{number_id}/calls",
):
    router.add_api_route(
        _path,
        _voice,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )


# -- numbers ---------------------------------------------------------------------------------


class AvailableNumber(BaseModel):
    phoneNumber: str
    city: str | None
    state: str | None
    rateCenter: str | None
    areaCode: str | None


class AvailableNumbers(BaseModel):
    data: list[AvailableNumber]


class BuyNumberRequest(Strict):
    country: str = Field(default="US", min_length=2, max_length=2)
    areaCode: str | None = Field(default=None, max_length=3)
    agentId: str | None = Field(default=None, max_length=40)
    type: Literal["sms", "imessage"] | None = None
    imessageType: str | None = Field(default=None, max_length=40)
    externalId: str | None = Field(default=None, max_length=200)
    expiresAt: datetime | None = None


class UpdateNumberRequest(Strict):
    externalId: str | None = Field(default=None, max_length=200)
    expiresAt: datetime | None = None


def _area_code(e164: str) -> str | None:
    return e164[2:5] if e164.startswith("+1") else None


@router.get(
    "/v1/numbers/available",
    response_model=AvailableNumbers,
    responses=_ERRORS,
    summary="Search Available Numbers",
)
async def available_numbers(request: Request, state: State) -> AvailableNumbers:
    """Simulator numbers that ``POST /v1/numbers`` can add (by ``country``, ``areaCode``)."""
    project = await _project(request, state)
    given = [name for name in ("city", "state", "zip") if request.query_params.get(name)]
    if given:
        raise invalid(given[0], "the simulator picks numbers by country and areaCode only")
    limit = _int_arg(request, "limit", 10, 1, 100)
    country = request.query_params.get("country") or "US"
    async with state.db.read() as conn:
        found = await numbers.available_numbers(
            conn,
            project.id,
            country=country,
            area_code=request.query_params.get("areaCode"),
            limit=limit,
        )
    return AvailableNumbers(
        data=[
            AvailableNumber(
                phoneNumber=n, city=None, state=None, rateCenter=None, areaCode=_area_code(n)
            )
            for n in found
        ]
    )


def _iso_setting(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return iso_z(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@router.post(
    "/v1/numbers",
    response_model=PhoneNumber,
    status_code=201,
    responses=_ERRORS,
    summary="Buy Number",
    openapi_extra=json_body_docs(BuyNumberRequest),
)
async def buy_number(request: Request, state: State) -> JSONResponse:
    """A free simulator number of ``country`` (``areaCode``) added to the sender pool,
    optionally attached to agent ``agentId``."""
    project = await _project(request, state)
    body = await parse_json(request, BuyNumberRequest)
    settings: dict[str, Any] = {
        "external_id": body.externalId,
        "expires_at": _iso_setting(body.expiresAt),
    }
    async with state.db.write() as conn:
        if body.agentId is not None:
            try:
                agent = await personas.get_persona(conn, project.id, body.agentId)
            except NotFound:
                raise invalid("agentId", f"no agent {body.agentId} in this account") from None
            settings["conversation"] = {"persona_id": agent["id"]}
        row = await numbers.provision_simulator_number(
            conn,
            project.id,
            country=body.country.upper(),
            area_code=body.areaCode,
            capabilities=CHANNELS if body.type == "imessage" else None,
            settings={k: v for k, v in settings.items() if v is not None},
        )
    return JSONResponse(_number(row).model_dump(), status_code=201)


async def _line(conn: AsyncConnection, project_id: str, number_id: str) -> Row:
    try:
        return await numbers.get_number(conn, project_id, number_id)
    except NotFound:
        raise PhoneNumberNotFound(f"phone number {number_id} not found in this account") from None


@router.get(
    "/v1/numbers/{number_id}", response_model=PhoneNumber, responses=_ERRORS, summary="Get Number"
)
async def get_number(number_id: str, request: Request, state: State) -> PhoneNumber:
    """One number of the sender pool; ``404`` when the project has no such number."""
    project = await _project(request, state)
    async with state.db.read() as conn:
        return _number(await _line(conn, project.id, number_id))


@router.patch(
    "/v1/numbers/{number_id}",
    response_model=PhoneNumber,
    responses=_ERRORS,
    summary="Update Number",
    openapi_extra=json_body_docs(UpdateNumberRequest),
)
async def update_number(number_id: str, request: Request, state: State) -> PhoneNumber:
    """Set the number's ``externalId`` (your own id) and ``expiresAt`` (kept as given)."""
    project = await _project(request, state)
    body = await parse_json(request, UpdateNumberRequest)
    changes: dict[str, Any] = {}
    if "externalId" in body.model_fields_set:
        changes["external_id"] = body.externalId
    if "expiresAt" in body.model_fields_set:
        changes["expires_at"] = _iso_setting(body.expiresAt)
    async with state.db.write() as conn:
        await _line(conn, project.id, number_id)
        row = await numbers.update_number(conn, project.id, number_id, changes)
    return _number(row)


@router.delete(
    "/v1/numbers/{number_id}", response_model=Success, responses=_ERRORS, summary="Release Number"
)
async def release_number(number_id: str, request: Request, state: State) -> Success:
    """Remove the number from the sender pool."""
    project = await _project(request, state)
    async with state.db.write() as conn:
        await _line(conn, project.id, number_id)
        await numbers.delete_number(conn, project.id, number_id)
    return Success(success=True)


class MessageList(BaseModel):
    data: list[ConversationMessage]
    hasMore: bool


@router.get(
    "/v1/numbers/{number_id}/messages",
    response_model=MessageList,
    responses=_ERRORS,
    summary="Get Number Messages",
)
async def number_messages(number_id: str, request: Request, state: State) -> MessageList:
    """Messages sent or received on the number, newest first: ``limit`` (1-100, default 50),
    ``before`` / ``after`` (ISO 8601)."""
    project = await _project(request, state)
    limit = _int_arg(request, "limit", 50, 1, 100)
    before, after = time_window(request)
    async with state.db.read() as conn:
        line = await _line(conn, project.id, number_id)
        where = MessageFilter(
            project_id=project.id,
            number=line["number"],
            created_before=before,
            created_after=after,
        )
        rows = await message_service.list_messages(conn, where, limit + 1)
    return MessageList(data=[message_shape(row) for row in rows[:limit]], hasMore=len(rows) > limit)


# -- contacts --------------------------------------------------------------------------------


class Contact(BaseModel):
    id: str
    phoneNumber: str
    name: str
    email: str | None
    notes: str | None
    createdAt: str | None
    updatedAt: str | None


class ContactList(BaseModel):
    data: list[Contact]
    hasMore: bool
    total: int


class CreateContactRequest(Strict):
    phoneNumber: str = Field(max_length=40)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    notes: str | None = Field(default=None, max_length=10_000)


class UpdateContactRequest(Strict):
    phoneNumber: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    notes: str | None = Field(default=None, max_length=10_000)


def _contact(row: Row) -> Contact:
    return Contact(
        id=row["id"],
        phoneNumber=row["phone_number"],
        name=row["name"],
        email=row["email"],
        notes=row["notes"],
        createdAt=iso_z(row["created_at"]),
        updatedAt=iso_z(row["updated_at"]),
    )


def _contact_fields(error: ValidationFailed) -> ValidationFailed:
    return renamed(error, lambda f: "phoneNumber" if f == "phone_number" else f)


@router.get("/v1/contacts/capabilities", responses=_ERRORS, summary="Get Contact Capabilities")
async def get_capabilities(request: Request, state: State) -> dict[str, Any]:
    """Which channels can reach ``phone_number`` from this account's numbers: its line type
    (from the numbering plan) and, per channel, whether a number of the pool offers it and the
    line can take it. Whether the person uses iMessage is only known once a text goes out, so
    ``imessage`` says agentsms can try it (an iMessage-capable number and a mobile line)."""
    project = await _project(request, state)
    raw = request.query_params.get("phone_number")
    if not raw:
        raise invalid("phone_number", "is required")
    async with state.db.read() as conn:
        found = await address_book.reach(conn, project.id, raw)
    return {
        "phoneNumber": found.phone_number,
        "lineType": found.line_type,
        "channels": list(found.channels),
        **{channel: channel in found.channels for channel in CHANNELS},
    }


@router.get("/v1/contacts", response_model=ContactList, responses=_ERRORS, summary="List Contacts")
async def list_contacts(request: Request, state: State) -> ContactList:
    """By name; ``search`` matches name, number or email; ``limit`` (default 50), ``offset``."""
    project = await _project(request, state)
    limit, offset = _page_args(request, default_limit=50)
    async with state.db.read() as conn:
        rows, total = await address_book.list_contacts(
            conn,
            project.id,
            search=request.query_params.get("search") or None,
            limit=limit,
            offset=offset,
        )
    return ContactList(
        data=[_contact(row) for row in rows], hasMore=offset + len(rows) < total, total=total
    )


@router.post(
    "/v1/contacts",
    response_model=Contact,
    status_code=201,
    responses=_ERRORS,
    summary="Create Contact",
    openapi_extra=json_body_docs(CreateContactRequest),
)
async def create_contact(request: Request, state: State) -> JSONResponse:
    """A person of the address book: ``phoneNumber`` (E.164, one contact each) and ``name``,
    ``email`` and ``notes`` optional."""
    project = await _project(request, state)
    body = await parse_json(request, CreateContactRequest)
    spec = ContactInput(body.phoneNumber, body.name, body.email, body.notes)
    try:
        async with state.db.write() as conn:
            row = await address_book.create_contact(conn, project.id, spec)
    except ValidationFailed as error:
        raise _contact_fields(error) from None
    return JSONResponse(_contact(row).model_dump(), status_code=201)


@router.get(
    "/v1/contacts/{contact_id}", response_model=Contact, responses=_ERRORS, summary="Get Contact"
)
async def get_contact(contact_id: str, request: Request, state: State) -> Contact:
    """One contact; ``404`` when the project has no such contact."""
    project = await _project(request, state)
    async with state.db.read() as conn:
        return _contact(await address_book.get_contact(conn, project.id, contact_id))


@router.patch(
    "/v1/contacts/{contact_id}",
    response_model=Contact,
    responses=_ERRORS,
    summary="Update Contact",
    openapi_extra=json_body_docs(UpdateContactRequest),
)
async def update_contact(contact_id: str, request: Request, state: State) -> Contact:
    """Change the fields given; the others stay as they are."""
    project = await _project(request, state)
    body = await parse_json(request, UpdateContactRequest)
    spec = ContactInput(body.phoneNumber, body.name, body.email, body.notes)
    try:
        async with state.db.write() as conn:
            row = await address_book.update_contact(conn, project.id, contact_id, spec)
    except ValidationFailed as error:
        raise _contact_fields(error) from None
    return _contact(row)


@router.delete(
    "/v1/contacts/{contact_id}", response_model=Success, responses=_ERRORS, summary="Delete Contact"
)
async def delete_contact(contact_id: str, request: Request, state: State) -> Success:
    """Remove the contact from the address book (messages to and from the number stay)."""
    project = await _project(request, state)
    async with state.db.write() as conn:
        await address_book.delete_contact(conn, project.id, contact_id)
    return Success(success=True)


# -- agents ----------------------------------------------------------------------------------


class UpdateAgentRequest(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    systemPrompt: str | None = Field(default=None, max_length=20000)
    beginMessage: str | None = Field(default=None, max_length=1600)
    model: str | None = Field(default=None, max_length=200)
    voiceMode: str | None = Field(default=None, max_length=40)


class AttachNumberRequest(Strict):
    numberId: str = Field(max_length=40)


async def _agent_answer(conn: AsyncConnection, project_id: str, persona: Row) -> Agent:
    lines = await numbers.list_numbers(conn, project_id)
    return _agent(persona, await agent_config(conn, persona), lines)


@router.get("/v1/agents/{agent_id}", response_model=Agent, responses=_ERRORS, summary="Get Agent")
async def get_agent(agent_id: str, request: Request, state: State) -> Agent:
    """The agent (a persona) with the numbers attached to it."""
    project = await _project(request, state)
    async with state.db.read() as conn:
        persona = await personas.get_persona(conn, project.id, agent_id)
        return await _agent_answer(conn, project.id, persona)


def _revised(config: Mapping[str, Any], body: UpdateAgentRequest) -> dict[str, Any]:
    """The persona config with the fields ``body`` sets."""
    agent = dict(config.get("agent") or {"kind": "llm", "system_prompt": ""})
    extra = dict(config.get("agentphone") or {})
    given = body.model_fields_set
    if "systemPrompt" in given:
        agent["system_prompt"] = body.systemPrompt or ""
    if "model" in given and body.model is not None:
        agent["model"] = body.model
    for name in ("description", "beginMessage", "voiceMode"):
        if name in given:
            extra[name] = getattr(body, name)
    return dict(config) | {"agent": agent, "agentphone": extra}


@router.patch(
    "/v1/agents/{agent_id}",
    response_model=Agent,
    responses=_ERRORS,
    summary="Update Agent",
    openapi_extra=json_body_docs(UpdateAgentRequest),
)
async def update_agent(agent_id: str, request: Request, state: State) -> Agent:
    """A new persona version with the given fields, published at once."""
    project = await _project(request, state)
    body = await parse_json(request, UpdateAgentRequest)
    async with state.db.write() as conn:
        persona = await personas.get_persona(conn, project.id, agent_id)
        if body.name is not None:
            persona = await personas.rename_persona(conn, project.id, persona["id"], body.name)
        config = _revised(await agent_config(conn, persona), body)
        version = await personas.add_persona_version(conn, project.id, persona["id"], config)
        persona = await personas.publish(conn, project.id, persona["id"], version["version"])
        return await _agent_answer(conn, project.id, persona)


@router.delete(
    "/v1/agents/{agent_id}", response_model=Success, responses=_ERRORS, summary="Delete Agent"
)
async def delete_agent(agent_id: str, request: Request, state: State) -> Success:
    """Delete the agent; its numbers stay in the pool, detached."""
    project = await _project(request, state)
    async with state.db.write() as conn:
        persona = await personas.get_persona(conn, project.id, agent_id)
        for line in await numbers.list_numbers(conn, project.id):
            if _number(line).agentId == persona["id"]:
                await numbers.update_number(conn, project.id, line["id"], {"conversation": None})
        await personas.delete_persona(conn, project.id, persona["id"])
    return Success(success=True)


@router.post(
    "/v1/agents/{agent_id}/numbers",
    response_model=PhoneNumber,
    responses=_ERRORS,
    summary="Attach Number",
    openapi_extra=json_body_docs(AttachNumberRequest),
)
async def attach_number(agent_id: str, request: Request, state: State) -> PhoneNumber:
    """New conversations on the number get this agent."""
    project = await _project(request, state)
    body = await parse_json(request, AttachNumberRequest)
    async with state.db.write() as conn:
        persona = await personas.get_persona(conn, project.id, agent_id)
        line = await _line(conn, project.id, body.numberId)
        defaults = dict((line["settings"] or {}).get("conversation") or {})
        defaults["persona_id"] = persona["id"]
        row = await numbers.update_number(conn, project.id, line["id"], {"conversation": defaults})
    return _number(row)


@router.delete(
    "/v1/agents/{agent_id}/numbers/{number_id}",
    response_model=PhoneNumber,
    responses=_ERRORS,
    summary="Detach Number",
)
async def detach_number(
    agent_id: str, number_id: str, request: Request, state: State
) -> PhoneNumber:
    """The number stays in the pool; new conversations on it get no default agent."""
    project = await _project(request, state)
    async with state.db.write() as conn:
        persona = await personas.get_persona(conn, project.id, agent_id)
        line = await _line(conn, project.id, number_id)
        defaults = dict((line["settings"] or {}).get("conversation") or {})
        if defaults.get("persona_id") != persona["id"]:
            raise invalid("numberId", f"number {number_id} is not attached to agent {agent_id}")
        defaults.pop("persona_id")
        row = await numbers.update_number(
            conn, project.id, line["id"], {"conversation": defaults or None}
        )
    return _number(row)


@router.get(
    "/v1/agents/{agent_id}/conversations",
    response_model=ConversationList,
    responses=_ERRORS,
    summary="List Agent Conversations",
)
async def agent_conversations(agent_id: str, request: Request, state: State) -> ConversationList:
    """The agent's conversations, newest first, ``limit`` (default 20) from ``offset``."""
    project = await _project(request, state)
    limit, offset = _page_args(request)
    async with state.db.read() as conn:
        persona = await personas.get_persona(conn, project.id, agent_id)
        where = ConversationFilter(project_id=project.id, persona_id=persona["id"])
        return await conversation_page(conn, where, limit, offset)


# -- typing ----------------------------------------------------------------------------------


@router.post(
    "/v1/conversations/{conversation_id}/typing",
    response_model=Success,
    responses=_ERRORS,
    summary="Send Typing Indicator",
)
async def send_typing(conversation_id: str, request: Request, state: State) -> Success:
    """iMessage only: an SMS conversation has no typing indicator (422)."""
    project = await _project(request, state)
    async with state.db.read() as conn:
        row = await conversations.get(conn, project.id, conversation_id)
    if row.channel != "imessage":
        raise invalid("conversation_id", f"typing indicators are iMessage only, not {row.channel}")
    return Success(success=True)


# -- webhook deliveries, tests and statistics -------------------------------------------------


class WebhookDelivery(BaseModel):
    id: str
    messageId: str | None
    status: str
    httpStatus: int | None
    errorMessage: str | None
    responseBody: str | None
    attemptCount: int
    lastAttemptAt: str | None
    nextRetryAt: str | None
    createdAt: str | None
    eventType: str | None
    channel: str | None


class WebhookDeliveryList(BaseModel):
    items: list[WebhookDelivery]


class WebhookDeliveryStats(BaseModel):
    total: int
    success: int
    failed: int
    pending: int
    successRate: float
    byEventType: dict[str, int]
    byHour: list[dict[str, Any]]


class TestWebhookRequest(Strict):
    from_: str | None = Field(default=None, alias="from", max_length=40)
    to: str | None = Field(default=None, max_length=40)
    message: str | None = Field(default=None, max_length=1600)
    channel: Literal["sms", "imessage", "mms", "whatsapp", "rcs"] | None = None


class TestWebhookResponse(BaseModel):
    success: bool
    eventId: str
    message: str


def _test_data(body: TestWebhookRequest) -> dict[str, Any]:
    """A ``message.received`` event's data for a test delivery (``body`` overrides)."""
    message: dict[str, Any] = {
        "id": "msg_test",
        "conversation_id": None,
        "from": body.from_ or "+15555550100",
        "to": body.to or "+15555550101",
        "body": body.message or "This is a test webhook from agentsms.",
        "channel": body.channel or "sms",
        "media_urls": [],
        "created_at": iso_z(clock.now()),
    }
    return {"message": message}


_AGENTPHONE_EVENTS = {"message.received": "agent.message", "reaction.received": "agent.reaction"}


def _delivery_status(row: Row) -> str:
    if row["status"] == "succeeded":
        return "success"
    return "pending" if row["next_retry_at"] is not None else "failed"


def _delivery(row: Row, event: Row | None) -> WebhookDelivery:
    payload: Mapping[str, Any] = (event or {}).get("payload") or {}
    data: Mapping[str, Any] = payload.get("data") or {}
    subject: Mapping[str, Any] = data.get("message") or data.get("reaction") or data
    return WebhookDelivery(
        id=row["id"],
        messageId=subject.get("messageId") or subject.get("id"),
        status=_delivery_status(row),
        httpStatus=row["status_code"],
        errorMessage=row["error"],
        responseBody=row["response_body"],
        attemptCount=row["attempt"],
        lastAttemptAt=iso_z(row["created_at"]),
        nextRetryAt=iso_z(row["next_retry_at"]),
        createdAt=iso_z(row["created_at"]),
        eventType=_AGENTPHONE_EVENTS.get(row["event_type"], row["event_type"]),
        channel=payload.get("channel") or subject.get("channel"),
    )


MAX_HOURS = 24 * 90


def _since_hours(request: Request, default: int) -> datetime:
    """Now less the ``hours`` query parameter (1 to 90 days' worth, ``default`` if absent)."""
    return clock.now() - timedelta(hours=_int_arg(request, "hours", default, 1, MAX_HOURS))


@router.get(
    "/v1/webhooks/deliveries",
    response_model=WebhookDeliveryList,
    responses=_ERRORS,
    summary="List Webhook Deliveries",
)
async def list_deliveries(request: Request, state: State) -> WebhookDeliveryList:
    """Delivery attempts, newest first: ``limit`` (default 50), ``offset``, ``hours``."""
    project = await _project(request, state)
    limit, offset = _page_args(request, default_limit=50)
    since = _since_hours(request, MAX_HOURS) if "hours" in request.query_params else None
    async with state.db.read() as conn:
        rows, events = await usage.deliveries(conn, project.id, since, limit, offset)
    return WebhookDeliveryList(items=[_delivery(row, events.get(row["event_id"])) for row in rows])


@router.get(
    "/v1/webhooks/deliveries/stats",
    response_model=WebhookDeliveryStats,
    responses=_ERRORS,
    summary="Webhook Delivery Stats",
)
async def delivery_stats(request: Request, state: State) -> WebhookDeliveryStats:
    """Attempts of the last ``hours`` (default 24) by outcome, event type and hour."""
    project = await _project(request, state)
    since = _since_hours(request, 24)
    async with state.db.read() as conn:
        stats = await usage.delivery_stats(conn, project.id, since)
    finished = stats.succeeded + stats.failed
    return WebhookDeliveryStats(
        total=stats.total,
        success=stats.succeeded,
        failed=stats.failed,
        pending=stats.pending,
        successRate=round(stats.succeeded / finished * 100, 2) if finished else 0.0,
        byEventType={_AGENTPHONE_EVENTS.get(k, k): n for k, n in stats.by_event_type.items()},
        byHour=[{"hour": hour, "count": n} for hour, n in sorted(stats.by_hour.items())],
    )


@router.post(
    "/v1/webhooks/test",
    response_model=TestWebhookResponse,
    responses=_ERRORS,
    summary="Test Webhook",
    openapi_extra=json_body_docs(TestWebhookRequest),
)
async def test_webhook(request: Request, state: State) -> TestWebhookResponse:
    """A synthetic ``agent.message`` (``"test": true``) to the webhook, signed and logged
    like a real one; ``from``, ``to``, ``message`` and ``channel`` override its fields."""
    project = await _project(request, state)
    body = await parse_json(request, TestWebhookRequest)
    async with state.db.write() as conn:
        hooks = await current_webhooks(conn, project.id)
        if not hooks:
            raise NotFound("no webhook is configured for this account")
        event_id = await webhook_endpoints.send_test_event(
            conn, project.id, hooks[0]["id"], "message.received", _test_data(body)
        )
    return TestWebhookResponse(success=True, eventId=event_id, message="test event queued")


# -- an agent's own webhook ------------------------------------------------------------------


async def _agent_hook(conn: AsyncConnection, project_id: str, agent_id: str) -> Row | None:
    """The webhook of the agent ``agent_id`` (404 when there is no such agent), if it has one."""
    persona = await personas.get_persona(conn, project_id, agent_id)
    hooks = await all_webhooks(conn, project_id)
    return next((r for r in hooks if agent_of(r) == persona["id"]), None)


async def _own_hook(conn: AsyncConnection, project_id: str, agent_id: str) -> Row:
    """The webhook of the agent ``agent_id``; 404 when the agent or its webhook is missing."""
    row = await _agent_hook(conn, project_id, agent_id)
    if row is None:
        raise NotFound(f"agent {agent_id} has no webhook")
    return row


async def _skip_agents_with_hooks(conn: AsyncConnection, project_id: str, state: AppState) -> None:
    """The account webhook leaves out the agents that have a webhook of their own."""
    hooks = await all_webhooks(conn, project_id)
    own = sorted({agent for agent in map(agent_of, hooks) if agent})
    for row in hooks:
        if agent_of(row) is None:
            options = dict(row.get("options") or {}) | {"skip_agents": own}
            await webhook_endpoints.update_endpoint(
                conn, project_id, row["id"], EndpointInput(options=options), state.settings
            )


@router.post(
    "/v1/agents/{agent_id}/webhook",
    response_model=Webhook,
    status_code=201,
    responses=_ERRORS,
    summary="Set Agent Webhook",
    openapi_extra=json_body_docs(CreateWebhookRequest),
)
async def set_agent_webhook(agent_id: str, request: Request, state: State) -> JSONResponse:
    """The agent's own webhook: its conversations' events go there instead of the
    account's webhook (the answer carries the signing ``secret``)."""
    project = await _project(request, state)
    body = await parse_json(request, CreateWebhookRequest)
    try:
        async with state.db.write() as conn:
            persona = await personas.get_persona(conn, project.id, agent_id)
            options: dict[str, Any] = {"agent_id": persona["id"]}
            if body.contextLimit is not None:
                options["context_limit"] = body.contextLimit
            row = await replace_webhook(conn, project.id, body, options, state)
            await _skip_agents_with_hooks(conn, project.id, state)
    except ValidationFailed as error:
        raise renamed(error, lambda f: "timeout" if f == "timeout_seconds" else f) from None
    answer = _webhook(row, state.settings.webhook_timeout_seconds)
    return JSONResponse(answer.model_dump(), status_code=201)


@router.get(
    "/v1/agents/{agent_id}/webhook",
    response_model=Webhook | None,
    responses=_ERRORS,
    summary="Get Agent Webhook",
)
async def get_agent_webhook(agent_id: str, request: Request, state: State) -> Webhook | None:
    """The agent's own webhook, or ``null`` when it has none."""
    project = await _project(request, state)
    async with state.db.read() as conn:
        row = await _agent_hook(conn, project.id, agent_id)
    return None if row is None else _webhook(row, state.settings.webhook_timeout_seconds)


@router.delete(
    "/v1/agents/{agent_id}/webhook",
    response_model=Success,
    responses=_ERRORS,
    summary="Delete Agent Webhook",
)
async def delete_agent_webhook(agent_id: str, request: Request, state: State) -> Success:
    """The agent's events go to the account's webhook again."""
    project = await _project(request, state)
    async with state.db.write() as conn:
        row = await _own_hook(conn, project.id, agent_id)
        await webhook_endpoints.delete_endpoint(conn, project.id, row["id"])
        await _skip_agents_with_hooks(conn, project.id, state)
    return Success(success=True)


@router.get(
    "/v1/agents/{agent_id}/webhook/deliveries",
    response_model=list[WebhookDelivery],
    responses=_ERRORS,
    summary="List Agent Webhook Deliveries",
)
async def agent_webhook_deliveries(
    agent_id: str, request: Request, state: State
) -> list[WebhookDelivery]:
    """The agent's webhook's delivery attempts, newest first (``limit``, default 50)."""
    project = await _project(request, state)
    limit = _int_arg(request, "limit", 50, 1, 100)
    async with state.db.read() as conn:
        row = await _own_hook(conn, project.id, agent_id)
        rows = await webhook_endpoints.list_deliveries(conn, project.id, row["id"], limit=limit)
        events = await usage.delivery_events(conn, [r["event_id"] for r in rows])
    return [_delivery(r, events.get(r["event_id"])) for r in rows]


@router.post(
    "/v1/agents/{agent_id}/webhook/test",
    response_model=TestWebhookResponse,
    responses=_ERRORS,
    summary="Test Agent Webhook",
)
async def test_agent_webhook(agent_id: str, request: Request, state: State) -> TestWebhookResponse:
    """A synthetic ``agent.message`` (``"test": true``) to the agent's webhook."""
    project = await _project(request, state)
    async with state.db.write() as conn:
        row = await _own_hook(conn, project.id, agent_id)
        event_id = await webhook_endpoints.send_test_event(
            conn, project.id, row["id"], "message.received", _test_data(TestWebhookRequest())
        )
    return TestWebhookResponse(success=True, eventId=event_id, message="test event queued")


VENDOR = Vendor(NAME, router, render_error)
