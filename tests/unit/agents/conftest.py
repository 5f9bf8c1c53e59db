"""Fixtures for agent tests: a driver that plays the conversations service, local servers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.fakes.chat_completions import FakeChatCompletions

from agentsms.agents import Agent, AgentInput, AgentOutput, HistoryEntry, LlmAccess
from agentsms.config import Settings
from agentsms.core import llm_credentials

T0 = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # a Sunday


class Chat:
    """Drives an agent turn by turn the way the caller does: history + persisted state.

    The state goes through JSON between turns, as it does through the database.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        metadata: Mapping[str, Any] | None = None,
        dispositions: Sequence[str] = (),
        extraction_schemas: Sequence[Mapping[str, Any]] = (),
        context: str | None = None,
        task_context: str | None = None,
        start_node_id: str | None = None,
        person_number: str | None = None,
    ) -> None:
        self.agent = agent
        self.person_number = person_number
        self.metadata = dict(metadata or {})
        self.dispositions = list(dispositions)
        self.extraction_schemas = list(extraction_schemas)
        self.context = context
        self.task_context = task_context
        self.start_node_id = start_node_id
        self.history: list[HistoryEntry] = []
        self.state: dict[str, Any] = {}
        self.last: AgentOutput | None = None

    def _at(self) -> datetime:
        return T0 + timedelta(minutes=len(self.history))

    def turn_input(self) -> AgentInput:
        return AgentInput(
            conversation_id="conv_test",
            history=list(self.history),
            context=self.context,
            task_context=self.task_context,
            metadata=self.metadata,
            state=self.state,
            dispositions=self.dispositions,
            extraction_schemas=self.extraction_schemas,
            start_node_id=self.start_node_id,
            person_number=self.person_number,
        )

    async def _respond(self) -> AgentOutput:
        output = await self.agent.respond(self.turn_input())
        self.state = json.loads(json.dumps(output.state))
        for text in output.replies:
            self.history.append(HistoryEntry("agent", text, self._at()))
        self.last = output
        return output

    async def open(self) -> AgentOutput:
        """The agent writes the first message."""
        return await self._respond()

    def greeting(self, text: str) -> None:
        """An outbound text the caller sent itself (a send with a body)."""
        self.history.append(HistoryEntry("agent", text, self._at()))

    async def say(self, text: str) -> AgentOutput:
        """The person texts; the agent answers."""
        self.history.append(HistoryEntry("person", text, self._at()))
        return await self._respond()


@pytest.fixture(scope="session")
def chat_server_session() -> Iterator[FakeChatCompletions]:
    server = FakeChatCompletions().start()
    yield server
    server.stop()


@pytest.fixture
def chat_server(chat_server_session: FakeChatCompletions) -> Iterator[FakeChatCompletions]:
    """The local chat-completions server, emptied."""
    chat_server_session.reset()
    yield chat_server_session
    chat_server_session.reset()


TRUSTS_LOOPBACK = Settings(trusted_private_hosts="127.0.0.1")
"""The operator lets agents reach 127.0.0.1, where the local test servers listen."""


@pytest.fixture
def llm_access(chat_server: FakeChatCompletions) -> LlmAccess:
    """LLM access through the SSRF guard (trusting 127.0.0.1), with the server's key as the
    project's stored key."""
    return llm_credentials.llm_access(TRUSTS_LOOPBACK, chat_server.api_key)


@pytest.fixture
def llm_config(chat_server: FakeChatCompletions) -> dict[str, Any]:
    return {
        "kind": "llm",
        "base_url": chat_server.base_url,
        "model": "test-model",
        "system_prompt": "You are Riley, the front desk of Bright Smile Dental.",
        "temperature": 0.2,
    }
