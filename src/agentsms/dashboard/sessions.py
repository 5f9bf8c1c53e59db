"""Signed session cookies and their CSRF tokens.

A session is a signed, timestamped cookie (itsdangerous) holding the id of the API key
that signed in and a random CSRF token; nothing is stored server-side. Every request
re-checks that the key is still active, so revoking the key ends its sessions. A visitor
who has not signed in gets an anonymous session (a CSRF token only) so that the sign-in
form itself is protected too.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from itsdangerous import BadSignature, URLSafeTimedSerializer

from agentsms.config import Settings

COOKIE = "agentsms_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SECRET_FILE = "secret_key"

log = structlog.get_logger("agentsms.dashboard")


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session: ``key_id`` is None until it signs in."""

    csrf: str
    key_id: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.key_id is not None


def new_session(key_id: str | None = None) -> Session:
    """A session with a fresh CSRF token (a new one at every sign-in and sign-out)."""
    return Session(csrf=secrets.token_urlsafe(32), key_id=key_id)


def load_secret(settings: Settings) -> str:
    """``AGENTSMS_SECRET_KEY``, else the one generated once and kept in the data dir."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        # O_EXCL: when two processes start together the first one's secret wins.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    log.info("dashboard secret generated", path=str(Path(path).resolve()))
    return secret


class SessionSigner:
    """Turns sessions into cookie values and back, refusing forged or expired ones."""

    def __init__(self, secret: str, max_age_seconds: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="agentsms.dashboard.session")
        self.max_age = int(max_age_seconds)

    def dumps(self, session: Session) -> str:
        data: dict[str, Any] = {"c": session.csrf}
        if session.key_id is not None:
            data["k"] = session.key_id
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
        key_id = data.get("k")
        return Session(csrf=data["c"], key_id=key_id if isinstance(key_id, str) else None)


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())
