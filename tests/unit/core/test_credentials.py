"""Credentials at rest: Fernet, key rotation, and the laptop key file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from agentsms.config import Settings
from agentsms.core.credentials import KEY_FILE_NAME, CredentialBox, NotConfigured, credential_box


def test_seal_and_open_round_trip_without_plaintext() -> None:
    box = CredentialBox([Fernet.generate_key().decode()])
    sealed = box.seal({"auth_token": "s3cret-token-value"})
    assert "s3cret-token-value" not in sealed
    assert box.open(sealed) == {"auth_token": "s3cret-token-value"}


def test_rotation_first_key_encrypts_all_decrypt() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_old = CredentialBox([old]).seal({"k": "v"})
    rotated = CredentialBox([new, old])
    assert rotated.open(sealed_old) == {"k": "v"}
    assert CredentialBox([new]).open(rotated.seal({"k": "v"})) == {"k": "v"}
    with pytest.raises(ValueError, match="AGENTSMS_SECRET_KEY"):
        CredentialBox([new]).open(sealed_old)


def test_passphrase_is_stretched_into_a_key() -> None:
    sealed = CredentialBox(["correct horse battery staple"]).seal({"k": "v"})
    assert CredentialBox(["correct horse battery staple"]).open(sealed) == {"k": "v"}
    with pytest.raises(ValueError, match="cannot decrypt"):
        CredentialBox(["another passphrase"]).open(sealed)


def test_sqlite_without_a_key_gets_a_private_key_file_next_to_the_database(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    sealed = credential_box(settings).seal({"k": "v"})
    key_file = tmp_path / KEY_FILE_NAME
    assert key_file.stat().st_mode & 0o777 == 0o600
    # Another process (a fresh box from the same file) reads what this one sealed.
    assert CredentialBox([key_file.read_text().strip()]).open(sealed) == {"k": "v"}


def test_postgres_without_a_key_is_refused() -> None:
    settings = Settings(database_url="postgresql+asyncpg://u@127.0.0.1/none")
    with pytest.raises(NotConfigured, match="AGENTSMS_SECRET_KEY"):
        credential_box(settings)
