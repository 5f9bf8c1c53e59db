"""Reply generation: one :class:`Agent` interface, three kinds (flow, llm, webhook).

A persona version carries an *agent config*, a JSON object whose ``kind`` picks the
agent:

- ``{"kind": "flow", "pathway": {...}}``: a deterministic pathway (see
  :mod:`agentsms.agents.pathway`), the built-in default that works offline;
- ``{"kind": "llm", "model": ..., "base_url": ..., ...}``: any OpenAI-compatible
  chat-completions endpoint (see :mod:`agentsms.agents.llm`), reached only through the
  guarded transport and with the keys of the :class:`LlmAccess` the caller gives;
- ``{"kind": "webhook", "url": ..., "secret": ...}``: the customer's own agent behind
  a signed POST (see :mod:`agentsms.agents.webhook_agent`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from agentsms.agents import config as _config
from agentsms.agents import pathway as _pathway
from agentsms.agents.base import (
    Agent,
    AgentFailed,
    AgentInput,
    AgentOutput,
    Ending,
    HistoryEntry,
    LlmAccess,
)
from agentsms.agents.config import without_secrets
from agentsms.agents.pathway import load_demo_pathway, load_pathway_text
from agentsms.errors import invalid

__all__ = [
    "Agent",
    "AgentFailed",
    "AgentInput",
    "AgentOutput",
    "Ending",
    "HistoryEntry",
    "LlmAccess",
    "build_agent",
    "check_start_node",
    "load_demo_pathway",
    "load_pathway_text",
    "validate_agent_config",
    "warm_up",
    "without_secrets",
]


def validate_agent_config(config: Mapping[str, Any]) -> None:
    """Check an agent config on upload.

    Raises :class:`agentsms.errors.ValidationFailed` listing every problem, each
    with a field path under ``agent`` (e.g. ``agent.pathway.nodes.confirm.next``).
    """
    _parse(config)


def _parse(raw: Mapping[str, Any]) -> _config.AgentConfig:
    """The config validated by kind, and a flow agent's pathway with it."""
    parsed = _config.parse_agent_config(raw)
    if isinstance(parsed, _config.FlowAgentConfig):
        _pathway.parse_pathway(parsed.pathway, "agent.pathway")
    return parsed


def build_agent(
    config: Mapping[str, Any],
    *,
    http: httpx.AsyncClient | None = None,
    llm: LlmAccess | None = None,
) -> Agent:
    """The agent for a (validated) agent config.

    ``http`` is the client used for outbound calls to customer URLs (webhook agents and
    pathway webhook nodes); pass the SSRF-safe client in production. Without it a plain
    client is used, which is only right for tests and local development. ``llm`` is how
    LLM agents (and pathway llm nodes) reach their servers; without it they fail.
    """
    # Each kind's module is loaded when an agent of that kind is first built (the LLM
    # agent's loads the OpenAI SDK).
    pathway = _known_pathway(config)
    if pathway is None:
        parsed = _parse(config)
        if isinstance(parsed, _config.LlmAgentConfig):
            from agentsms.agents.llm import LlmAgent

            return LlmAgent(parsed, llm)
        if not isinstance(parsed, _config.FlowAgentConfig):
            from agentsms.agents.webhook_agent import WebhookAgent

            return WebhookAgent(parsed, http=http)
        pathway = _pathway.parse_pathway(parsed.pathway)
        _remember_pathway(config, pathway)
    from agentsms.agents.flow import FlowAgent

    return FlowAgent(pathway, http=http, llm=llm)


_PATHWAYS: OrderedDict[str, _pathway.Pathway] = OrderedDict()
"""Flow agents' validated pathways by config: a conversation's every turn builds its agent,
and validating a pathway (twice: the config, then the pathway) cost more than its turn."""
_PATHWAYS_KEPT = 64


def _config_key(config: Mapping[str, Any]) -> str | None:
    if config.get("kind") != "flow":
        return None
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None  # not plain JSON: not remembered


def _known_pathway(config: Mapping[str, Any]) -> _pathway.Pathway | None:
    key = _config_key(config)
    pathway = None if key is None else _PATHWAYS.get(key)
    if pathway is not None:
        _PATHWAYS.move_to_end(key)  # type: ignore[arg-type]
    return pathway


def _remember_pathway(config: Mapping[str, Any], pathway: _pathway.Pathway) -> None:
    """Keep ``pathway`` (read only once built: ``FlowAgent`` never changes it) for ``config``."""
    key = _config_key(config)
    if key is None:
        return
    _PATHWAYS[key] = pathway
    while len(_PATHWAYS) > _PATHWAYS_KEPT:
        _PATHWAYS.popitem(last=False)


def warm_up() -> None:
    """Load the flow agent and read one date with the reply understanding: the imports,
    locale tables and regular expressions that a process's first conversation reply
    otherwise loads on its event loop (about 2 s of CPU, dateparser's mostly). For a worker
    process before its event loop starts."""
    from agentsms.agents.datetimes import find_datetime
    from agentsms.agents.flow import FlowAgent  # noqa: F401 (loaded for its imports)

    find_datetime("Can we do Thursday at 3pm instead?", datetime.now(UTC), ZoneInfo("UTC"))


def check_start_node(
    config: Mapping[str, Any], start_node_id: str | None, field: str = "start_node_id"
) -> None:
    """Reject (422) a ``start_node_id`` that names no node of a flow agent's pathway.

    Only flow agents have nodes: for other kinds a ``start_node_id`` is refused too.
    """
    if start_node_id is None:
        return
    parsed = _parse(config)
    if not isinstance(parsed, _config.FlowAgentConfig):
        raise invalid(field, f"only flow agents have nodes (this agent is {parsed.kind!r})")
    nodes = _pathway.parse_pathway(parsed.pathway).nodes
    if start_node_id not in nodes:
        raise invalid(field, f"unknown node {start_node_id!r}; the pathway has {', '.join(nodes)}")
