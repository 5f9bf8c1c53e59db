"""Signed session cookies and their CSRF tokens.

A session is a signed, timestamped cookie (itsdangerous) holding a random CSRF token and,
once signed in, the id of a server-side session (``core.dashboard_sessions``). Every
request re-checks that session (signed out, expired, or its API key revoked: it is over),
so a saved cookie stops working at sign-out. A visitor who has not signed in gets an
anonymous session (a CSRF token only) so that the sign-in form itself is protected too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import structlog
from itsdangerous import BadSignature, URLSafeTimedSerializer

from agentsms.config import Settings
from agentsms.core.credentials import deployment_secrets

COOKIE = "agentsms_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

log = structlog.get_logger("agentsms.dashboard")


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session: ``session_id`` is None until it signs in; ``key_id`` (the API
    key that signed in) is known once the server-side session has been checked."""

    csrf: str
    session_id: str | None = None
    key_id: str | None = None


def new_session(session_id: str | None = None) -> Session:
    """A session with a fresh CSRF token (a new one at every sign-in and sign-out)."""
    return Session(csrf=secrets.token_urlsafe(32), session_id=session_id)


def load_secrets(settings: Settings) -> list[str]:
    """The secrets that sign sessions, current first: the deployment's (see
    ``core.credentials.deployment_secrets``), else one for this process only, so sessions
    end at a restart and do not carry across processes until ``AGENTSMS_SECRET_KEY`` is set.
    """
    configured = deployment_secrets(settings)
    if configured:
        return configured
    log.warning(
        "dashboard.ephemeral_secret",
        hint="set AGENTSMS_SECRET_KEY so that dashboard sessions survive restarts and work "
        "across API processes",
    )
    return [secrets.token_urlsafe(48)]


class SessionSigner:
    """Turns sessions into cookie values and back, refusing forged or expired ones."""

    def __init__(self, secrets_current_first: list[str], max_age_seconds: float) -> None:
        # itsdangerous signs with the last key and accepts any of them.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(secrets_current_first)), salt="agentsms.dashboard.session"
        )
        self.max_age = int(max_age_seconds)

    def dumps(self, session: Session) -> str:
        data: dict[str, Any] = {"c": session.csrf}
        if session.session_id is not None:
            data["s"] = session.session_id
        return self._serializer.dumps(data)

    def loads(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        session_id = data.get("s")
        return Session(
            csrf=data["c"], session_id=session_id if isinstance(session_id, str) else None
        )


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())
