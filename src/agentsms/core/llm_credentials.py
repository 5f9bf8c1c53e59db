"""A project's own LLM credentials, and how its LLM agents reach their servers.

A project stores one API key for its LLM personas (``PUT /v1/llm-credentials``), sealed
like carrier credentials (:mod:`agentsms.core.credentials`) and write-only: reads say
whether one is set and show its last four characters, never the key. The key is sent to
whatever server the project's personas name (``base_url``). The operator's key
(``AGENTSMS_LLM_API_KEY`` or ``OPENAI_API_KEY``) only ever goes to the operator's own
server (``AGENTSMS_LLM_BASE_URL``); a tenant never names a server environment variable.
Every LLM request goes through the SSRF guard (:func:`agentsms.webhooks.ssrf.guarded_transport`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.agents import LlmAccess
from agentsms.config import Settings
from agentsms.core.credentials import credential_box
from agentsms.errors import invalid
from agentsms.store.repositories import llm_credentials as repo
from agentsms.store.types import utcnow
from agentsms.webhooks.ssrf import guarded_transport

MAX_KEY_CHARS = 1000
_SEALED = "api_key"


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What a read may show of a project's LLM key."""

    api_key_set: bool
    hint: str | None = None
    """``…`` and the key's last four characters."""
    updated_at: datetime | None = None


def _hint(api_key: str) -> str:
    return "…" + api_key[-4:] if len(api_key) >= 12 else "…"


async def set_key(
    conn: AsyncConnection, project_id: str, api_key: str, settings: Settings
) -> KeyStatus:
    """Store (or replace) the project's LLM API key, encrypted."""
    key = api_key.strip()
    if not key:
        raise invalid("api_key", "must not be empty")
    if len(key) > MAX_KEY_CHARS:
        raise invalid("api_key", f"must be at most {MAX_KEY_CHARS} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise invalid("api_key", "must not contain spaces or control characters")
    now = utcnow()
    sealed = credential_box(settings).seal({_SEALED: key})
    await repo.put(
        conn, {"project_id": project_id, "api_key": sealed, "hint": _hint(key), "updated_at": now}
    )
    return KeyStatus(True, _hint(key), now)


async def key_status(conn: AsyncConnection, project_id: str) -> KeyStatus:
    """Whether the project has a key (and its hint); never the key."""
    row = await repo.get(conn, project_id)
    if row is None:
        return KeyStatus(False)
    return KeyStatus(True, row["hint"], row["updated_at"])


async def remove_key(conn: AsyncConnection, project_id: str) -> KeyStatus:
    """Forget the project's key."""
    await repo.remove(conn, project_id)
    return KeyStatus(False)


async def project_key(conn: AsyncConnection, project_id: str, settings: Settings) -> str | None:
    """The project's decrypted key, for its LLM agents only."""
    row = await repo.get(conn, project_id)
    if row is None:
        return None
    return credential_box(settings).open(row["api_key"])[_SEALED]


def uses_llm(config: Mapping[str, Any]) -> bool:
    """Whether an agent config calls an LLM (an ``llm`` agent, or a pathway's llm node)."""
    if config.get("kind") == "llm":
        return True
    pathway = config.get("pathway")
    nodes = pathway.get("nodes") if isinstance(pathway, Mapping) else None
    items = nodes.values() if isinstance(nodes, Mapping) else nodes or []
    return any(isinstance(node, Mapping) and node.get("type") == "llm" for node in items)


def _transport(settings: Settings, seconds: float) -> httpx.AsyncBaseTransport:
    return guarded_transport(settings, total_seconds=seconds)


def llm_access(settings: Settings, project_api_key: str | None) -> LlmAccess:
    """How a project's LLM agents reach their servers: through the SSRF guard, the
    operator's key only to the operator's server, the project's key to the rest."""
    return LlmAccess(
        transport=partial(_transport, settings),
        operator_base_url=settings.llm_base_url,
        operator_api_key=settings.llm_api_key,
        project_api_key=project_api_key,
    )
