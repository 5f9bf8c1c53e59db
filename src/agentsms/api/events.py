"""``/v1/events/stream``: message events as server-sent events, for ``agentsms tail``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from agentsms.api import render
from agentsms.api.deps import CurrentProject, State
from agentsms.core.events import follow
from agentsms.numeric import INT64_MAX, whole_number

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("/stream", summary="Live message events (server-sent events)")
async def stream(
    project: CurrentProject,
    state: State,
    after: int | None = Query(
        default=None, ge=0, le=INT64_MAX, description="Start after this event seq"
    ),
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> EventSourceResponse:
    """Each event's SSE id is its ``seq``; reconnecting with ``Last-Event-ID`` resumes.

    Outbound messages' ``message.queued`` / ``message.scheduled`` events have ``seq`` 0 and
    no SSE id (intake stores no event row for them): they come for the messages made after
    the event resumed from."""
    if after is None and last_event_id:
        after = whole_number(last_event_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for rows in follow(state.db, project.id, after, acceptances=True):
            for row in rows:
                # An acceptance (seq 0) has no place in the event log to resume from.
                yield ServerSentEvent(
                    data=render.event(row).model_dump_json(),
                    event=row["type"],
                    id=str(row["seq"]) if row["seq"] else None,
                )

    return EventSourceResponse(events(), ping=15)
