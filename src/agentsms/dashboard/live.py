"""``/dashboard/stream``: live updates for the page that is open, as server-sent events.

It follows the same event log as ``/v1/events/stream`` (``core.events.follow``) and sends
HTML ready to swap in with htmx's SSE extension:

* ``status-<message id>``: the message's current status badge, for every message whose
  status changed (pages put ``sse-swap="status-msg_…"`` where a status is shown);
* ``timeline-<message id>``: the message's timeline, when ``message=<id>`` is asked for;
* ``batch-<batch id>``: the batch's progress bars, when ``batch=<id>`` is asked for;
* ``batchbar-<batch id>``: a batch's one-line bar, for every batch that moved, when
  ``batches=1`` is asked for (the batches list).

Without a valid session (never signed in, signed out, key revoked) it answers ``204``,
which tells an ``EventSource`` to stop reconnecting; an open stream re-checks its session
every ``RECHECK_SECONDS`` and ends once the key is revoked.

Pages pass ``after=<seq>`` (the newest event when they were rendered) so nothing that
happens between the render and the connection is missed; reconnects resume from
``Last-Event-ID``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from agentsms.core import messages as messages_service
from agentsms.core import projects
from agentsms.core.errors import NotFound, Unauthorized
from agentsms.core.events import follow
from agentsms.dashboard.pages import progress
from agentsms.dashboard.sessions import CSRF_FIELD
from agentsms.dashboard.web import PREFIX, DashboardRoute, MaybeSignedIn, Viewer, templates

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
    after: int | None = None,
    batch: str | None = None,
    message: str | None = None,
    batches: bool = False,
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> Response:
    if viewer is None:
        return Response(status_code=204)
    if last_event_id and last_event_id.isdigit():
        after = int(last_event_id)
    project_id = viewer.project.id
    db = viewer.state.db

    key_id = viewer.session.key_id
    assert key_id is not None

    async def events() -> AsyncIterator[ServerSentEvent]:
        checked = time.monotonic()
        async for rows in follow(db, project_id, after):
            if time.monotonic() - checked > RECHECK_SECONDS:
                checked = time.monotonic()
                try:
                    async with db.read() as conn:
                        await projects.project_for_key_id(conn, key_id)
                except Unauthorized:
                    return
            if not rows:
                continue
            last = str(rows[-1]["seq"])
            ids = list(dict.fromkeys(row["message_id"] for row in rows))
            async with db.read() as conn:
                current = await messages_service.get_messages(conn, project_id, ids)
                for message_id, row in current.items():
                    yield ServerSentEvent(
                        data=_html("_status.html", viewer, status=row["status"], m=row),
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
                    moved = {r["batch_id"] for r in current.values() if r["batch_id"]}
                    for row, counts in await messages_service.batches_by_ids(
                        conn, project_id, sorted(moved)
                    ):
                        yield ServerSentEvent(
                            data=_html("_batch_bar.html", viewer, b=progress(row, counts)),
                            event=f"batchbar-{row['id']}",
                            id=last,
                        )
                if batch is not None and any(r["batch_id"] == batch for r in current.values()):
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
