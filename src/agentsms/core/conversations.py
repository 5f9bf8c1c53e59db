"""Conversations: every text between a sender number and a person belongs to one.

An outbound message opens or resumes the active conversation of its thread (project,
sender number, person, channel family); an inbound text joins it or starts one. A
conversation carries the settings given at send time (context for the agent, metadata,
webhook URL, silence timers, persona...), merged over the sender number's defaults
(``numbers.settings.conversation``) and the project's (``projects.settings.conversation``).

Statuses: ``open`` (the agent answers), ``needs_attention`` (the agent failed; a human must
look), ``ended`` and ``opted_out`` (final). Everything here runs on the caller's connection
and never commits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import webhooks
from agentsms.core.compliance import (
    COMPLIANCE,
    next_allowed,
    parse_quiet_hours,
    quiet_hours_problem,
)
from agentsms.core.personas import DEFAULT_PERSONA
from agentsms.core.storable import metadata_problem
from agentsms.errors import FieldError, NotFound, ValidationFailed, invalid
from agentsms.ids import new_id, new_ids
from agentsms.jobs import queue
from agentsms.jobs.queue import NewJob
from agentsms.numeric import MAX_TIMER_SECONDS
from agentsms.store.records import ConversationRecord, DispatchMessage, MessageRecord
from agentsms.store.repositories import Row
from agentsms.store.repositories import conversations as repo
from agentsms.store.repositories import events as events_repo
from agentsms.store.repositories import optouts as optouts_repo
from agentsms.store.repositories import webhooks as webhooks_repo

# Part of this module's interface (``list_conversations`` takes one), for the edges.
from agentsms.store.repositories.conversations import ConversationFilter as ConversationFilter
from agentsms.store.types import utcnow
from agentsms.webhooks import formats as webhook_formats
from agentsms.webhooks.events import Event, emit_many

OPEN = "open"
NEEDS_ATTENTION = "needs_attention"
ENDED = "ended"
OPTED_OUT = "opted_out"
ACTIVE = (OPEN, NEEDS_ATTENTION)
STATUSES = (OPEN, NEEDS_ATTENTION, ENDED, OPTED_OUT)

TURN_JOB = "conversation.turn"
TIMER_JOB = "conversation.timer"
INVALID_TIMEOUT_CONFIG = "invalid_timeout_config"
TIMEOUT_REASON = "must be less than timeout_seconds"
HISTORY_FOR_WEBHOOKS = 20

# Settings a send may give (the ``conversation`` object), persisted on the conversation.
SETTING_KEYS = (
    "context",
    "task_context",
    "webhook_url",
    "webhook_format",
    "timeout_seconds",
    "timeout_message",
    "warning_seconds",
    "warning_message",
    "policy",
    "persona_id",
    "persona_version",
    "persona_settings",
    "pathway_id",
    "pathway_version",
    "start_node_id",
    "disposition_ids",
    "citation_schema_ids",
    "quiet_hours",
)

DEFAULT_WARNING_MESSAGE = (
    "Are you still there? This conversation will close in 10 minutes without a reply."
)
# Named timeout policies. "polyai": after 24 h of silence in an engaged conversation (the
# person has replied at least once) send a warning; end it if no reply within 10 minutes.
POLICIES: dict[str, dict[str, Any]] = {
    "polyai": {
        "warning_seconds": 24 * 3600,
        "timeout_seconds": 24 * 3600 + 600,
        "warning_message": DEFAULT_WARNING_MESSAGE,
        "engaged_only": True,
    },
    "none": {},
}


@dataclass(slots=True)
class ConversationInput:
    """The ``conversation`` object of a send: only the given keys replace stored ones."""

    settings: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None


_NOTHING_GIVEN = ConversationInput()
"""A send without a ``conversation`` object (shared: never modified)."""


def channel_family(channel: str) -> str:
    """SMS and MMS share one thread on a phone; other channels have their own."""
    return "sms" if channel in ("sms", "mms") else channel


def thread_key(project_id: str, agent_number: str, user_number: str, channel: str) -> str:
    family = "sms" if channel in ("sms", "mms") else channel  # channel_family, inlined
    return f"{project_id}|{agent_number}|{user_number}|{family}"


def effective_settings(
    project_settings: Mapping[str, Any],
    number_settings: Mapping[str, Any],
    conversation_settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The conversation's settings over the number's defaults over the project's; with no
    agent named by any of them, the project's default persona (``default_persona_id``)."""
    merged: dict[str, Any] = dict(project_settings.get("conversation") or {})
    merged.update(number_settings.get("conversation") or {})
    merged.update({k: v for k, v in conversation_settings.items() if v is not None})
    default = project_settings.get(DEFAULT_PERSONA)
    if default and not has_agent(merged):
        merged["persona_id"] = default  # replies never go unanswered by accident
    for key, value in POLICIES.get(str(merged.get("policy") or "none"), {}).items():
        merged.setdefault(key, value)
    return merged


def timeout_problem(settings: Mapping[str, Any], prefix: str) -> FieldError | None:
    """A warning must come before the timeout it warns about."""
    warning = settings.get("warning_seconds")
    timeout = settings.get("timeout_seconds")
    if warning is not None and timeout is not None and float(warning) >= float(timeout):
        return FieldError(
            f"{prefix}warning_seconds",
            f"{TIMEOUT_REASON} ({timeout}), got {warning}",
        )
    return None


def defaults_problem(value: Any) -> str | None:
    """Why a ``conversation`` defaults object (project or number settings) is invalid."""
    if not isinstance(value, Mapping):
        return "must be an object of conversation settings"
    unknown = sorted(set(value) - set(SETTING_KEYS))
    if unknown:
        return f"unknown key {unknown[0]!r}; allowed: {', '.join(SETTING_KEYS)}"
    if value.get("policy") is not None and value["policy"] not in POLICIES:
        return f"unknown policy; one of {', '.join(POLICIES)}"
    for key in ("timeout_seconds", "warning_seconds"):
        seconds = value.get(key)
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 < seconds <= MAX_TIMER_SECONDS
        ):
            return (
                f"{key} must be a number of seconds greater than 0 and at most {MAX_TIMER_SECONDS}"
            )
    problem = timeout_problem(effective_settings({}, {}, value), "")
    return None if problem is None else f"warning_seconds {problem.message}"


def quiet_hours_for(
    project_settings: Mapping[str, Any],
    number_settings: Mapping[str, Any],
    conversation_settings: Mapping[str, Any],
) -> Any:
    """The quiet hours that apply: the conversation's (or ``false``), then the number's and
    the project's conversation defaults, then the project's ``quiet_hours`` setting."""
    settings = effective_settings(project_settings, number_settings, conversation_settings)
    return settings.get("quiet_hours", project_settings.get("quiet_hours"))


def may_have_quiet_hours(project_settings: Mapping[str, Any]) -> bool:
    """Whether a project uses quiet hours as a default (then dispatch checks each send)."""
    defaults = project_settings.get("conversation") or {}
    return bool(project_settings.get("quiet_hours") or defaults.get("quiet_hours"))


def quiet_until(
    message: DispatchMessage,
    project_settings: Mapping[str, Any],
    number_settings: Mapping[str, Any],
    conversation_settings: Mapping[str, Any],
    now: datetime,
    *,
    contact_zone: str | None = None,
    conversation_zone: str | None = None,
) -> datetime | None:
    """When a queued message that reached its send time inside quiet hours may go, or
    ``None`` when it may go now (compliance answers always may). The person's zone is
    their contact's, else their conversation's, else the quiet hours' or their number's."""
    if message.purpose == COMPLIANCE:
        return None
    quiet = parse_quiet_hours(
        quiet_hours_for(project_settings, number_settings, conversation_settings)
    )
    if quiet is None:
        return None
    allowed = next_allowed(
        now,
        message.to_number,
        quiet,
        contact_zone=contact_zone,
        conversation_zone=conversation_zone,
    )
    return allowed if allowed > now else None


def has_agent(settings: Mapping[str, Any]) -> bool:
    """Whether these settings name an agent (its config is resolved by ``core.personas``)."""
    return bool(
        settings.get("persona_id") or settings.get("pathway_id") or settings.get("persona_settings")
    )


@dataclass(slots=True)
class Attached:
    """An outbound row's conversation and that conversation's effective settings."""

    conversation: ConversationRecord
    settings: dict[str, Any]
    created: bool


def _new_conversation(
    project_id: str,
    number: Row,
    user_number: str,
    channel: str,
    settings: Mapping[str, Any],
    metadata: Mapping[str, Any],
    now: datetime,
    *,
    status: str = OPEN,
    conversation_id: str | None = None,
) -> dict[str, Any]:
    active = status in ACTIVE
    return {
        "id": conversation_id or new_id("conv"),
        "project_id": project_id,
        "number_id": number["id"],
        "agent_number": number["number"],
        "user_number": user_number,
        "channel": channel_family(channel),
        "status": status,
        "thread_key": (
            thread_key(project_id, number["number"], user_number, channel) if active else None
        ),
        "agent_paused": False,
        "engaged": False,
        "settings": dict(settings),
        "metadata": dict(metadata),
        "state": {},
        "current_node_id": None,
        "outcome": None,
        "extracted": {},
        "end_reason": None,
        "timer_epoch": None,
        "created_at": now,
        "updated_at": now,
        "ended_at": None if active else now,
    }


def _with_default_persona(
    project_settings: Mapping[str, Any], number: Row, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """A new conversation records the persona it starts with, even a default one, so that
    listing by persona finds it."""
    stored = dict(settings)
    if "persona_id" not in stored:
        persona = effective_settings(project_settings, number.get("settings") or {}, {}).get(
            "persona_id"
        )
        if persona is not None:
            stored["persona_id"] = str(persona)
    return stored


class OutboundThread:
    """What ``attach_outbound`` needs to know about one outbound row: the row, its sender
    number, and the conversation it is aimed at or, else, its thread ``key``."""

    __slots__ = ("conversation_id", "given", "key", "new_conversation", "number", "row")

    def __init__(
        self,
        row: dict[str, Any],
        number: Row,
        conversation_id: str | None = None,
        new_conversation: bool = False,
        given: ConversationInput | None = None,
    ) -> None:
        # Written out (not a dataclass with __post_init__): one made per batch recipient.
        self.row = row
        self.number = number
        self.conversation_id = conversation_id
        self.new_conversation = new_conversation
        self.given = given
        self.key = (
            ""
            if conversation_id
            else thread_key(row["project_id"], number["number"], row["to_number"], row["channel"])
        )


async def attach_outbound(
    conn: AsyncConnection,
    project_id: str,
    project_settings: Mapping[str, Any],
    threads: Sequence[OutboundThread],
    now: datetime,
    *,
    active: Mapping[str, ConversationRecord] | None = None,
) -> list[Attached]:
    """Put each outbound row in its conversation (opening it when needed); in row order.

    Stores the given settings on the conversation (only the keys given replace the stored
    ones) and emits ``conversation.started`` for the conversations it opens. ``active``
    (from ``lookup_outbound``) saves reading the threads' active conversations again.
    """
    by_key: dict[str, ConversationRecord] = {}
    explicit_ids = [t.conversation_id for t in threads if t.conversation_id]
    explicit: dict[str, ConversationRecord] = {}
    for conversation_id in dict.fromkeys(explicit_ids):
        found = await repo.get(conn, project_id, conversation_id)
        if found is None:
            raise NotFound(f"conversation {conversation_id} not found")
        explicit[conversation_id] = found
    keyed = [t for t in threads if not t.conversation_id]
    keys = [t.key for t in keyed]
    if keys:
        if active is None:
            active = await repo.active_by_keys(conn, keys)
        wanted = set(keys)
        by_key = {k: v for k, v in active.items() if k in wanted}
    # new_conversation: the open conversation is archived (ended) and a fresh one started.
    archive = {
        by_key[k].id for k, t in zip(keys, keyed, strict=True) if t.new_conversation and k in by_key
    }
    if archive:
        await end_conversations(
            conn, project_id, sorted(archive), status=ENDED, reason="new_conversation", now=now
        )
        by_key = {k: v for k, v in by_key.items() if v.id not in archive}
    fresh: dict[str, dict[str, Any]] = {}
    opening = [(key, item) for key, item in zip(keys, keyed, strict=True) if key not in by_key]
    ids = iter(new_ids("conv", len(opening)))
    # The sends of one batch share their settings: work each distinct start out once, and
    # their new conversations start as copies of one row.
    starts: dict[tuple[str, int], dict[str, Any]] = {}
    started_from: dict[str, tuple[str, int]] = {}
    for key, item in opening:
        if key in fresh:
            continue
        given = item.given or _NOTHING_GIVEN
        start = (item.number["id"], id(given.settings))
        base = starts.get(start)
        if base is None:
            base = starts[start] = _new_conversation(
                project_id,
                item.number,
                item.row["to_number"],
                item.row["channel"],
                _with_default_persona(project_settings, item.number, given.settings),
                given.metadata or {},
                now,
            )
        started_from[key] = start
        row = fresh[key] = base.copy()
        row["id"] = next(ids)
        row["user_number"] = item.row["to_number"]
        row["thread_key"] = key
    created: set[str] = set()
    if fresh:
        inserted = await repo.insert_new(conn, list(fresh.values()))
        if inserted == len(fresh):
            by_key.update({k: ConversationRecord.from_mapping(v) for k, v in fresh.items()})
            created = {row["id"] for row in fresh.values()}
        else:
            # Read back: a concurrent writer may have opened some of these threads first.
            stored = await repo.active_ids_by_keys(conn, list(fresh))
            for key, row in fresh.items():
                if stored.get(key) == row["id"]:
                    by_key[key] = ConversationRecord.from_mapping(row)
                    created.add(row["id"])
            lost = [k for k, row in fresh.items() if stored.get(k) != row["id"]]
            if lost:
                by_key.update(await repo.active_by_keys(conn, lost))
    # Settings given with a send replace the stored ones of a resumed conversation.
    updates: dict[str, dict[str, Any]] = {}
    results: list[Attached] = []
    # Read-only, and shared by the new conversations that share their start.
    effective: dict[tuple[str, int], dict[str, Any]] = {}
    key_iter = iter(keys)
    for item in threads:
        origin: tuple[str, int] | None = None
        if item.conversation_id:
            conversation = explicit[item.conversation_id]
            is_new = False
        else:
            key = next(key_iter)
            conversation = by_key[key]
            is_new = conversation.id in created
            if is_new:
                origin = started_from[key]
        sent_with = item.given
        if sent_with is not None and not is_new:
            changed = False
            if sent_with.settings:
                conversation = conversation._replace(
                    settings=dict(conversation.settings) | sent_with.settings
                )
                changed = True
            if sent_with.metadata is not None:
                conversation = conversation._replace(
                    metadata=dict(conversation.metadata) | sent_with.metadata
                )
                changed = True
            if changed:
                # The threads that follow in this call see the conversation as updated.
                if item.conversation_id:
                    explicit[item.conversation_id] = conversation
                else:
                    by_key[key] = conversation
                updates[conversation.id] = {
                    "b_id": conversation.id,
                    "settings": conversation.settings,
                    "metadata": conversation.metadata,
                    "updated_at": now,
                }
        item.row["conversation_id"] = conversation.id
        # New conversations with the same start have the same settings: merge them once.
        settings = effective.get(origin) if origin is not None else None
        if settings is None:
            settings = effective_settings(
                project_settings, item.number.get("settings") or {}, conversation.settings
            )
            if origin is not None:
                effective[origin] = settings
        results.append(Attached(conversation, settings, is_new))
    await repo.update_each(conn, list(updates.values()))
    if created:
        # One lookup of the project's endpoints for a whole batch of new conversations, and
        # no payloads built when nobody listens.
        endpoints = await webhooks_repo.active_endpoints(conn, project_id)
        started: dict[str, Event] = {}
        # The new conversations of a batch share their settings: ask each once for a URL.
        hooked = endpoints or any(
            s.get("webhook_url") for s in {id(a.settings): a.settings for a in results}.values()
        )
        for attached in results if hooked else ():
            conversation = attached.conversation
            url = attached.settings.get("webhook_url")
            if attached.created and conversation.id not in started and (endpoints or url):
                started[conversation.id] = Event(
                    "conversation.started",
                    _event_data(conversation, []),
                    url,
                    attached.settings.get("webhook_format"),
                )
        await emit_many(conn, project_id, list(started.values()), endpoints=endpoints)
    return results


async def attach_inbound(
    conn: AsyncConnection,
    project_id: str,
    project_settings: Mapping[str, Any],
    number: Row,
    user_number: str,
    channel: str,
    now: datetime,
    *,
    opted_out: bool,
) -> Attached:
    """The conversation an inbound text joins: the thread's active one, or a new one.

    A text from an opted-out person that finds no active conversation starts one that is
    already ``opted_out``: it is recorded, and no agent ever answers it.
    """
    key = thread_key(project_id, number["number"], user_number, channel)
    found = await repo.active_by_keys(conn, [key])
    created = False
    if key in found:
        conversation = found[key]
    else:
        fresh = _new_conversation(
            project_id,
            number,
            user_number,
            channel,
            _with_default_persona(project_settings, number, {}),
            {},
            now,
            status=OPTED_OUT if opted_out else OPEN,
        )
        await repo.insert_new(conn, [fresh])
        if opted_out:
            # Not active: no thread to share.
            conversation, created = ConversationRecord.from_mapping(fresh), True
        else:
            conversation = (await repo.active_by_keys(conn, [key]))[key]
            created = conversation.id == fresh["id"]
    settings = effective_settings(
        project_settings, number.get("settings") or {}, conversation.settings
    )
    if created:
        await emit(conn, conversation, "conversation.started", settings, with_history=False)
    return Attached(conversation, settings, created)


async def lookup_outbound(
    conn: AsyncConnection, project_id: str, threads: Sequence[OutboundThread]
) -> tuple[dict[str, ConversationRecord], set[str]]:
    """The threads' active conversations, and which of the recipients opted out.

    One query when every recipient already has an active conversation (the usual case of a
    reply or follow-up); one more for the recipients of new threads and explicit
    conversations.
    """
    keys = [t.key for t in threads if not t.conversation_id]
    found = await repo.active_by_keys_with_opt_out(conn, keys) if keys else {}
    active = {key: conversation for key, (conversation, _) in found.items()}
    opted = {conversation.user_number for conversation, out in found.values() if out}
    unknown = [t.row["to_number"] for t in threads if t.conversation_id or t.key not in active]
    if unknown:
        opted |= await optouts_repo.opted_out(conn, project_id, unknown)
    return active, opted


def validate_given(
    given: ConversationInput | None,
    project_settings: Mapping[str, Any],
    prefix: str,
) -> list[FieldError]:
    """Errors in a send's ``conversation`` object that need no database."""
    if given is None:
        return []
    errors: list[FieldError] = []
    policy = given.settings.get("policy")
    if policy is not None and policy not in POLICIES:
        errors.append(
            FieldError(f"{prefix}policy", f"unknown policy; one of {', '.join(POLICIES)}")
        )
    webhook_format = given.settings.get("webhook_format")
    if webhook_format is not None and not webhook_formats.known(str(webhook_format)):
        errors.append(
            FieldError(
                f"{prefix}webhook_format",
                f"unknown format; one of {', '.join(webhook_formats.names())}",
            )
        )
    if "quiet_hours" in given.settings:
        reason = quiet_hours_problem(given.settings["quiet_hours"])
        if reason is not None:
            errors.append(FieldError(f"{prefix}quiet_hours", reason))
    merged = effective_settings(project_settings, {}, given.settings)
    problem = timeout_problem(merged, prefix)
    if problem is not None:
        errors.append(problem)
    return errors


async def end_conversations(
    conn: AsyncConnection,
    project_id: str,
    ids: Sequence[str],
    *,
    status: str,
    reason: str,
    now: datetime,
    outcome: str | None = None,
    extracted: Mapping[str, Any] | None = None,
) -> list[str]:
    """End the active ones of ``ids``: cancel their timers and turns, emit ``ended``."""
    values: dict[str, Any] = {
        "status": status,
        "end_reason": reason,
        "ended_at": now,
        "updated_at": now,
        "timer_epoch": None,
    }
    if outcome is not None:
        values["outcome"] = outcome
    if extracted is not None:
        values["extracted"] = dict(extracted)
    changed = await repo.end_where_active(conn, ids, values)
    await repo.cancel_jobs(conn, (TIMER_JOB, TURN_JOB), changed)
    # An opening the agent was still to write will not be written now.
    dropped = await repo.cancel_openings(
        conn,
        changed,
        {
            "status": "canceled",
            "error_code": "conversation_ended",
            "error_message": "the conversation ended before its agent wrote this message",
            "updated_at": now,
        },
    )
    await events_repo.insert_events(
        conn,
        [
            {
                "id": new_id("evt"),
                "project_id": row["project_id"],
                "message_id": row["id"],
                "type": "message.canceled",
                "status": "canceled",
                "data": {"error_code": "conversation_ended"},
                "created_at": now,
            }
            for row in dropped
        ],
    )
    counts = await repo.message_counts(conn, changed)
    ended = await repo.by_ids(conn, changed) if changed else {}
    for conversation_id in changed:
        row = ended.get(conversation_id)
        if row is not None and row.project_id == project_id:
            await emit(
                conn,
                row,
                "conversation.ended",
                row.settings,
                {
                    "outcome": row.outcome,
                    "extracted": dict(row.extracted or {}),
                    "reason": row.end_reason,
                    "message_count": counts.get(conversation_id, 0),
                },
            )
    return changed


@dataclass(frozen=True, slots=True)
class TimerStart:
    """Activity in a conversation that (re)starts its silence timers."""

    conversation: ConversationRecord
    settings: Mapping[str, Any]
    engaged: bool
    at: float | None = None


async def restart_timers(
    conn: AsyncConnection,
    conversation: ConversationRecord,
    settings: Mapping[str, Any],
    *,
    engaged: bool,
    now: float | None = None,
) -> None:
    """(Re)start the silence timers after activity; nothing to do when none is configured."""
    await restart_timers_many(conn, [TimerStart(conversation, settings, engaged, now)])


def has_timers(settings: Mapping[str, Any]) -> bool:
    """Whether these conversation settings time silence out (a warning, a timeout)."""
    return (
        settings.get("warning_seconds") is not None or settings.get("timeout_seconds") is not None
    )


async def restart_timers_many(conn: AsyncConnection, starts: Sequence[TimerStart]) -> None:
    """``restart_timers`` for many conversations in a few statements (a batch's)."""
    jobs: list[NewJob] = []
    epochs: list[dict[str, Any]] = []
    for start in starts:
        if not has_timers(start.settings):
            continue
        warning = start.settings.get("warning_seconds")
        timeout = start.settings.get("timeout_seconds")
        if start.settings.get("engaged_only") and not start.engaged:
            continue
        epoch = time.time() if start.at is None else start.at
        conversation_id = start.conversation.id
        epochs.append({"b_id": conversation_id, "timer_epoch": epoch})
        jobs.extend(
            NewJob(
                kind=TIMER_JOB,
                ref=conversation_id,
                payload={"stage": stage, "epoch": epoch},
                run_at=epoch + float(seconds),
            )
            for stage, seconds in (("warning", warning), ("timeout", timeout))
            if seconds is not None
        )
    if not epochs:
        return
    await repo.cancel_jobs(conn, (TIMER_JOB,), [e["b_id"] for e in epochs])
    await repo.update_each(conn, epochs)
    await queue.enqueue_many(conn, jobs)


async def get(conn: AsyncConnection, project_id: str, conversation_id: str) -> ConversationRecord:
    row = await repo.get(conn, project_id, conversation_id)
    if row is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return row


async def messages_of(
    conn: AsyncConnection, conversation_id: str, *, limit: int | None = None
) -> list[MessageRecord]:
    """Oldest first (the newest ``limit`` when given)."""
    return await repo.messages_of(conn, conversation_id, limit=limit)


async def message_stats(
    conn: AsyncConnection, conversation_ids: Sequence[str]
) -> dict[str, tuple[int, MessageRecord]]:
    """Per conversation of ``conversation_ids`` with messages: their count and the newest."""
    return await repo.message_stats(conn, conversation_ids)


async def list_conversations(
    conn: AsyncConnection, where: ConversationFilter, limit: int, offset: int = 0
) -> list[ConversationRecord]:
    """Newest first; ``offset`` skips that many (for page-numbered clients)."""
    if where.status is not None and where.status not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}")
    if offset < 0:
        raise invalid("offset", "must be 0 or more")
    return await repo.list_conversations(conn, where, limit, offset)


async def count_conversations(conn: AsyncConnection, where: ConversationFilter) -> int:
    """How many conversations ``where`` matches (ignoring any page)."""
    if where.status is not None and where.status not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}")
    return await repo.count_conversations(conn, where)


async def end(
    conn: AsyncConnection,
    project_id: str,
    conversation_id: str,
    *,
    outcome: str | None = None,
    extracted: Mapping[str, Any] | None = None,
) -> ConversationRecord:
    """End a conversation by request (``ended``, reason ``api``)."""
    await get(conn, project_id, conversation_id)
    await end_conversations(
        conn,
        project_id,
        [conversation_id],
        status=ENDED,
        reason="api",
        now=utcnow(),
        outcome=outcome,
        extracted=extracted,
    )
    return await get(conn, project_id, conversation_id)


async def update(
    conn: AsyncConnection,
    project_id: str,
    conversation_id: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> ConversationRecord:
    """Merge metadata (a ``null`` value removes the key) and settings into a conversation."""
    row = await get(conn, project_id, conversation_id)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if metadata is not None:
        merged = dict(row.metadata) | dict(metadata)
        values["metadata"] = {k: v for k, v in merged.items() if v is not None}
        if (problem := metadata_problem(values["metadata"])) is not None:
            raise invalid("metadata", problem)
    if settings:
        values["settings"] = dict(row.settings) | dict(settings)
    await repo.update_one(conn, conversation_id, values)
    return await get(conn, project_id, conversation_id)


async def set_agent_paused(
    conn: AsyncConnection, project_id: str, conversation_id: str, paused: bool
) -> ConversationRecord:
    """Pause the agent (a human answers) or resume it.

    Resuming hands a ``needs_attention`` conversation back to the agent, which then answers
    the person's last text if it is still unanswered.
    """
    row = await get(conn, project_id, conversation_id)
    if row.status not in ACTIVE:
        raise ValidationFailed(
            f"conversation is {row.status}; only an active one has an agent to "
            + ("pause" if paused else "resume"),
            code="conversation_not_active",
        )
    values: dict[str, Any] = {"agent_paused": paused, "updated_at": utcnow()}
    if not paused:
        values["status"] = OPEN
    await repo.update_one(conn, conversation_id, values)
    if not paused:
        history = await repo.messages_of(conn, conversation_id, limit=1)
        if history and history[-1].direction == "inbound":
            await queue.enqueue(
                conn,
                NewJob(
                    kind=TURN_JOB,
                    ref=conversation_id,
                    payload={"message_id": history[-1].id},
                ),
            )
    return await get(conn, project_id, conversation_id)


def public(row: ConversationRecord) -> dict[str, Any]:
    """The conversation as webhooks and the API show it."""
    settings = dict(row.settings or {})
    return {
        "id": row.id,
        "status": row.status,
        "agent_number": row.agent_number,
        "number_id": row.number_id,
        "user_number": row.user_number,
        "channel": row.channel,
        "persona_id": settings.get("persona_id"),
        "agent_paused": bool(row.agent_paused),
        "metadata": dict(row.metadata or {}),
        "outcome": row.outcome,
        "extracted": dict(row.extracted or {}),
        "end_reason": row.end_reason,
        "current_node_id": row.current_node_id,
        "created_at": _iso(row.created_at),
        "ended_at": _iso(row.ended_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def history_entry(message: MessageRecord) -> dict[str, Any]:
    """A message as a webhook's ``recent_history`` shows it."""
    return {
        "id": message.id,
        "role": "person" if message.direction == "inbound" else "agent",
        "purpose": message.purpose,
        "body": message.body,
        "channel": message.channel,
        "status": message.status,
        "created_at": _iso(message.created_at),
    }


async def webhook_urls(conn: AsyncConnection, conversation_ids: Sequence[str]) -> dict[str, str]:
    """The per-conversation webhook URLs of those conversations that have one (one query)."""
    return await repo.webhook_urls(conn, conversation_ids)


async def webhook_context(conn: AsyncConnection, conversation_id: str) -> dict[str, Any] | None:
    """What webhook payloads carry about a message's conversation (see the contract)."""
    return (await webhook_contexts(conn, [conversation_id])).get(conversation_id)


async def webhook_contexts(
    conn: AsyncConnection, conversation_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """``webhook_context`` of many conversations at once, by id (unknown ids left out): two
    queries per hundred conversations, not two per conversation."""
    contexts, _ = await webhook_contexts_and_messages(conn, conversation_ids)
    return contexts


async def webhook_contexts_and_messages(
    conn: AsyncConnection, conversation_ids: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, MessageRecord]]:
    """``webhook_contexts``, and the messages of their recent histories by id, as stored
    now: a caller that needs some of those messages need not read them again."""
    rows = await repo.by_ids(conn, conversation_ids)
    recent = await repo.recent_messages(conn, list(rows), limit=HISTORY_FOR_WEBHOOKS)
    messages = {m.id: m for history in recent.values() for m in history}
    contexts = {
        conversation_id: {
            "conversation": public(row),
            "recent_history": [history_entry(m) for m in recent.get(conversation_id, [])],
            "webhook_url": (row.settings or {}).get("webhook_url"),
            "webhook_format": (row.settings or {}).get("webhook_format"),
        }
        for conversation_id, row in rows.items()
    }
    return contexts, messages


def _event_data(
    conversation: ConversationRecord, recent: Sequence[MessageRecord]
) -> dict[str, Any]:
    return {
        "conversation": public(conversation),
        "metadata": dict(conversation.metadata or {}),
        "recent_history": [history_entry(m) for m in recent],
    }


async def emit(
    conn: AsyncConnection,
    conversation: ConversationRecord,
    event_type: str,
    settings: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    *,
    with_history: bool = True,
) -> None:
    """Send a ``conversation.*`` event to the project's endpoints and its webhook URL."""
    recent = (
        await repo.messages_of(conn, conversation.id, limit=HISTORY_FOR_WEBHOOKS)
        if with_history
        else []
    )
    data = _event_data(conversation, recent) | dict(extra or {})
    await webhooks.emit(
        conn,
        project_id=conversation.project_id,
        event_type=event_type,
        data=data,
        webhook_url=settings.get("webhook_url"),
        webhook_format=settings.get("webhook_format"),
    )
