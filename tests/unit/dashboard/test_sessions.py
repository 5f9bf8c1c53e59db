"""Session cookies: signed, expiring, and the secret kept in the data dir."""

from __future__ import annotations

from pathlib import Path

from agentsms.config import Settings
from agentsms.dashboard.sessions import SessionSigner, load_secret, new_session, tokens_match


def test_round_trip_and_forgery() -> None:
    signer = SessionSigner("secret-one", 3600)
    session = new_session("key_1")
    cookie = signer.dumps(session)
    assert signer.loads(cookie) == session
    assert SessionSigner("secret-two", 3600).loads(cookie) is None
    assert signer.loads(cookie[:-2] + "xx") is None
    assert signer.loads("") is None
    anonymous = signer.loads(signer.dumps(new_session()))
    assert anonymous is not None
    assert not anonymous.signed_in


def test_sessions_older_than_max_age_are_refused() -> None:
    cookie = SessionSigner("secret", 3600).dumps(new_session("key_1"))
    # Any age, even 0 s, is over a negative maximum: the age check is wired in.
    assert SessionSigner("secret", -1).loads(cookie) is None
    assert SessionSigner("secret", 3600).loads(cookie) is not None


def test_each_session_gets_its_own_token() -> None:
    first, second = new_session(), new_session()
    assert first.csrf != second.csrf
    assert tokens_match(first.csrf, first.csrf)
    assert not tokens_match(first.csrf, second.csrf)
    assert not tokens_match(first.csrf, None)


def test_generated_secret_is_kept_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    secret = load_secret(settings)
    path = tmp_path / "data" / "secret_key"
    assert path.read_text().strip() == secret
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret(settings) == secret
    assert load_secret(Settings(secret_key="explicit", data_dir=tmp_path)) == "explicit"
