"""Dashboard sign-in sessions, held on the server so that signing out ends them.

A session's id is a random 256-bit string that only the browser's signed cookie holds; the
database keeps its SHA-256 (a copy of the database signs nobody in). Signing out deletes
the row, so a saved copy of the cookie is dead at once; revoking the API key that signed in
ends its sessions too.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.projects import Project, project_from_row
from agentsms.errors import Unauthorized
from agentsms.store.repositories import dashboard_sessions as repo
from agentsms.store.types import utcnow


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(conn: AsyncConnection, key_id: str, lifetime_seconds: float) -> str:
    """A new session for API key ``key_id``; its id (for the cookie only)."""
    now = utcnow()
    await repo.delete_expired(conn, now)
    session_id = secrets.token_urlsafe(32)
    await repo.insert_session(
        conn,
        id_hash=_digest(session_id),
        key_id=key_id,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime_seconds),
    )
    return session_id


async def session_project(conn: AsyncConnection, session_id: str) -> tuple[Project, str]:
    """The project of a live session and the id of the key it signed in with;
    ``Unauthorized`` once it is signed out, expired or its key revoked."""
    row = await repo.project_for_session(conn, _digest(session_id), utcnow())
    if row is None:
        raise Unauthorized("this session has ended")
    return project_from_row(row), str(row["key_id"])


async def close_session(conn: AsyncConnection, session_id: str) -> None:
    """End a session: its cookie no longer signs anyone in."""
    await repo.delete_session(conn, _digest(session_id))
