"""``/v1/simulator``: talk to the built-in carrier as a person would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Query, Response

from agentsms.api import render, schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.api.messages import e164_filter
from agentsms.core import reactions, simulated_people
from agentsms.core.provider_events import Origin, receive_inbound
from agentsms.providers.base import InboundMessage
from agentsms.store.repositories import simulator as log_repo

router = APIRouter(prefix="/v1/simulator", tags=["simulator"])


@router.post(
    "/inbound",
    status_code=202,
    response_model=schemas.Message,
    summary="Inject a text from a simulated person",
)
async def inject_inbound(
    body: schemas.SimulatorInbound, project: CurrentProject, state: State
) -> schemas.Message:
    """Goes through the same inbound path a carrier webhook takes."""
    text = InboundMessage(
        from_number=body.from_,
        to_number=body.to,
        body=body.body,
        media_urls=tuple(body.media_urls),
        channel="mms" if body.media_urls else "sms",
    )
    async with state.db.write() as conn:
        row = await receive_inbound(conn, state.outbox, Origin.simulator(project.id), text)
    return render.message(row)


@router.post(
    "/reactions",
    status_code=201,
    response_model=schemas.Reaction,
    summary="A simulated person reacts (tapback) to one of our iMessage messages",
)
async def inject_reaction(
    body: schemas.SimulatorReaction, project: CurrentProject, state: State
) -> schemas.Reaction:
    """The simulated person behind one of our iMessage messages reacts to it (a tapback), as the
    carrier would report it. Returns the reaction; ``404`` for an unknown message, ``422``
    ``reactions_unsupported`` for a message not sent over iMessage.
    """
    async with state.db.write() as conn:
        row = await reactions.receive(conn, project.id, body.message_id, body.reaction)
    return render.reaction(row)


@router.get("/log", summary="What the simulated carrier received")
async def send_log(
    project: CurrentProject,
    state: State,
    to: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, object]:
    """Every send request the simulator got, and totals: how many texts each person got."""
    to = e164_filter(to, "to")
    async with state.db.read() as conn:
        if to:
            rows = await log_repo.sends_to(conn, project.id, to)
        else:
            rows = await log_repo.recent(conn, project.id, limit)
        totals = await log_repo.summary(conn, project.id)
    return {
        "totals": totals,
        "data": [
            {
                "reference": row["reference"],
                "provider_message_id": row["provider_message_id"],
                "from": row["from_number"],
                "to": row["to_number"],
                "body": row["body"],
                "channel": row["channel"],
                "outcome": row["outcome"],
                "repeat_count": row["repeat_count"],
            }
            for row in rows[:limit]
        ],
    }


def _person(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "number": row["number"],
        "replies": list(row["replies"]),
        "delay_seconds": row["delay_seconds"],
        "next_reply": row["next_index"],
    }


@router.put("/people/{number}", summary="Script a simulated person")
async def put_person(
    number: str, body: schemas.SimulatedPerson, project: CurrentProject, state: State
) -> dict[str, Any]:
    """The simulator answers texts to ``number`` with ``replies`` in order, after the delay."""
    async with state.db.write() as conn:
        row = await simulated_people.put_person(
            conn, project.id, number, body.replies, body.delay_seconds
        )
    return _person(row)


@router.get("/people", summary="The scripted people")
async def list_people(project: CurrentProject, state: State) -> dict[str, Any]:
    """Every simulated person scripted in this project, with their remaining replies."""
    async with state.db.read() as conn:
        rows = await simulated_people.list_people(conn, project.id)
    return {"data": [_person(row) for row in rows]}


@router.get("/people/{number}", summary="A scripted person")
async def get_person(number: str, project: CurrentProject, state: State) -> dict[str, Any]:
    """The script of the simulated person at ``number``: replies still to come and their delay.
    ``404`` when none is scripted there.
    """
    async with state.db.read() as conn:
        return _person(await simulated_people.get_person(conn, project.id, number))


@router.delete("/people/{number}", status_code=204, summary="Stop simulating a person")
async def delete_person(number: str, project: CurrentProject, state: State) -> Response:
    """Stop answering for the simulated person at ``number``. ``204``; ``404`` when none is
    scripted there.
    """
    async with state.db.write() as conn:
        await simulated_people.delete_person(conn, project.id, number)
    return Response(status_code=204)
