"""The compat plumbing's pure parts: key folding, failure classes, tokens, scopes, media."""

from __future__ import annotations

import base64

import pytest
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc

from agentsms.api.compat import _common, telegent
from agentsms.config import Settings
from agentsms.core import credentials, media
from agentsms.errors import Unauthorized
from agentsms.store.faults import DatabaseUnavailable


class Inner(BaseModel):
    Number: str


class Outer(BaseModel):
    To: list[Inner]
    From: str
    Maybe: Inner | None = None


def test_fold_keys_matches_field_names_in_any_case_through_nesting() -> None:
    folded = _common.fold_keys(
        {"to": [{"NUMBER": "1"}, {"number": "2"}], "from": "x", "maybe": {"nUmBeR": "3"}, "z": 1},
        Outer,
    )
    assert folded == {
        "To": [{"Number": "1"}, {"Number": "2"}],
        "From": "x",
        "Maybe": {"Number": "3"},
        "z": 1,  # unknown keys stay, so the model can name them
    }


def test_server_failures_are_classified_by_cause() -> None:
    assert _common.server_failure(ValueError("bug")).status == 500
    assert _common.server_failure(ConnectionRefusedError(111, "refused")).status == 503
    assert _common.server_failure(TimeoutError()).status == 504
    assert _common.server_failure(sa_exc.TimeoutError("pool")).status == 504
    outer = RuntimeError("wrapped")
    outer.__cause__ = ConnectionResetError("gone")
    assert _common.server_failure(outer).status == 503
    assert "bug" not in _common.server_failure(ValueError("bug")).detail
    locked = _common.server_failure(DatabaseUnavailable("locked", retry_after=3))
    assert (locked.status, dict(locked.headers)) == (503, {"Retry-After": "3"})


def _settings(secret: str) -> Settings:
    return Settings(database_url="postgresql+asyncpg://x@127.0.0.1/x", secret_key=secret)


def test_tokens_round_trip_and_survive_key_rotation() -> None:
    token, expires = _common.issue_token(_settings("old"), "telegent", "proj_1", "key_1", "", 600)
    claims = _common.read_token(_settings("new,old"), "telegent", token)
    assert (claims.project_id, claims.key_id, claims.scope) == ("proj_1", "key_1", "")
    assert claims.expires_at == expires
    with pytest.raises(Unauthorized, match="invalid"):
        _common.read_token(_settings("new"), "telegent", token)  # the old key is gone
    with pytest.raises(Unauthorized, match="invalid"):
        _common.read_token(_settings("old"), "bland", token)  # another vendor's surface
    expired, _ = _common.issue_token(_settings("old"), "telegent", "proj_1", "key_1", "", -5)
    with pytest.raises(Unauthorized, match="expired"):
        _common.read_token(_settings("old"), "telegent", expired)


def test_signing_keys_differ_from_the_secret_and_by_purpose() -> None:
    settings = _settings("s3cret")
    (tokens,) = credentials.signing_keys(settings, "compat-tokens")
    (other,) = credentials.signing_keys(settings, "something-else")
    assert tokens != other
    assert b"s3cret" not in tokens
    assert len(tokens) == 32


@pytest.mark.parametrize(
    ("endpoint", "scope"),
    [
        (None, ""),
        ("https://api.telegent.com", ""),
        ("https://api.telegent.com/", ""),
        ("https://api.telegent.com/v1.0", ""),
        ("http://host/compat/telegent", ""),
        ("https://api.telegent.com/v1.0/Message", "/v1.0/message"),
        ("http://host/compat/telegent/v1.0/message/outbound", "/v1.0/message/outbound"),
        ("message", "/v1.0/message"),
        ("/v1.0/numbers/", "/v1.0/numbers"),
    ],
)
def test_api_endpoint_scopes(endpoint: str | None, scope: str) -> None:
    assert telegent._scope(endpoint) == scope


def test_telegent_error_bodies() -> None:
    failure = _common.Failure(
        422, "validation_failed", "x", [_common.FieldError("To[0].Number", "is invalid")]
    )
    assert telegent.error_body(failure) == (
        400,
        {"StatusCode": 400, "Message": "Bad request: To[0].Number: is invalid."},
    )
    status, body = telegent.error_body(_common.Failure(401, "unauthorized", "missing token"))
    assert status == 401
    assert body["Message"] == (
        "Unauthorized: missing token. Re-authenticate via POST /v1.0/oauth2/tokens."
    )
    assert telegent.error_body(_common.Failure(409, "conflict", "taken"))[0] == 400


def test_telegent_field_names_for_core_errors() -> None:
    assert telegent._telegent_field("recipients[3].to", 2) == "To[3].Number"
    assert telegent._telegent_field("recipients[0].from", 2) == "From"
    assert telegent._telegent_field("recipients[0].body", 2) == "Body"
    assert telegent._telegent_field("recipients[0].media_urls[1]", 2) == "MmsMedia[1].MediaUrl"
    assert telegent._telegent_field("recipients[0].media_urls[2]", 2) == "MmsBase64[0]"
    assert telegent._telegent_field("MmsBase64[1].content_type", 0) == "MmsBase64[1].BaseType"
    assert telegent._telegent_field("MmsBase64[1].data", 0) == "MmsBase64[1].Base64"


def test_base64_in_its_common_spellings() -> None:
    data = bytes(range(250))
    standard = base64.b64encode(data).decode()
    assert media.decode_base64(standard) == data
    assert media.decode_base64(standard.rstrip("=")) == data
    assert media.decode_base64(base64.urlsafe_b64encode(data).decode()) == data
    assert media.decode_base64(standard[:40] + "\n" + standard[40:]) == data
    assert media.decode_base64("not base64!") is None


def test_upload_checks() -> None:
    upload, errors = media.check_upload("f", "Image/PNG; q=1", b"x", 10)
    assert errors == []
    assert upload == media.Upload("image/png", b"x")
    _, errors = media.check_upload("f", "png", None, 10)
    assert {e.field for e in errors} == {"f.content_type", "f.data"}
    _, errors = media.check_upload("f", "image/png", b"x" * 11, 10)
    assert [e.message for e in errors] == ["is 11 bytes; the limit is 10"]
