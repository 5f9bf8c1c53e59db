"""Intake validation: specs turned into message rows, every problem collected as a
``FieldError`` instead of stopping at the first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn
from urllib.parse import urlsplit

from agentsms import purposes
from agentsms.core import compliance, contacts, conversations, statuses
from agentsms.core.conversations import OutboundThread
from agentsms.core.fictional import fictional
from agentsms.core.numbers import SenderPool, default_channel, is_simulated, unreachable
from agentsms.core.phone import InvalidPhoneNumberError, PhoneNumber, parse_phone
from agentsms.core.segments import SegmentInfo, count_segments
from agentsms.core.sending.specs import (
    EMPTY_BODY,
    LATEST_SEND_AT,
    MAX_BODY_CHARS,
    MAX_IMESSAGE_MEDIA,
    MAX_MEDIA,
    SEND_STYLES,
    OutboundSpec,
    UrlProblem,
)
from agentsms.core.storable import metadata_problem
from agentsms.core.templates import MissingVariableError, fill
from agentsms.errors import FieldError, ValidationFailed, invalid
from agentsms.ids import new_id, new_ids
from agentsms.numeric import MAX_VALIDITY_SECONDS
from agentsms.store.repositories import Row

NO_USER = "this project's contacts"


class Intake:
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
        self._contents: dict[tuple[Any, ...], Content] = {}
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

    def content(self, spec: OutboundSpec) -> Content:
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
            found = self._contents[key] = check_content(spec, self.url_problem)
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
        self, content: Content, number: Row, spec: OutboundSpec, batch_id: str | None
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
class Content:
    """What a send carries, filled and checked: ``problems`` are (field, reason) pairs."""

    body: str
    media: list[str]
    opening: bool
    problems: tuple[tuple[str, str], ...]


def check_content(spec: OutboundSpec, url_problem: UrlProblem | None) -> Content:
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
    return Content(body, media, opening, tuple(problems))


def _code(error: FieldError) -> str:
    if error.message.endswith(compliance.OPTED_OUT_REASON):
        return compliance.RECIPIENT_OPTED_OUT
    if error.message.startswith(conversations.TIMEOUT_REASON):
        return conversations.INVALID_TIMEOUT_CONFIG
    return "validation_failed"


def failure(errors: Sequence[FieldError], detail: str | None = None) -> ValidationFailed:
    """The request's errors; the code is the specific one when all errors share it."""
    codes = {_code(e) for e in errors}
    code = codes.pop() if len(codes) == 1 else "validation_failed"
    return ValidationFailed(detail or _summary(errors), errors=list(errors), code=code)


def raise_failure(errors: Sequence[FieldError], detail: str | None = None) -> NoReturn:
    raise failure(errors, detail)


def _summary(errors: Sequence[FieldError]) -> str:
    return "; ".join(f"{e.field}: {e.message}" for e in errors)
