"""Reply generation: one :class:`Agent` interface, three kinds (flow, llm, webhook).

A persona version carries an *agent config*, a JSON object whose ``kind`` picks the
agent:

- ``{"kind": "flow", "pathway": {...}}``: a deterministic pathway (see
  :mod:`agentsms.agents.pathway`), the built-in default that works offline;
- ``{"kind": "llm", "model": ..., "base_url": ..., "api_key_env": ..., ...}``: any
  OpenAI-compatible chat-completions endpoint (see :mod:`agentsms.agents.llm`);
- ``{"kind": "webhook", "url": ..., "secret": ...}``: the customer's own agent behind
  a signed POST (see :mod:`agentsms.agents.webhook_agent`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from agentsms.agents.base import (
    Agent,
    AgentFailed,
    AgentInput,
    AgentOutput,
    Ending,
    HistoryEntry,
)
from agentsms.agents.config import parse_agent_config
from agentsms.agents.pathway import load_demo_pathway

__all__ = [
    "Agent",
    "AgentFailed",
    "AgentInput",
    "AgentOutput",
    "Ending",
    "HistoryEntry",
    "build_agent",
    "load_demo_pathway",
    "validate_agent_config",
]


def validate_agent_config(config: Mapping[str, Any]) -> None:
    """Check an agent config on upload.

    Raises :class:`agentsms.core.errors.ValidationFailed` listing every problem, each
    with a field path under ``agent`` (e.g. ``agent.pathway.nodes.confirm.next``).
    """
    parse_agent_config(config)


def build_agent(config: Mapping[str, Any], *, http: httpx.AsyncClient | None = None) -> Agent:
    """The agent for a (validated) agent config.

    ``http`` is the client used for outbound calls to customer URLs (webhook agents and
    pathway webhook nodes); pass the SSRF-safe client in production. Without it a plain
    client is used, which is only right for tests and local development.
    """
    return parse_agent_config(config).build(http=http)
