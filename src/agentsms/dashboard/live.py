"""``/dashboard/stream``: live updates for the page that is open, as server-sent events.

It follows the same event log as ``/v1/events/stream`` (``core.events.follow``) and sends
HTML ready to swap in with htmx's SSE extension:

* ``status-<message id>``: the message's current status badge, for every message whose
  status changed (pages put ``sse-swap="status-msg_…"`` where a status is shown);
* ``timeline-<message id>``: the message's timeline, when ``message=<id>`` is asked for;
* ``batch-<batch id>``: the batch's progress bars, when ``batch=<id>`` is asked for;
* ``batchbar-<batch id>``: a batch's one-line bar, for every batch that moved, when
  ``batches=1`` is asked for (the batches list);
* ``inbox-<conversation id>``: a conversation's inbox row, for every conversation whose
  messages moved, when ``inbox=1`` is asked for; ``inbox-new`` carries the row of a
  conversation newer than ``newest`` (the newest row the page shows) the first time it
  moves, for the page to put on top (``status`` and ``number`` narrow it like the page);
* ``conversation-<id>`` and ``convhead-<id>``: the bubbles of the conversation's messages
  newer than ``shown`` (each once), and its facts, when ``conversation=<id>`` is asked for.

Without a valid session (never signed in, signed out, key revoked) it answers ``204``,
which tells an ``EventSource`` to stop reconnecting; an open stream re-checks its session
every ``RECHECK_SECONDS`` and ends once it is signed out or its key revoked.

Pages pass ``after=<seq>`` (the newest event when they were rendered) so nothing that
happens between the render and the connection is missed; reconnects resume from
``Last-Event-ID``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from agentsms.core import conversations as conversations_service
from agentsms.core import dashboard_sessions
from agentsms.core import inbox as inbox_service
from agentsms.core import messages as messages_service
from agentsms.core.events import follow
from agentsms.core.phone import parse_phone_field
from agentsms.dashboard.inbox import STATUS_LABELS
from agentsms.dashboard.pages import progress
from agentsms.dashboard.sessions import CSRF_FIELD
from agentsms.dashboard.web import PREFIX, DashboardRoute, MaybeSignedIn, Viewer, templates
from agentsms.errors import AgentsmsError, NotFound, Unauthorized
from agentsms.numeric import INT64_MAX, whole_number

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

RECHECK_SECONDS = 30.0


def _html(name: str, viewer: Viewer, **context: object) -> str:
    """A partial, with what its forms need (the same globals a page gets)."""
    full = {"prefix": PREFIX, "csrf_field": CSRF_FIELD, "csrf_token": viewer.session.csrf}
    return templates.get_template(name).render(full | context)


@router.get("/stream")
async def stream(
    request: Request,
    viewer: MaybeSignedIn,
    after: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    batch: str | None = None,
    message: str | None = None,
    batches: bool = False,
    inbox: bool = False,
    newest: str = "",
    status: str | None = None,
    number: str | None = None,
    conversation: str | None = None,
    shown: str = "",
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> Response:
    if viewer is None:
        return Response(status_code=204)
    if last_event_id and (resumed := whole_number(last_event_id)) is not None:
        after = resumed
    project_id = viewer.project.id
    db = viewer.state.db

    session_id = viewer.session.session_id
    assert session_id is not None
    wanted = _inbox_filter(status, number)
    announced: set[str] = set()
    bubbles: set[str] = set()

    async def events() -> AsyncIterator[ServerSentEvent]:
        checked = time.monotonic()
        async for rows in follow(db, project_id, after):
            if time.monotonic() - checked > RECHECK_SECONDS:
                checked = time.monotonic()
                try:
                    async with db.read() as conn:
                        await dashboard_sessions.session_project(conn, session_id)
                except Unauthorized:
                    return
            if not rows:
                continue
            last = str(rows[-1]["seq"])
            ids = list(dict.fromkeys(row["message_id"] for row in rows))
            async with db.read() as conn:
                current = await messages_service.get_messages(conn, project_id, ids)
                for message_id, record in current.items():
                    yield ServerSentEvent(
                        data=_html("_status.html", viewer, status=record.status, m=record),
                        event=f"status-{message_id}",
                        id=last,
                    )
                if message is not None and message in current:
                    timeline = await messages_service.timeline(conn, project_id, message)
                    yield ServerSentEvent(
                        data=_html("_timeline.html", viewer, timeline=timeline, m=current[message]),
                        event=f"timeline-{message}",
                        id=last,
                    )
                if batches:
                    moved = {r.batch_id for r in current.values() if r.batch_id}
                    for row, counts in await messages_service.batches_by_ids(
                        conn, project_id, sorted(moved)
                    ):
                        yield ServerSentEvent(
                            data=_html("_batch_bar.html", viewer, b=progress(row, counts)),
                            event=f"batchbar-{row['id']}",
                            id=last,
                        )
                touched = sorted({r.conversation_id for r in current.values() if r.conversation_id})
                if inbox and touched:
                    for event in await _inbox_events(
                        conn, viewer, touched, newest, wanted, announced, last
                    ):
                        yield event
                if conversation is not None and conversation in touched:
                    for event in await _thread_events(
                        conn, viewer, conversation, shown, bubbles, last
                    ):
                        yield event
                if batch is not None and any(r.batch_id == batch for r in current.values()):
                    try:
                        row, counts = await messages_service.get_batch(conn, project_id, batch)
                    except NotFound:
                        continue
                    yield ServerSentEvent(
                        data=_html("_batch_progress.html", viewer, b=progress(row, counts)),
                        event=f"batch-{batch}",
                        id=last,
                    )

    return EventSourceResponse(events(), ping=15)


def _inbox_filter(status: str | None, number: str | None) -> tuple[str | None, str | None]:
    e164 = None
    if number and number.strip():
        try:
            e164 = parse_phone_field(number.strip(), "number").e164
        except AgentsmsError:
            e164 = number.strip()
    return status or None, e164


async def _inbox_events(
    conn: AsyncConnection,
    viewer: Viewer,
    ids: list[str],
    newest: str,
    wanted: tuple[str | None, str | None],
    announced: set[str],
    last: str,
) -> list[ServerSentEvent]:
    found = []
    for line in await inbox_service.lines_for(conn, viewer.project.id, ids):
        html = _html("_inbox_row.html", viewer, r=line, labels=STATUS_LABELS)
        status, number = wanted
        matches = (status is None or line.conversation.status == status) and (
            number is None or line.conversation.user_number == number
        )
        if line.id > newest and line.id not in announced and matches:
            announced.add(line.id)
            found.append(ServerSentEvent(data=html, event="inbox-new", id=last))
        else:
            found.append(ServerSentEvent(data=html, event=f"inbox-{line.id}", id=last))
    return found


async def _thread_events(
    conn: AsyncConnection,
    viewer: Viewer,
    conversation_id: str,
    shown: str,
    sent: set[str],
    last: str,
) -> list[ServerSentEvent]:
    row = await conversations_service.get(conn, viewer.project.id, conversation_id)
    thread = await conversations_service.messages_of(conn, conversation_id)
    fresh = [m for m in thread if m.id > shown and m.id not in sent]
    sent.update(m.id for m in fresh)
    names = await inbox_service.persona_names(conn, viewer.project.id)
    persona_id = (row.settings or {}).get("persona_id")
    head = _html(
        "_conversation_head.html",
        viewer,
        c=row,
        labels=STATUS_LABELS,
        persona_id=persona_id,
        persona_name=names.get(persona_id) if isinstance(persona_id, str) else None,
    )
    found = [ServerSentEvent(data=head, event=f"convhead-{conversation_id}", id=last)]
    if fresh:
        html = "".join(_html("_bubble.html", viewer, m=m) for m in fresh)
        found.append(ServerSentEvent(data=html, event=f"conversation-{conversation_id}", id=last))
    return found
