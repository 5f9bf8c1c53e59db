"""Conversation attachment: opt-outs, the conversation each send opens or resumes, agent
openings, quiet hours and silence timers; and inline replies' parents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import purposes
from agentsms.core import compliance, conversations, personas, statuses, zones
from agentsms.core.conversations import ConversationInput
from agentsms.core.sending.specs import EMPTY_BODY, OutboundSpec
from agentsms.core.sending.validation import Intake
from agentsms.errors import FieldError
from agentsms.store.repositories import messages as repo


async def converse(
    conn: AsyncConnection,
    project_id: str,
    project_settings: Mapping[str, Any],
    intake: Intake,
    rows: Sequence[dict[str, Any]],
    givens: Sequence[tuple[ConversationInput, str]],
) -> None:
    """The conversation side of intake: opt-outs, conversations, openings, quiet hours,
    timers. ``givens`` are the distinct ``conversation`` objects of the sends, each with
    the field prefix its errors get. Problems go to ``intake.errors``: the caller raises,
    and the edge's transaction takes back anything written here."""
    for given, given_prefix in givens:
        if given.settings:
            intake.errors.extend(
                conversations.validate_given(given, project_settings, given_prefix)
            )
            intake.errors.extend(
                await personas.check_references(conn, project_id, given.settings, given_prefix)
            )
    active, opted_out = await conversations.lookup_outbound(conn, project_id, intake.threads)
    intake.errors.extend(compliance.opted_out_fields(rows, intake.prefixes, opted_out))
    if intake.errors:
        return
    for given, _ in givens:
        await personas.canonical_persona_id(conn, project_id, given.settings)
    attached = await conversations.attach_outbound(
        conn, project_id, project_settings, intake.threads, intake.now, active=active
    )
    timers: dict[str, conversations.TimerStart] = {}
    # Sends that share a conversation's settings (a batch's new ones) share their reading:
    # the quiet hours and whether silence times out.
    readings: dict[int, tuple[compliance.QuietHours | None, bool]] = {}
    contact_zones: dict[tuple[str, str], str] | None = None
    openings = intake.openings
    for thread, item, prefix in zip(intake.threads, attached, intake.prefixes, strict=True):
        row = thread.row
        settings = item.settings
        if openings and row["id"] in openings and not conversations.has_agent(settings):
            intake.errors.append(
                # Without an agent to write it (persona_id, pathway_id or persona_settings
                # in the conversation settings), a message needs a body as it always did.
                FieldError(f"{prefix}body", EMPTY_BODY)
            )
            continue
        reading = readings.get(id(settings))
        if reading is None:
            reading = readings[id(settings)] = (
                compliance.parse_quiet_hours(
                    settings.get("quiet_hours", project_settings.get("quiet_hours"))
                ),
                conversations.has_timers(settings),
            )
        quiet, timed = reading
        purpose = row["purpose"]
        if quiet is not None and purpose != compliance.COMPLIANCE:
            if contact_zones is None:  # read once, for every send of the request
                contact_zones = await zones.contact_zones(
                    conn, [(project_id, t.row["to_number"]) for t in intake.threads]
                )
            when = row["send_at"] or intake.now
            allowed = compliance.next_allowed(
                max(when, intake.now),
                row["to_number"],
                quiet,
                contact_zone=contact_zones.get((project_id, row["to_number"])),
                conversation_zone=zones.metadata_zone(item.conversation.metadata),
            )
            if allowed > max(when, intake.now):
                row["send_at"] = allowed
                row["status"] = statuses.SCHEDULED
        if timed and purpose not in (*purposes.TIMERS, compliance.COMPLIANCE):
            conversation = item.conversation
            if conversation.id not in timers:
                timers[conversation.id] = conversations.TimerStart(
                    conversation,
                    settings,
                    bool(conversation.engaged),
                    row["send_at"].timestamp() if row["send_at"] else None,
                )
    if not intake.errors:
        await conversations.restart_timers_many(conn, list(timers.values()))


async def resolve_replies(
    conn: AsyncConnection, project_id: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Mark each inline reply whose parent is not a message of its own conversation as
    unresolved: it is then sent as a plain message (the parent id is kept as given)."""
    for row in rows:
        parent_id = row.get("reply_to_message_id")
        if parent_id is None:
            continue
        parent = await repo.get_message(conn, project_id, parent_id)
        row["reply_parent_unresolved"] = (
            parent is None
            or parent.conversation_id is None
            or parent.conversation_id != row["conversation_id"]
        )


def givens(items: Sequence[OutboundSpec]) -> list[tuple[ConversationInput, str]]:
    """The distinct ``conversation`` objects of ``items`` and their error prefixes: the
    shared one of a batch is ``conversation.``, one of a single item its own."""
    found: dict[int, tuple[ConversationInput, list[int]]] = {}
    for index, item in enumerate(items):
        if item.conversation is not None:
            found.setdefault(id(item.conversation), (item.conversation, []))[1].append(index)
    if len(found) <= 1 or len(items) == 1:
        return [(given, "conversation.") for given, _ in found.values()]
    return [
        (given, "conversation." if len(indexes) > 1 else f"recipients[{indexes[0]}].conversation.")
        for given, indexes in found.values()
    ]
