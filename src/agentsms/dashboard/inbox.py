"""The web inbox: conversations newest first, one conversation as a thread of bubbles,
and a human's hand on it (reply, pause and resume the agent, end)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import RedirectResponse, Response

from agentsms.agents.pathway import edges, parse_pathway
from agentsms.core import agent_turns, inbox, personas
from agentsms.core import conversations as service
from agentsms.core import events as core_events
from agentsms.core.phone import parse_phone_field
from agentsms.dashboard import graph
from agentsms.dashboard.web import (
    PAGE_HEADERS,
    PREFIX,
    DashboardRoute,
    Protected,
    SignedIn,
    errors_by_field,
    form_page,
    page,
)
from agentsms.errors import AgentsmsError, FieldError, invalid
from agentsms.store.records import ConversationRecord
from agentsms.store.repositories.conversations import ConversationFilter

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

PAGE_SIZE = 50
MAX_OUTCOME = 100
STATUS_LABELS = {
    service.OPEN: "open",
    service.NEEDS_ATTENTION: "needs attention",
    service.ENDED: "ended",
    service.OPTED_OUT: "opted out",
}
# Media in a conversation comes from anywhere on the web: its thumbnails may load from any
# https origin (never with a referrer); everything else keeps the dashboard's policy.
THREAD_CSP = PAGE_HEADERS["Content-Security-Policy"].replace(
    "img-src 'self' data:", "img-src 'self' data: https:"
)


@router.get("/conversations")
async def conversations_page(
    request: Request,
    viewer: SignedIn,
    status: str | None = None,
    number: str | None = None,
    cursor: str | None = None,
) -> Response:
    errors: list[FieldError] = []
    status = status or None
    if status is not None and status not in service.STATUSES:
        errors.append(FieldError("status", f"must be one of {', '.join(service.STATUSES)}"))
    e164 = None
    if number and number.strip():
        try:
            e164 = parse_phone_field(number.strip(), "number").e164
        except AgentsmsError as error:
            errors.extend(error.errors)
    rows: list[inbox.InboxRow] = []
    next_cursor = None
    async with viewer.state.db.read() as conn:
        seq = await core_events.last_seq(conn, viewer.project.id)
        if not errors:
            where = ConversationFilter(
                project_id=viewer.project.id,
                status=status,
                user_number=e164,
                before_id=cursor or None,
            )
            rows = await inbox.inbox(conn, where, PAGE_SIZE + 1)
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_cursor = rows[-1].id
    filters = {"status": status, "number": number}
    query = {k: v for k, v in filters.items() if v}
    stream = {"after": seq, "inbox": "1"} | query
    if rows and not cursor:
        stream["newest"] = rows[0].id
    context = {
        "rows": rows,
        "filters": filters,
        "errors": errors_by_field(errors),
        "labels": STATUS_LABELS,
        "statuses": service.STATUSES,
        "live": not cursor and not errors,
        "stream_query": urlencode(stream),
        "next_url": (
            f"{PREFIX}/conversations?{urlencode(query | {'cursor': next_cursor})}"
            if next_cursor
            else None
        ),
        "first_url": f"{PREFIX}/conversations?{urlencode(query)}" if cursor else None,
    }
    return page(
        request,
        "conversations.html",
        context,
        status_code=422 if errors else 200,
        nav="conversations",
    )


async def _thread_page(
    request: Request,
    viewer: SignedIn,
    conversation_id: str,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    async with viewer.state.db.read() as conn:
        seq = await core_events.last_seq(conn, viewer.project.id)
        row = await service.get(conn, viewer.project.id, conversation_id)
        thread = await service.messages_of(conn, conversation_id)
        names = await inbox.persona_names(conn, viewer.project.id)
        drawing = await _pathway_drawing(conn, viewer.project.id, row)
    persona_id = (row.settings or {}).get("persona_id")
    context: dict[str, Any] = {
        "c": row,
        "thread": thread,
        "persona_name": names.get(persona_id) if isinstance(persona_id, str) else None,
        "persona_id": persona_id,
        "labels": STATUS_LABELS,
        "active": row.status in service.ACTIVE,
        "drawing": drawing,
        "body": "",
        "stream_query": urlencode(
            {"after": seq, "conversation": row.id, "shown": thread[-1].id if thread else ""}
        ),
    }
    response = form_page(
        request, "conversation.html", context, extra, status_code=status_code, nav="conversations"
    )
    response.headers["Content-Security-Policy"] = THREAD_CSP
    return response


async def _pathway_drawing(
    conn: AsyncConnection, project_id: str, row: ConversationRecord
) -> str | None:
    """The conversation's pathway as a graph with its current node marked, when its agent
    follows one (``None`` for other agents or a reference that no longer resolves)."""
    try:
        config = await personas.resolve_agent_config(conn, project_id, row.settings or {})
    except AgentsmsError:
        return None
    if not config or config.get("kind") != "flow" or not config.get("pathway"):
        return None
    try:
        parsed = parse_pathway(config["pathway"])
    except AgentsmsError:
        return None
    return graph.svg(
        parsed.start,
        [(node.id, node.type) for node in parsed.nodes.values()],
        edges(parsed),
        current=row.current_node_id,
        title=f"The pathway; current node {row.current_node_id or 'none yet'}",
    )


@router.get("/conversations/{conversation_id}")
async def conversation_page(request: Request, viewer: SignedIn, conversation_id: str) -> Response:
    return await _thread_page(request, viewer, conversation_id)


def _back(conversation_id: str, notice: str) -> Response:
    query = urlencode({"notice": notice})
    return RedirectResponse(f"{PREFIX}/conversations/{conversation_id}?{query}", status_code=303)


@router.post("/conversations/{conversation_id}/reply", dependencies=[Protected])
async def reply(
    request: Request, viewer: SignedIn, conversation_id: str, body: Annotated[str, Form()] = ""
) -> Response:
    try:
        if not body.strip():
            raise invalid("body", "write a reply first")
        async with viewer.state.db.write() as conn:
            await agent_turns.human_message(
                conn,
                viewer.state.outbox,
                viewer.project.id,
                conversation_id,
                body,
                [],
                project_settings=viewer.project.settings,
            )
    except AgentsmsError as error:
        if error.status == 404:
            raise
        found = errors_by_field(error.errors) or {"body": [error.detail]}
        extra = {"errors": found, "body": body}
        return await _thread_page(request, viewer, conversation_id, extra, 422)
    return _back(conversation_id, "Sent. The agent is paused until you resume it.")


@router.post("/conversations/{conversation_id}/pause", dependencies=[Protected])
async def pause(request: Request, viewer: SignedIn, conversation_id: str) -> Response:
    return await _set_paused(request, viewer, conversation_id, True)


@router.post("/conversations/{conversation_id}/resume", dependencies=[Protected])
async def resume(request: Request, viewer: SignedIn, conversation_id: str) -> Response:
    return await _set_paused(request, viewer, conversation_id, False)


async def _set_paused(
    request: Request, viewer: SignedIn, conversation_id: str, paused: bool
) -> Response:
    try:
        async with viewer.state.db.write() as conn:
            await service.set_agent_paused(conn, viewer.project.id, conversation_id, paused)
    except AgentsmsError as error:
        if error.status == 404:
            raise
        return await _thread_page(
            request, viewer, conversation_id, {"notice": error.detail}, error.status
        )
    return _back(conversation_id, "Agent paused." if paused else "Agent resumed.")


@router.post("/conversations/{conversation_id}/end", dependencies=[Protected])
async def end(
    request: Request,
    viewer: SignedIn,
    conversation_id: str,
    outcome: Annotated[str, Form()] = "",
) -> Response:
    try:
        if len(outcome.strip()) > MAX_OUTCOME:
            raise invalid("outcome", f"must be at most {MAX_OUTCOME} characters")
        async with viewer.state.db.write() as conn:
            await service.end(
                conn, viewer.project.id, conversation_id, outcome=outcome.strip() or None
            )
    except AgentsmsError as error:
        if error.status == 404:
            raise
        extra: dict[str, Any] = {
            "errors": errors_by_field(error.errors) or {"outcome": [error.detail]}
        }
        extra["outcome"] = outcome
        return await _thread_page(request, viewer, conversation_id, extra, error.status)
    return _back(conversation_id, "Conversation ended.")
