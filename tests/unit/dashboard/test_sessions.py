"""Session cookies: signed, expiring, and the secret kept in the data dir."""

from __future__ import annotations

from pathlib import Path

from agentsms.config import Settings
from agentsms.core.credentials import KEY_FILE_NAME
from agentsms.dashboard.sessions import SessionSigner, load_secrets, new_session, tokens_match


def test_round_trip_and_forgery() -> None:
    signer = SessionSigner(["secret-one"], 3600)
    session = new_session("sess_1")
    cookie = signer.dumps(session)
    assert signer.loads(cookie) == session
    assert SessionSigner(["secret-two"], 3600).loads(cookie) is None
    assert signer.loads(cookie[:-2] + "xx") is None
    assert signer.loads("") is None
    anonymous = signer.loads(signer.dumps(new_session()))
    assert anonymous is not None
    assert not anonymous.signed_in


def test_sessions_older_than_max_age_are_refused() -> None:
    cookie = SessionSigner(["secret"], 3600).dumps(new_session("sess_1"))
    # Any age, even 0 s, is over a negative maximum: the age check is wired in.
    assert SessionSigner(["secret"], -1).loads(cookie) is None
    assert SessionSigner(["secret"], 3600).loads(cookie) is not None


def test_each_session_gets_its_own_token() -> None:
    first, second = new_session(), new_session()
    assert first.csrf != second.csrf
    assert tokens_match(first.csrf, first.csrf)
    assert not tokens_match(first.csrf, second.csrf)
    assert not tokens_match(first.csrf, None)


def test_sqlite_sessions_are_signed_with_the_key_file_beside_the_database(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    secrets = load_secrets(settings)
    path = tmp_path / KEY_FILE_NAME
    assert path.read_text().strip() == secrets[0]
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secrets(settings) == secrets
    assert load_secrets(Settings(secret_key="new, old")) == ["new", "old"]


def test_rotation_keeps_sessions_signed_with_the_old_secret() -> None:
    cookie = SessionSigner(["old"], 3600).dumps(new_session("sess_1"))
    rotated = SessionSigner(["new", "old"], 3600)
    session = rotated.loads(cookie)
    assert session is not None
    assert session.session_id == "sess_1"
    assert SessionSigner(["new"], 3600).loads(rotated.dumps(new_session("sess_2"))) is not None


def test_postgres_without_a_secret_gets_one_for_this_process_only() -> None:
    settings = Settings(database_url="postgresql+asyncpg://u@h/db")
    first, second = load_secrets(settings), load_secrets(settings)
    assert len(first) == 1
    assert first != second
