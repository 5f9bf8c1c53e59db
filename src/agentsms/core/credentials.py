"""Carrier credentials at rest: encrypted with Fernet under a key from the environment.

``AGENTSMS_SECRET_KEY`` holds one Fernet key or several separated by commas (the first
encrypts, every one decrypts: rotate by putting a new key first). A passphrase that is
not a Fernet key is stretched into one with HKDF-SHA256. Without the setting, a SQLite
deployment (a laptop) gets a key generated into a file next to its database file, with a
warning; a PostgreSQL deployment must set it, since every process must share one key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import make_url

from agentsms.config import Settings
from agentsms.errors import AgentsmsError

log = structlog.get_logger("agentsms.credentials")
KEY_FILE_NAME = "agentsms.secret-key"


class NotConfigured(AgentsmsError):
    """A feature needs a setting this deployment does not have."""

    status = 503
    code = "not_configured"
    title = "Not configured"


class CredentialBox:
    """Encrypts and decrypts credential objects."""

    def __init__(self, keys: list[str]) -> None:
        self._fernet = MultiFernet([Fernet(_as_fernet_key(key)) for key in keys])

    def seal(self, credentials: Mapping[str, str]) -> str:
        """The encrypted form of ``credentials`` (a JSON object of strings)."""
        plain = json.dumps(dict(credentials), sort_keys=True).encode()
        return self._fernet.encrypt(plain).decode()

    def open(self, token: str) -> dict[str, str]:
        """The credentials sealed in ``token``; ``ValueError`` if no key of ours fits."""
        try:
            plain = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise ValueError(
                "cannot decrypt provider credentials: AGENTSMS_SECRET_KEY is not the key "
                "they were stored with"
            ) from None
        value: dict[str, str] = json.loads(plain)
        return value


def credential_box(settings: Settings) -> CredentialBox:
    """The box for this deployment (``NotConfigured`` when no key can be had)."""
    return _box(settings.secret_key, settings.database_url)


def deployment_secrets(settings: Settings) -> list[str] | None:
    """The deployment's secrets, current first: ``AGENTSMS_SECRET_KEY`` (comma-separated
    during a rotation), else on SQLite the generated key file beside the database, else None.
    """
    if settings.secret_key:
        return _split(settings.secret_key)
    if settings.is_sqlite:
        return [_dev_key(settings.database_url)]
    return None


def _split(secret_key: str) -> list[str]:
    return [k.strip() for k in secret_key.split(",") if k.strip()]


@functools.cache
def _box(secret_key: str | None, database_url: str) -> CredentialBox:
    if secret_key:
        return CredentialBox(_split(secret_key))
    if not database_url.startswith("sqlite"):
        raise NotConfigured(
            'set AGENTSMS_SECRET_KEY (e.g. the output of `python -c "from '
            'cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`) '
            "in every agentsms process to store carrier credentials on PostgreSQL",
            code="secret_key_missing",
        )
    return CredentialBox([_dev_key(database_url)])


def prepare(settings: Settings) -> None:
    """At startup: make sure credentials can be encrypted, and say where the key comes from
    (a generated key file on a laptop; nothing at all on PostgreSQL without the setting)."""
    if settings.secret_key:
        credential_box(settings)
        return
    if not settings.is_sqlite:
        log.warning(
            "credentials.no_secret_key",
            hint="set AGENTSMS_SECRET_KEY to add carrier accounts on PostgreSQL",
        )
        return
    credential_box(settings)
    log.warning(
        "credentials.key_file",
        path=str(_key_path(settings.database_url)),
        hint="AGENTSMS_SECRET_KEY is not set: carrier credentials are encrypted with this "
        "generated key file; set AGENTSMS_SECRET_KEY in production",
    )


def _key_path(database_url: str) -> Path:
    database = make_url(database_url).database or ""
    folder = Path(database).resolve().parent if database and database != ":memory:" else Path()
    return folder / KEY_FILE_NAME


def _dev_key(database_url: str) -> str:
    path = _key_path(database_url)
    if path.exists():
        return path.read_text().strip()
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning(
        "credentials.generated_key",
        path=str(path),
        hint="losing this file loses the stored carrier credentials",
    )
    return key


def _as_fernet_key(value: str) -> bytes:
    try:
        if len(base64.urlsafe_b64decode(value.encode())) == 32:
            return value.encode()
    except (binascii.Error, ValueError):
        pass
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"agentsms-credentials")
    return base64.urlsafe_b64encode(derived.derive(value.encode()))


def signing_keys(settings: Settings, purpose: str) -> tuple[bytes, ...]:
    """HMAC keys for ``purpose`` derived from the deployment's secrets: the first signs,
    every one verifies (rotation as for credentials). Distinct purposes get unrelated keys.

    ``NotConfigured`` on PostgreSQL without ``AGENTSMS_SECRET_KEY``.
    """
    secrets = deployment_secrets(settings)
    if not secrets:
        raise NotConfigured(
            f"set AGENTSMS_SECRET_KEY in every agentsms process to sign {purpose} on PostgreSQL",
            code="secret_key_missing",
        )
    return _signing_keys(tuple(secrets), purpose)


@functools.cache
def _signing_keys(secrets: tuple[str, ...], purpose: str) -> tuple[bytes, ...]:
    return tuple(
        HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"agentsms-{purpose}".encode()
        ).derive(secret.encode())
        for secret in secrets
    )
