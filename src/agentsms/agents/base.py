"""The one interface every agent kind implements, and the values it exchanges.

The caller (the conversations service, running an agent turn job) builds an
:class:`AgentInput` from the conversation, calls :meth:`Agent.respond`, sends the
returned replies, persists :attr:`AgentOutput.state` and ends the conversation when
:attr:`AgentOutput.ending` is set. Agents never touch the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx

Role = Literal["agent", "person"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One text of the conversation: ``agent`` is our outbound text, ``person`` an inbound one."""

    role: Role
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LlmAccess:
    """How LLM agents reach their servers, given by the caller (never by a persona).

    ``transport(seconds)`` is the SSRF-guarded httpx transport every LLM request goes
    through (one request capped at ``seconds``). The operator's key goes only to the
    operator's own server (``operator_base_url``, used when a persona names no
    ``base_url``); a persona's own ``base_url`` gets only its project's stored key.
    """

    transport: Callable[[float], httpx.AsyncBaseTransport]
    operator_base_url: str
    operator_api_key: str | None = None
    project_api_key: str | None = None

    def endpoint(self, base_url: str | None) -> tuple[str, str | None]:
        """The base URL to call for a persona's ``base_url`` and the key to send (or None)."""
        operator = self.operator_base_url.rstrip("/")
        if base_url is None or base_url.rstrip("/") == operator:
            return operator, self.project_api_key or self.operator_api_key
        return base_url, self.project_api_key


@dataclass(frozen=True, slots=True)
class AgentInput:
    """Everything an agent sees for one turn."""

    conversation_id: str
    history: Sequence[HistoryEntry]
    """Oldest first; the outbound greeting is included."""
    context: str | None
    task_context: str | None
    metadata: Mapping[str, Any]
    state: Mapping[str, Any]
    """Agent-owned, persisted by the caller; ``{}`` at the start."""
    dispositions: Sequence[str]
    """Allowed outcomes (empty = any)."""
    extraction_schemas: Sequence[Mapping[str, Any]]
    """JSON-schema extraction definitions."""
    start_node_id: str | None = None
    person_number: str | None = None
    """The person's phone number (E.164): their time zone when no ``timezone`` is given."""
    contact_timezone: str | None = None
    """The ``timezone`` of the project's contact for ``person_number``: before any other
    (see :mod:`agentsms.timezones`)."""

    @property
    def last_person_text(self) -> str | None:
        """The newest inbound text, or ``None`` when the person has not written yet."""
        for entry in reversed(self.history):
            if entry.role == "person":
                return entry.text
        return None


@dataclass(frozen=True, slots=True)
class Ending:
    """How a conversation ended: an outcome (disposition) and the extracted fields."""

    outcome: str
    extracted: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AgentOutput:
    """What an agent answers for one turn."""

    replies: Sequence[str]
    """Texts to send, in order (may be empty)."""
    state: Mapping[str, Any]
    """New state to persist."""
    ending: Ending | None = None
    """End the conversation after sending the replies."""
    current_node_id: str | None = None
    """For flow agents: the node the conversation waits in (shown in the dashboard)."""


class AgentFailed(Exception):
    """The agent could not answer (LLM or webhook failed).

    The caller retries when ``retryable`` is true and then hands the conversation to a
    human (status ``needs_attention``); when false it hands over at once.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Agent(Protocol):
    """One agent kind (flow, llm, webhook)."""

    async def respond(self, turn: AgentInput) -> AgentOutput:
        """Answer one turn. When ``turn.history`` has no person entry, write the opening."""
        ...
