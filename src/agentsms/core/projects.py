"""Projects, API keys and the bootstrap project."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import compliance, contacts, conversations, personas, spend
from agentsms.core import numbers as numbers_service
from agentsms.errors import Conflict, NotFound, Unauthorized, invalid
from agentsms.ids import new_id
from agentsms.store.repositories import Row
from agentsms.store.repositories import numbers as numbers_repo
from agentsms.store.repositories import projects as repo
from agentsms.store.types import utcnow

KEY_PREFIX = "ask_"
DEFAULT_SIMULATOR_NUMBER = "+14155550100"
SETTINGS_KEYS = ("rate_limit_per_second",)
MAX_RATE_LIMIT_PER_SECOND = 1_000_000


@dataclass(frozen=True, slots=True)
class Project:
    """The project an API key belongs to."""

    id: str
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def rate_limit(self, default: int) -> int:
        return int(self.settings.get("rate_limit_per_second", default))


def hash_key(api_key: str) -> str:
    """Keys are long random strings, so a plain SHA-256 is a safe and fast digest."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def project_from_row(row: Mapping[str, Any]) -> Project:
    """The project of a ``projects`` row."""
    return Project(id=row["id"], name=row["name"], settings=dict(row["settings"] or {}))


async def create_project(
    conn: AsyncConnection, name: str, *, api_key: str | None = None
) -> tuple[Project, str]:
    """A new project and its first API key (returned in clear this once only)."""
    now = utcnow()
    project = Project(id=new_id("proj"), name=name, settings={})
    await repo.insert_project(conn, id=project.id, name=name, settings={}, created_at=now)
    key = api_key or new_api_key()
    await add_api_key(conn, project.id, key, name="default")
    return project, key


async def add_api_key(conn: AsyncConnection, project_id: str, api_key: str, *, name: str) -> str:
    key_id = new_id("key")
    await repo.insert_api_key(
        conn,
        id=key_id,
        project_id=project_id,
        key_hash=hash_key(api_key),
        prefix=api_key[:8],
        name=name,
        created_at=utcnow(),
    )
    return key_id


async def authenticate(conn: AsyncConnection, api_key: str) -> Project:
    row = await repo.project_for_key_hash(conn, hash_key(api_key))
    if row is None:
        raise Unauthorized("invalid API key")
    return project_from_row(row)


async def get_project(conn: AsyncConnection, project_id: str) -> Project | None:
    row = await repo.get_project(conn, project_id)
    return None if row is None else project_from_row(row)


async def update_project(
    conn: AsyncConnection,
    project: Project,
    changes: Mapping[str, Any],
    *,
    name: str | None = None,
) -> Project:
    """Rename the project and/or merge ``changes`` into its settings (as stored now: the
    caller's copy may be a cached one)."""
    stored = await repo.get_project(conn, project.id)
    before = dict(stored["settings"] or {}) if stored is not None else dict(project.settings)
    settings = dict(before)
    for key, value in changes.items():
        if key in spend.SETTINGS_KEYS:
            cap = spend.normalized(key, value)
            if cap is None:
                settings.pop(key, None)
            else:
                settings[key] = cap
            continue
        if key in compliance.SETTINGS_KEYS or key in ("conversation", contacts.SETTING):
            problem = (
                conversations.defaults_problem(value)
                if key == "conversation"
                else contacts.setting_problem(value)
                if key == contacts.SETTING
                else compliance.setting_problem(key, value)
            )
            if problem is not None:
                raise invalid(f"settings.{key}", problem)
            settings[key] = value
            continue
        if key not in SETTINGS_KEYS:
            known = (
                *SETTINGS_KEYS,
                "conversation",
                contacts.SETTING,
                *compliance.SETTINGS_KEYS,
                *spend.SETTINGS_KEYS,
            )
            raise invalid(f"settings.{key}", f"unknown setting; one of {', '.join(known)}")
        if key == "rate_limit_per_second" and (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= MAX_RATE_LIMIT_PER_SECOND
        ):
            raise invalid(
                f"settings.{key}", f"must be a whole number from 1 to {MAX_RATE_LIMIT_PER_SECOND}"
            )
        settings[key] = value
    if name is not None and not name.strip():
        raise invalid("name", "must not be empty")
    new_name = project.name if name is None else name.strip()
    await repo.update_project(conn, project.id, name=new_name, settings=settings)
    await spend.start_counting(conn, project.id, before, settings)
    return Project(id=project.id, name=new_name, settings=settings)


async def set_default_persona(
    conn: AsyncConnection, project: Project, persona_ref: str | None
) -> Project:
    """Make the persona ``persona_ref`` answer the project's conversations that name no
    agent (``None``: nobody does)."""
    settings = dict(project.settings)
    if persona_ref is None:
        settings.pop(personas.DEFAULT_PERSONA, None)
    else:
        settings[personas.DEFAULT_PERSONA] = await personas.default_persona_id(
            conn, project.id, persona_ref
        )
    await repo.update_project(conn, project.id, name=project.name, settings=settings)
    return Project(id=project.id, name=project.name, settings=settings)


async def ensure_bootstrap(conn: AsyncConnection, api_key: str) -> Project:
    """Make sure a project answers to ``api_key`` and has at least one sender number."""
    row = await repo.project_for_key_hash(conn, hash_key(api_key))
    if row is None:
        project, _ = await create_project(conn, "default", api_key=api_key)
    else:
        project = project_from_row(row)
    if not await numbers_repo.list_numbers(conn, project.id):
        await numbers_service.add_simulator_number(conn, project.id, DEFAULT_SIMULATOR_NUMBER)
    return project


# -- API keys -----------------------------------------------------------------------------

MAX_KEY_NAME = 200


async def create_api_key(conn: AsyncConnection, project_id: str, name: str) -> tuple[Row, str]:
    """A new key for the project: its row and the key in clear (shown this once only)."""
    name = name.strip()
    if not name:
        raise invalid("name", "must not be empty")
    if len(name) > MAX_KEY_NAME:
        raise invalid("name", f"is {len(name)} characters; the limit is {MAX_KEY_NAME}")
    key = new_api_key()
    key_id = await add_api_key(conn, project_id, key, name=name)
    row = await repo.get_api_key(conn, project_id, key_id)
    assert row is not None
    return row, key


async def list_api_keys(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    """The project's keys (never their secrets): active ones first, newest first."""
    return await repo.list_api_keys(conn, project_id)


async def revoke_api_key(conn: AsyncConnection, project_id: str, key_id: str) -> Row:
    """Revoke a key at once. Revoking a revoked key changes nothing; the last active key of
    a project cannot be revoked (``Conflict``), so a project never locks itself out."""
    row = await repo.get_api_key(conn, project_id, key_id)
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    if row["revoked_at"] is not None:
        return row
    if await repo.count_active_keys(conn, project_id) <= 1:
        raise Conflict(
            "this is the project's last active API key; create another before revoking it",
            code="last_api_key",
        )
    await repo.revoke_api_key(conn, project_id, key_id, utcnow())
    revoked = await repo.get_api_key(conn, project_id, key_id)
    assert revoked is not None
    return revoked


async def authenticate_key(conn: AsyncConnection, api_key: str) -> tuple[Project, str]:
    """The project owning ``api_key`` and the key's id (for sessions that outlive a request)."""
    key = await repo.key_for_hash(conn, hash_key(api_key))
    row = None if key is None else await repo.get_project(conn, key["project_id"])
    if key is None or row is None:
        raise Unauthorized("invalid API key")
    return project_from_row(row), str(key["id"])


async def project_for_key_id(conn: AsyncConnection, key_id: str) -> Project:
    """The project of the unrevoked key ``key_id``; ``Unauthorized`` once it is revoked."""
    row = await repo.project_for_key_id(conn, key_id)
    if row is None:
        raise Unauthorized("the API key of this session was revoked")
    return project_from_row(row)
