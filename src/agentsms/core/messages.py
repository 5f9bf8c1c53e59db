"""Accepting outbound messages: validation, sender choice, pricing, and the durable insert.

``send_message`` and ``send_batch`` validate everything first and raise one
``ValidationFailed`` listing every bad field; only a fully valid request writes anything.
They write the messages, their events and their send jobs on the caller's connection and
never commit: the edge (request or job) owns the transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any, NoReturn
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import purposes
from agentsms.core import (
    compliance,
    contacts,
    conversations,
    personas,
    spend,
    statuses,
    templates,
)
from agentsms.core.conversations import ConversationInput, OutboundThread
from agentsms.core.errors import (
    AgentsmsError,
    Conflict,
    FieldError,
    NotFound,
    ValidationFailed,
    invalid,
)
from agentsms.core.fictional import fictional
from agentsms.core.numbers import SenderPool, default_channel, is_simulated, unreachable
from agentsms.core.phone import InvalidPhoneNumberError, PhoneNumber, parse_phone
from agentsms.core.segments import SegmentInfo, count_segments
from agentsms.core.storable import metadata_problem
from agentsms.core.templates import MissingVariableError, fill
from agentsms.ids import new_id, new_ids
from agentsms.jobs import queue
from agentsms.jobs.queue import NewJob
from agentsms.numeric import MAX_SPACING_SECONDS, MAX_VALIDITY_SECONDS
from agentsms.store.bulk import plan_for_actual_values
from agentsms.store.records import MessageRecord
from agentsms.store.repositories import Row
from agentsms.store.repositories import events as events_repo
from agentsms.store.repositories import messages as repo
from agentsms.store.repositories import numbers as numbers_repo
from agentsms.store.repositories import projects as projects_repo
from agentsms.store.repositories.messages import MessageFilter
from agentsms.store.types import utcnow
from agentsms.webhooks import message_events
from agentsms.webhooks.message_events import Change

UrlProblem = Callable[[str], str | None]
"""Why a media URL can never be fetched (e.g. ``webhooks.url_problem``), or None."""
SEND_JOB = "message.send"
# Why a send without a body (nor media, nor an agent to write it) is refused.
EMPTY_BODY = "must not be empty unless media_urls is given"
DEFAULT_MAX_ATTEMPTS = 8
MAX_BODY_CHARS = 1600
LATEST_SEND_AT = datetime(2100, 1, 1, tzinfo=UTC)
"""The latest time a send is scheduled for."""
MAX_MEDIA = 10
# An iMessage carousel: 2 to 20 images, with no text alongside.
MAX_IMESSAGE_MEDIA = 20
SEND_STYLES = (
    "celebration",
    "fireworks",
    "lasers",
    "love",
    "confetti",
    "balloons",
    "spotlight",
    "echo",
    "invisible",
    "gentle",
    "loud",
    "slam",
)
NO_USER = "this project's contacts"


@dataclass(slots=True)
class OutboundSpec:
    """One outbound message as a caller asked for it."""

    to: str
    body: str | None = None
    from_: str | None = None
    media_urls: Sequence[str] = ()
    channel: str | None = None
    send_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    validity_seconds: int | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    # The body as written, ``{{...}}`` included (for callers whose APIs have no templates).
    literal: bool = False
    conversation: ConversationInput | None = None
    """Settings for the conversation this message opens or resumes."""
    new_conversation: bool = False
    """End the thread's open conversation and start a fresh one."""
    conversation_id: str | None = None
    """Send within this conversation (agent replies, human takeover, timers)."""
    purpose: str | None = None
    """Who writes it besides the API caller (``None``): one of ``purposes.PURPOSES``."""
    template_id: str | None = None
    """A stored template (id or key) whose body ``variables`` fill; no ``body`` then."""
    send_style: str | None = None
    """An iMessage expressive effect (one of ``SEND_STYLES``); iMessage lines only."""
    reply_to_message_id: str | None = None
    """The message (of the same thread) this one answers inline on iMessage."""

    def sent_to(self, to: str) -> OutboundSpec:
        """This send, to ``to``: a batch's shared fields made into one recipient's spec.
        The new spec shares this one's (never modified) mappings and lists."""
        return OutboundSpec(
            to,
            self.body,
            self.from_,
            self.media_urls,
            self.channel,
            self.send_at,
            self.metadata,
            self.external_id,
            self.validity_seconds,
            self.variables,
            self.literal,
            self.conversation,
            self.new_conversation,
            self.conversation_id,
            self.purpose,
            self.template_id,
            self.send_style,
            self.reply_to_message_id,
        )


@dataclass(slots=True)
class BatchSpec:
    """Many outbound messages accepted together, all or nothing."""

    items: Sequence[OutboundSpec]
    spacing_seconds: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch: Row
    message_ids: list[str]
    counts: dict[str, int]


class _Intake:
    """Turns specs into message rows, collecting every error instead of stopping at one."""

    def __init__(
        self,
        project_id: str,
        pool: SenderPool,
        now: datetime,
        *,
        expected: int = 1,
        project_settings: Mapping[str, Any] | None = None,
        url_problem: UrlProblem | None = None,
    ) -> None:
        self.project_id = project_id
        self.contacts = contacts.directory(project_settings or {})
        self.url_problem = url_problem
        self.pool = pool
        self.now = now
        self.errors: list[FieldError] = []
        self._segments: dict[str, SegmentInfo] = {}
        self._contents: dict[tuple[Any, ...], _Content] = {}
        self._templates: dict[tuple[Any, ...], dict[str, Any]] = {}
        # By ``id``: a batch's recipients share their metadata objects.
        self._metadata: dict[int, str | None] = {}
        self._ids = iter(new_ids("msg", expected))
        self.threads: list[OutboundThread] = []
        self.prefixes: list[str] = []
        # Rows sent without a body or media: the conversation's agent writes them.
        self.openings: set[str] = set()

    def error(self, prefix: str, name: str, message: str) -> None:
        self.errors.append(FieldError(f"{prefix}{name}", message))

    def recipient(self, given: str, prefix: str) -> PhoneNumber | None:
        """``given`` as a phone number: an E.164 number, or a username of the project's
        contacts (see ``core.contacts``)."""
        try:
            return parse_phone(given)
        except InvalidPhoneNumberError as error:
            if not contacts.is_username(given):
                self.error(prefix, "to", error.reason)
                return None
            number = self.contacts.get(contacts.key(given))
            if number is None:
                self.error(prefix, "to", f"is neither a phone number nor a username of {NO_USER}")
                return None
            return parse_phone(number)

    def segments(self, body: str) -> SegmentInfo:
        info = self._segments.get(body)
        if info is None:
            info = self._segments[body] = count_segments(body)
        return info

    def content(self, spec: OutboundSpec) -> _Content:
        """The checks and filling that depend on what is sent, not to whom: worked out once
        for the sends of a batch that share them."""
        key = (
            spec.body,
            # Equal when empty; else the same objects (a batch's shared ones).
            id(spec.variables) if spec.variables else 0,
            id(spec.media_urls) if spec.media_urls else 0,
            spec.channel,
            spec.validity_seconds,
            spec.send_style,
            spec.purpose,
            spec.literal,
            bool(spec.conversation_id),
        )
        found = self._contents.get(key)
        if found is None:
            found = self._contents[key] = _check_content(spec, self.url_problem)
        return found

    def build(
        self,
        spec: OutboundSpec,
        prefix: str,
        batch_id: str | None = None,
        send_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        before = len(self.errors)
        test_only = False  # a number reserved for fiction: the simulator's alone
        try:
            to: PhoneNumber | None = parse_phone(spec.to)
        except InvalidPhoneNumberError:
            to = fictional(spec.to)
            test_only = to is not None
            if to is None:
                to = self.recipient(spec.to, prefix)  # a contact's username, or the reason
        content = self.content(spec)
        for name, message in content.problems:
            self.error(prefix, name, message)
        if spec.send_at is not None and spec.send_at > LATEST_SEND_AT:
            self.error(prefix, "send_at", f"must not be after {LATEST_SEND_AT:%Y-%m-%d}")
        given = spec.conversation.metadata if spec.conversation is not None else None
        for name, candidate in (("metadata", spec.metadata), ("conversation.metadata", given)):
            if candidate:
                key = id(candidate)
                if key not in self._metadata:
                    self._metadata[key] = metadata_problem(candidate)
                if (problem := self._metadata[key]) is not None:
                    self.error(prefix, name, problem)
        has_media = bool(content.media)
        number: Row | None = None
        if spec.from_ is not None:
            try:
                number = self.pool.explicit(spec.from_, f"{prefix}from")
            except ValidationFailed as failed:
                self.errors.extend(failed.errors)
            if number is not None and spec.channel and spec.channel not in number["capabilities"]:
                self.error(prefix, "channel", f"{number['number']} cannot send {spec.channel}")
                number = None
            if number is not None and to is not None and test_only and not is_simulated(number):
                self.error(prefix, "to", unreachable(to, number["provider"]))
                number = None
        elif to is not None:
            number = self.pool.choose(to, spec.channel, has_media, simulated_only=test_only)
            if number is None:
                reason = self.pool.no_sender_reason(spec.channel, has_media)
                if test_only and self.pool.can_carry_any(spec.channel, has_media):
                    reason = invalid("to", unreachable(to, "this project's carriers"))
                self.errors.extend(FieldError(prefix + e.field, e.message) for e in reason.errors)
        if len(self.errors) > before or to is None or number is None:
            return None
        template = self._template(content, number, spec, batch_id)
        if spec.send_style is not None and template["channel"] != "imessage":
            self.error(
                prefix,
                "send_style",
                f"is for iMessage only; this message goes by {template['channel']}",
            )
            return None
        row = template.copy()
        row["id"] = next(self._ids, None) or new_id("msg")
        row["to_number"] = row["contact"] = to.e164
        # The batch passes the staggered time; it already starts from the spec's own send_at.
        when = send_at if send_at is not None else spec.send_at
        if when is not None:
            row["send_at"] = when
            if when > self.now:
                row["status"] = statuses.SCHEDULED
        if spec.validity_seconds is not None:
            row["expires_at"] = max(when or self.now, self.now) + timedelta(
                seconds=spec.validity_seconds
            )
        if metadata or spec.metadata:
            row["metadata"] = {**metadata, **spec.metadata} if metadata else dict(spec.metadata)
        if spec.external_id is not None:
            row["external_id"] = spec.external_id
        if spec.reply_to_message_id is not None:
            row["reply_to_message_id"] = spec.reply_to_message_id
        self.threads.append(
            OutboundThread(
                row, number, spec.conversation_id, spec.new_conversation, spec.conversation
            )
        )
        self.prefixes.append(prefix)
        if content.opening:
            self.openings.add(row["id"])
        return row

    def _template(
        self, content: _Content, number: Row, spec: OutboundSpec, batch_id: str | None
    ) -> dict[str, Any]:
        """The row every send of ``content`` from ``number`` starts from."""
        key = (id(content), number["id"], spec.channel, batch_id)
        template = self._templates.get(key)
        if template is not None:
            return template
        channel = spec.channel or default_channel(number["capabilities"], bool(content.media))
        info = self.segments(content.body)
        segments = info.segments if channel == "sms" else 1
        template = self._templates[key] = {
            "id": None,
            "project_id": self.project_id,
            "batch_id": batch_id,
            "conversation_id": None,
            "direction": "outbound",
            "to_number": None,
            "from_number": number["number"],
            "number_id": number["id"],
            "contact": None,
            "body": content.body,
            "media_urls": content.media,
            "channel": channel,
            "status": statuses.QUEUED,
            "segments": segments,
            "encoding": info.encoding,
            "price_estimate": Decimal(number["price_per_segment"]) * segments,
            "price": None,
            "currency": number["currency"],
            "send_at": None,
            "expires_at": None,
            "sent_at": None,
            "delivered_at": None,
            "error_code": None,
            "error_message": None,
            # Shared by the rows of this template that carry no metadata (never modified).
            "metadata": {},
            "external_id": None,
            "provider": number["provider"],
            "provider_message_id": None,
            "in_flight": False,
            "attempts": 0,
            "created_at": self.now,
            "updated_at": self.now,
            # An opening is the agent's to write.
            "purpose": purposes.AGENT if content.opening else spec.purpose or purposes.API,
            "send_style": spec.send_style,
            "reply_to_message_id": None,
            "reply_parent_unresolved": None,
        }
        return template


@dataclass(frozen=True, slots=True)
class _Content:
    """What a send carries, filled and checked: ``problems`` are (field, reason) pairs."""

    body: str
    media: list[str]
    opening: bool
    problems: tuple[tuple[str, str], ...]


def _check_content(spec: OutboundSpec, url_problem: UrlProblem | None) -> _Content:
    problems: list[tuple[str, str]] = []
    body = spec.body or ""
    try:
        # Only a caller's template is filled: an agent's or a person's text is sent as is.
        if spec.purpose is None and not spec.literal:
            body = fill(body, spec.variables)
    except MissingVariableError as missing:
        problems.append(("body", f"missing variable '{missing.name}'"))
    if len(body) > MAX_BODY_CHARS:
        problems.append(("body", f"is {len(body)} characters; the limit is {MAX_BODY_CHARS}"))
    media = list(spec.media_urls)
    opening = not body and not media and spec.purpose is None and not spec.conversation_id
    if not body and not media and not opening:
        problems.append(("body", EMPTY_BODY))
    most = MAX_IMESSAGE_MEDIA if spec.channel == "imessage" else MAX_MEDIA
    if len(media) > most:
        problems.append(("media_urls", f"at most {most} media per message"))
    if spec.channel == "imessage" and len(media) > 1 and body:
        problems.append(("body", "must be empty for an iMessage carousel (2 or more media)"))
    if spec.send_style is not None and spec.send_style not in SEND_STYLES:
        problems.append(("send_style", f"must be one of {', '.join(SEND_STYLES)}"))
    for i, url in enumerate(media):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append((f"media_urls[{i}]", "must be an http or https URL"))
        elif url_problem is not None and (problem := url_problem(url)):
            problems.append((f"media_urls[{i}]", problem))
    if spec.channel == "sms" and media:
        problems.append(("channel", "sms cannot carry media; use mms, whatsapp or imessage"))
    if spec.validity_seconds is not None and not 0 < spec.validity_seconds <= MAX_VALIDITY_SECONDS:
        problems.append(
            ("validity_seconds", f"must be greater than 0 and at most {MAX_VALIDITY_SECONDS}")
        )
    return _Content(body, media, opening, tuple(problems))


async def _pool(
    conn: AsyncConnection, project_id: str, specs: Sequence[OutboundSpec]
) -> SenderPool:
    numbers = await numbers_repo.list_numbers(conn, project_id)
    pool = SenderPool(numbers)
    if pool.needs_sticky_lookup:
        contacts: list[str] = []
        for spec in specs:
            if spec.from_ is None:
                try:
                    contacts.append(parse_phone(spec.to).e164)
                except InvalidPhoneNumberError:
                    continue
        pool.sticky = await numbers_repo.last_numbers_for_contacts(conn, project_id, contacts)
    return pool


def _due(row: Mapping[str, Any]) -> float | None:
    """When a new message's send job runs: its send time, or the end of its validity if
    that comes first (quiet hours deferred it past it), when it is marked expired."""
    send_at, expires_at = row["send_at"], row.get("expires_at")
    if send_at is None:
        return None
    due: datetime = min(send_at, expires_at or send_at)
    return due.timestamp()


async def _store(
    conn: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    max_attempts: int,
    openings: set[str] | frozenset[str] = frozenset(),
) -> None:
    # No event row at intake: the message row itself records its creation, and timelines
    # start from it (see ``timeline``). This halves the writes of a 10,000-recipient batch.
    await repo.insert_messages(conn, rows)
    await queue.enqueue_refs(
        conn,
        SEND_JOB,
        [(row["id"], _due(row)) for row in rows if row["id"] not in openings],
        max_attempts=max_attempts,
    )
    if openings:
        # The agent writes these first; its turn enqueues the send.
        await queue.enqueue_many(
            conn,
            [
                NewJob(
                    kind=conversations.TURN_JOB,
                    ref=row["conversation_id"],
                    payload={"opening_message_id": row["id"]},
                    run_at=row["send_at"].timestamp() if row["send_at"] else None,
                )
                for row in rows
                if row["id"] in openings
            ],
        )
    await message_events.on_accepted(conn, rows)


async def _resolve_replies(
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


async def _project_settings(
    conn: AsyncConnection, project_id: str, given: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    if given is not None:
        return given
    row = await projects_repo.get_project(conn, project_id)
    return {} if row is None else dict(row["settings"] or {})


def _code(error: FieldError) -> str:
    if error.message.endswith(compliance.OPTED_OUT_REASON):
        return compliance.RECIPIENT_OPTED_OUT
    if error.message.startswith(conversations.TIMEOUT_REASON):
        return conversations.INVALID_TIMEOUT_CONFIG
    return "validation_failed"


def _failure(errors: Sequence[FieldError], detail: str | None = None) -> ValidationFailed:
    """The request's errors; the code is the specific one when all errors share it."""
    codes = {_code(e) for e in errors}
    code = codes.pop() if len(codes) == 1 else "validation_failed"
    return ValidationFailed(detail or _summary(errors), errors=list(errors), code=code)


def _raise(errors: Sequence[FieldError], detail: str | None = None) -> NoReturn:
    raise _failure(errors, detail)


async def _converse(
    conn: AsyncConnection,
    project_id: str,
    project_settings: Mapping[str, Any],
    intake: _Intake,
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
            when = row["send_at"] or intake.now
            allowed = compliance.next_allowed(max(when, intake.now), row["to_number"], quiet)
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


async def send_message(
    conn: AsyncConnection,
    project_id: str,
    spec: OutboundSpec,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    project_settings: Mapping[str, Any] | None = None,
    url_problem: UrlProblem | None = None,
) -> MessageRecord:
    """Accept one outbound message: validated, priced, stored and queued.

    ``max_attempts`` bounds its send job's tries (``Settings.job_max_attempts``).
    ``project_settings`` saves a read when the caller has them (the API's cached project).
    """
    (spec,), problems = await templates.resolve(conn, project_id, [spec], [""])
    if problems:
        _raise(problems)
    settings = await _project_settings(conn, project_id, project_settings)
    pool = await _pool(conn, project_id, [spec])
    intake = _Intake(project_id, pool, utcnow(), project_settings=settings, url_problem=url_problem)
    row = intake.build(spec, "")
    if row is None:
        _raise(intake.errors)
    await _converse(conn, project_id, settings, intake, [row], _givens([spec]))
    if intake.errors:
        _raise(intake.errors)
    await spend.charge_intake(conn, project_id, settings, [row], intake.now)
    await _resolve_replies(conn, project_id, [row])
    await _store(conn, [row], max_attempts, intake.openings)
    return MessageRecord.from_mapping(row)


async def send_many(
    conn: AsyncConnection,
    project_id: str,
    specs: Sequence[OutboundSpec],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    project_settings: Mapping[str, Any] | None = None,
    url_problem: UrlProblem | None = None,
) -> list[MessageRecord | AgentsmsError]:
    """Accept independent single sends together, in spec order.

    Each spec is accepted or refused on its own, exactly as ``send_message`` would take it
    alone, but the accepted ones are written with a handful of statements in all (the
    intake of many concurrent API requests that share one transaction). A spec that fails
    validation gets its ``ValidationFailed`` (past the daily cap: ``SpendCapReached``) in
    its place and writes nothing.
    """
    outcomes: list[MessageRecord | AgentsmsError | None] = [None] * len(specs)
    resolved: list[OutboundSpec] = []
    for index, spec in enumerate(specs):
        if spec.template_id is not None:
            (spec,), problems = await templates.resolve(conn, project_id, [spec], [""])
            if problems:
                outcomes[index] = _failure(problems)
        resolved.append(spec)
    settings = await _project_settings(conn, project_id, project_settings)
    pool = await _pool(conn, project_id, resolved)
    intake = _Intake(
        project_id,
        pool,
        utcnow(),
        expected=len(resolved),
        project_settings=settings,
        url_problem=url_problem,
    )
    rows: list[dict[str, Any]] = []
    owners: list[int] = []
    for index, spec in enumerate(resolved):
        if outcomes[index] is not None:
            continue
        row = intake.build(spec, "")
        if row is None:
            outcomes[index] = _failure(intake.errors)
            intake.errors.clear()
            continue
        rows.append(row)
        owners.append(index)
    if rows:
        givens = [(given, "conversation.") for given, _ in _givens([resolved[i] for i in owners])]
        try:
            async with conn.begin_nested():
                await _converse(conn, project_id, settings, intake, rows, givens)
                if intake.errors:
                    raise _Separate
                try:
                    await spend.charge_intake(conn, project_id, settings, rows, intake.now)
                except spend.SpendCapReached:
                    # Not all fit under the cap: which do, the sends taken in order say.
                    raise _Separate from None
                await _resolve_replies(conn, project_id, rows)
                await _store(conn, rows, max_attempts, intake.openings)
            for index, row in zip(owners, rows, strict=True):
                outcomes[index] = MessageRecord.from_mapping(row)
        except _Separate:
            # Some conversation-side check or the daily cap failed: whose it is, only a send
            # alone can say. Each goes as it was asked (send_message resolves its template
            # itself).
            for index in owners:
                try:
                    async with conn.begin_nested():
                        outcomes[index] = await send_message(
                            conn,
                            project_id,
                            specs[index],
                            max_attempts=max_attempts,
                            project_settings=settings,
                            url_problem=url_problem,
                        )
                except (ValidationFailed, spend.SpendCapReached) as failed:
                    outcomes[index] = failed
    accepted: list[MessageRecord | AgentsmsError] = []
    for outcome in outcomes:
        assert outcome is not None, "every spec has an outcome"
        accepted.append(outcome)
    return accepted


class _Separate(Exception):
    """A group of sends must be taken one by one to tell whose errors are whose."""


async def send_batch(
    conn: AsyncConnection,
    project_id: str,
    spec: BatchSpec,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    project_settings: Mapping[str, Any] | None = None,
    url_problem: UrlProblem | None = None,
) -> BatchResult:
    """Accept many outbound messages at once; any invalid item rejects the whole batch."""
    if not spec.items:
        raise ValidationFailed(
            "recipients: must not be empty",
            errors=[FieldError("recipients", "must not be empty")],
        )
    if spec.spacing_seconds is not None and not 0 <= spec.spacing_seconds <= MAX_SPACING_SECONDS:
        raise invalid("spacing_seconds", f"must be from 0 to {MAX_SPACING_SECONDS}")
    if (problem := metadata_problem(spec.metadata)) is not None:
        raise invalid("metadata", problem)
    await plan_for_actual_values(conn)
    if any(item.template_id is not None for item in spec.items):
        items, problems = await templates.resolve(
            conn, project_id, spec.items, [f"recipients[{i}]." for i in range(len(spec.items))]
        )
        if problems:
            _raise(problems)
        spec = replace(spec, items=items)
    now = utcnow()
    settings = await _project_settings(conn, project_id, project_settings)
    pool = await _pool(conn, project_id, spec.items)
    intake = _Intake(
        project_id,
        pool,
        now,
        expected=len(spec.items),
        project_settings=settings,
        url_problem=url_problem,
    )
    batch_id = new_id("batch")
    rows: list[dict[str, Any]] = []
    spacing = spec.spacing_seconds or 0.0
    build = intake.build
    for index, item in enumerate(spec.items):
        base = item.send_at
        if spacing and (base is None or base <= LATEST_SEND_AT):
            base = (base or now) + timedelta(seconds=spacing * index)
        row = build(item, f"recipients[{index}].", batch_id, base, spec.metadata)
        if row is not None:
            rows.append(row)
    if not intake.errors:
        await _converse(conn, project_id, settings, intake, rows, _givens(spec.items))
    if intake.errors:
        bad = sorted({_index(e.field) for e in intake.errors if e.field.startswith("recipients[")})
        _raise(
            intake.errors,
            f"{len(bad)} of {len(spec.items)} recipients are invalid: indexes "
            + ", ".join(str(i) for i in bad[:50])
            + (" …" if len(bad) > 50 else "")
            if bad
            else None,
        )
    await spend.charge_intake(conn, project_id, settings, rows, now)
    batch = {
        "id": batch_id,
        "project_id": project_id,
        "total": len(rows),
        "metadata": dict(spec.metadata),
        "created_at": now,
    }
    await repo.insert_batch(conn, batch)
    await _resolve_replies(conn, project_id, rows)
    await _store(conn, rows, max_attempts, intake.openings)
    counts = dict(Counter(map(itemgetter("status"), rows)))
    return BatchResult(batch=batch, message_ids=[row["id"] for row in rows], counts=counts)


def _givens(items: Sequence[OutboundSpec]) -> list[tuple[ConversationInput, str]]:
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


def _index(field_path: str) -> int:
    return int(field_path.split("]", 1)[0].removeprefix("recipients["))


def _summary(errors: Sequence[FieldError]) -> str:
    return "; ".join(f"{e.field}: {e.message}" for e in errors)


async def get_message(conn: AsyncConnection, project_id: str, message_id: str) -> MessageRecord:
    row = await repo.get_message(conn, project_id, message_id)
    if row is None:
        raise NotFound(f"message {message_id} not found")
    return row


async def list_messages(
    conn: AsyncConnection, where: MessageFilter, limit: int, offset: int = 0
) -> list[MessageRecord]:
    """The messages ``where`` selects, newest first, skipping ``offset`` of them."""
    return await repo.list_messages(conn, where, limit, offset)


async def get_batch(
    conn: AsyncConnection, project_id: str, batch_id: str
) -> tuple[Row, dict[str, int]]:
    row = await repo.get_batch(conn, project_id, batch_id)
    if row is None:
        raise NotFound(f"batch {batch_id} not found")
    return row, await repo.batch_status_counts(conn, batch_id)


async def cancel_message(conn: AsyncConnection, project_id: str, message_id: str) -> MessageRecord:
    """Cancel a message that has not started sending; ``Conflict`` once it has."""
    row = await get_message(conn, project_id, message_id)
    now = utcnow()
    changed = await repo.set_status_where(
        conn,
        [message_id],
        from_statuses=statuses.CANCELABLE,
        values={"status": statuses.CANCELED, "updated_at": now},
    )
    if not changed:
        raise Conflict(
            f"message is {row.status}; only scheduled or queued messages can be canceled",
            code="not_cancelable",
        )
    await queue.cancel_by_ref(conn, SEND_JOB, message_id)
    await record_events(conn, [(row, statuses.CANCELED, {})], now)
    return await get_message(conn, project_id, message_id)


async def record_events(
    conn: AsyncConnection,
    changes: Sequence[Change],
    now: datetime,
) -> None:
    """Append ``message.<status>`` events for (message, new status, data) triples."""
    await events_repo.insert_events(
        conn,
        [
            {
                "id": event_id,
                "project_id": row.project_id,
                "message_id": row.id,
                "type": f"message.{status}",
                "status": status,
                "data": dict(data),
                "created_at": now,
            }
            for event_id, (row, status, data) in zip(
                new_ids("evt", len(changes)), changes, strict=True
            )
        ],
    )
    await message_events.on_status_changes(conn, changes)


async def timeline(conn: AsyncConnection, project_id: str, message_id: str) -> list[dict[str, Any]]:
    """A message's status changes, oldest first, starting with its acceptance."""
    first = acceptance_event(await get_message(conn, project_id, message_id))
    later = [dict(event) for event in await events_repo.events_for_message(conn, message_id)]
    return [first, *(event for event in later if event["status"] != first["status"])]


def acceptance_event(row: MessageRecord) -> dict[str, Any]:
    """A message's first event, made from its row (intake stores no event row for an
    outbound message): ``received``, ``scheduled`` or ``queued``, with ``seq`` 0."""
    accepted = (
        statuses.RECEIVED
        if row.direction == "inbound"
        else (
            statuses.SCHEDULED
            if row.send_at is not None and row.send_at > row.created_at
            else statuses.QUEUED
        )
    )
    return {
        "id": f"evt_{row.id.removeprefix('msg_')}",
        "seq": 0,
        "type": f"message.{accepted}",
        "message_id": row.id,
        "project_id": row.project_id,
        "status": accepted,
        "data": {},
        "created_at": row.created_at,
    }


async def list_batches(
    conn: AsyncConnection, project_id: str, *, before_id: str | None = None, limit: int = 50
) -> list[tuple[Row, dict[str, int]]]:
    """The project's batches, newest first, each with its counts per status."""
    rows = await repo.list_batches(conn, project_id, before_id=before_id, limit=limit)
    counts = await repo.batches_status_counts(conn, [row["id"] for row in rows])
    return [(row, counts[row["id"]]) for row in rows]


async def batches_by_ids(
    conn: AsyncConnection, project_id: str, batch_ids: Sequence[str]
) -> list[tuple[Row, dict[str, int]]]:
    """The project's batches among ``batch_ids``, each with its counts per status."""
    rows = await repo.get_batches(conn, project_id, batch_ids)
    counts = await repo.batches_status_counts(conn, [row["id"] for row in rows])
    return [(row, counts[row["id"]]) for row in rows]


async def cancel_batch(conn: AsyncConnection, project_id: str, batch_id: str) -> int:
    """Cancel every message of the batch that has not started sending; how many were."""
    await get_batch(conn, project_id, batch_id)
    pending = await repo.batch_ids_with_status(conn, batch_id, statuses.CANCELABLE)
    now = utcnow()
    changed = await repo.set_status_where(
        conn,
        pending,
        from_statuses=statuses.CANCELABLE,
        values={"status": statuses.CANCELED, "updated_at": now},
    )
    for message_id in changed:
        await queue.cancel_by_ref(conn, SEND_JOB, message_id)
    rows = await repo.messages_by_ids(conn, changed)
    await record_events(conn, [(rows[i], statuses.CANCELED, {}) for i in changed], now)
    return len(changed)


@dataclass(frozen=True, slots=True)
class Checked:
    """What ``check`` found for one spec: the message it would send, or why not."""

    message: Row | None
    errors: list[FieldError]


async def check(
    conn: AsyncConnection, project_id: str, specs: Sequence[OutboundSpec]
) -> list[Checked]:
    """Validate, fill and price each spec exactly as a send would, writing nothing.

    Field names in each ``errors`` are the spec's own (``to``, ``body``, ...). A sender chosen
    from the pool here may differ from the one a real send picks when several qualify.
    """
    pool = await _pool(conn, project_id, specs)
    intake = _Intake(project_id, pool, utcnow(), expected=len(specs))
    found: list[Checked] = []
    for spec in specs:
        before = len(intake.errors)
        row = intake.build(spec, "")
        found.append(Checked(row, intake.errors[before:]))
    return found


async def get_messages(
    conn: AsyncConnection, project_id: str, message_ids: Sequence[str]
) -> dict[str, MessageRecord]:
    """The project's messages among ``message_ids`` (others are left out), by id."""
    found = await repo.messages_by_ids(conn, message_ids)
    return {i: row for i, row in found.items() if row.project_id == project_id}
