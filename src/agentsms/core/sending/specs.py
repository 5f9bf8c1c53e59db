"""What a caller asks to send: one message (``OutboundSpec``), many at once (``BatchSpec``),
and the limits every send is held to."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentsms.core.conversations import ConversationInput
from agentsms.store.repositories import Row

UrlProblem = Callable[[str], str | None]
"""Why a media URL can never be fetched (e.g. ``core.media.media_url_problem``), or None."""
SEND_JOB = "message.send"
# Why a send without a body (nor media, nor an agent to write it) is refused.
EMPTY_BODY = "must not be empty unless media_urls is given"
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
    """An accepted batch: its row, its messages' ids in item order, and counts per status."""

    batch: Row
    message_ids: list[str]
    counts: dict[str, int]
