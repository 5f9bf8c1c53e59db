"""Simulated people: scripted answers from the carrier simulator, through the inbound path.

A person's script is a list of replies and a delay. When the simulator carries a text to
a scripted person with no answer already due, one is queued (``simulator.person_reply``,
see ``core.simulator``); the answer is the script's next reply, received through
``core.provider_events.receive_inbound`` as a carrier's inbound text is, so agents,
compliance and timers see it like any text.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.phone import parse_phone_field
from agentsms.core.provider_events import Origin, receive_inbound
from agentsms.core.sending import Outbox
from agentsms.errors import AgentsmsError, NotFound
from agentsms.jobs import queue
from agentsms.jobs.queue import Job
from agentsms.providers.base import InboundMessage
from agentsms.store.db import Database
from agentsms.store.repositories import Row
from agentsms.store.repositories import simulator as repo
from agentsms.store.types import utcnow

log = structlog.get_logger("agentsms.simulator")


async def put_person(
    conn: AsyncConnection, project_id: str, number: str, replies: Sequence[str], delay: float
) -> Row:
    """Script (or re-script, from its first reply) the person at ``number``."""
    phone = parse_phone_field(number, "number")
    row = {
        "project_id": project_id,
        "number": phone.e164,
        "replies": list(replies),
        "delay_seconds": float(delay),
        "next_index": 0,
        "pending": False,
        "created_at": utcnow(),
    }
    await repo.put_person(conn, row)
    return row


async def get_person(conn: AsyncConnection, project_id: str, number: str) -> Row:
    phone = parse_phone_field(number, "number")
    row = await repo.get_person(conn, project_id, phone.e164)
    if row is None:
        raise NotFound(f"no simulated person at {phone.e164}")
    return row


async def list_people(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    return await repo.list_people(conn, project_id)


async def delete_person(conn: AsyncConnection, project_id: str, number: str) -> None:
    phone = parse_phone_field(number, "number")
    if not await repo.delete_person(conn, project_id, phone.e164):
        raise NotFound(f"no simulated person at {phone.e164}")


class PersonReplies:
    """Runs ``simulator.person_reply`` jobs."""

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    async def handle(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            project_id = str(job.payload["project_id"])
            number = str(job.payload["number"])
            async with self.db.write() as conn:
                person = await repo.get_person(conn, project_id, number)
                if person is not None:
                    index = int(person["next_index"])
                    replies = list(person["replies"])
                    await repo.advance_person(conn, project_id, number, index + 1)
                    if index < len(replies):
                        text = InboundMessage(
                            from_number=number,
                            to_number=str(job.payload["to"]),
                            body=replies[index],
                        )
                        try:
                            await receive_inbound(
                                conn, self.outbox, Origin.simulator(project_id), text
                            )
                        except AgentsmsError as error:
                            log.warning("simulator.person_reply_refused", error=str(error))
                await queue.finish(conn, [job])
