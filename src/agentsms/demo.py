"""The ``make run`` demo: an appointment-reminder agent texts a simulated person.

Bootstraps, in the quickstart's project: a persona made from the gallery's appointment-reminder
template (and the project's default persona, unless it has one: replies to texts sent through
any API shape are answered), a simulated person who asks to reschedule, and a fresh
conversation whose opening the agent writes. The server's worker then plays the whole exchange.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentsms.agents import gallery
from agentsms.config import Settings
from agentsms.core import personas, projects, simulated_people
from agentsms.core.conversations import ConversationInput
from agentsms.core.sending import OutboundSpec, Outbox, SendPolicy
from agentsms.store import migrate
from agentsms.store.db import Database

DEMO_PERSONA = "Appointment reminder (demo)"
DEMO_PERSON = "+14155550123"
DEMO_REPLIES = ("Hi! Can we move it to Thursday at 3pm?",)


@dataclass(frozen=True, slots=True)
class Demo:
    project_id: str
    persona_id: str
    conversation_id: str
    person: str


async def start_demo(settings: Settings, api_key: str) -> Demo:
    """Create (once) the demo persona and person, and start a new demo conversation."""
    await migrate.upgrade_async(settings.database_url)
    outbox = Outbox(SendPolicy.from_settings(settings))
    db = Database(settings.database_url)
    try:
        async with db.write() as conn:
            project = await projects.authenticate(conn, api_key)
            existing = [
                p
                for p in await personas.list_personas(conn, project.id)
                if p["name"] == DEMO_PERSONA
            ]
            if existing:
                persona_id = str(existing[0]["id"])
            else:
                config, _ = personas.template_config(gallery.APPOINTMENT_REMINDER, {})
                row, _ = await personas.create_persona(
                    conn, project.id, DEMO_PERSONA, config, publish=True
                )
                persona_id = str(row["id"])
            if not project.settings.get(personas.DEFAULT_PERSONA):
                project = await projects.set_default_persona(conn, project, persona_id)
            await simulated_people.put_person(
                conn, project.id, DEMO_PERSON, DEMO_REPLIES, delay=2.0
            )
            message = await outbox.send(
                conn,
                project.id,
                OutboundSpec(
                    to=DEMO_PERSON,
                    new_conversation=True,
                    conversation=ConversationInput(
                        settings={"persona_id": persona_id},
                        metadata={"name": "Ana", "time": "on Tuesday at 10 AM"},
                    ),
                ),
                project_settings=project.settings,
            )
    finally:
        await db.dispose()
    return Demo(project.id, persona_id, str(message.conversation_id), DEMO_PERSON)
