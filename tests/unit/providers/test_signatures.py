"""Each carrier's webhook signature scheme, with Twilio's published test vector, and the
ways a forged request differs: wrong secret, wrong URL, changed parameter, missing header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from functools import partial

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agentsms.providers import plivo, telnyx, twilio, vonage
from agentsms.providers.carrier import SignatureInvalid

# From Twilio's "Validating requests" documentation.
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+12349013030"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("To", "+18005551212"),
]
TWILIO_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def rejected(check: Callable[[], object]) -> bool:
    """True when the check raises ``SignatureInvalid``."""
    try:
        check()
    except SignatureInvalid:
        return True
    return False


def test_twilio_published_vector() -> None:
    assert twilio.signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_SIGNATURE
    # Parameter order on the wire does not matter: they are sorted before signing.
    reordered = list(reversed(TWILIO_PARAMS))
    twilio.verify(TWILIO_TOKEN, TWILIO_URL, reordered, TWILIO_SIGNATURE)


@pytest.mark.parametrize(
    ("token", "url", "params", "header"),
    [
        ("54321", TWILIO_URL, TWILIO_PARAMS, TWILIO_SIGNATURE),
        (TWILIO_TOKEN, TWILIO_URL.replace("bar=2", "bar=3"), TWILIO_PARAMS, TWILIO_SIGNATURE),
        (TWILIO_TOKEN, TWILIO_URL.replace("https:", "http:"), TWILIO_PARAMS, TWILIO_SIGNATURE),
        (TWILIO_TOKEN, TWILIO_URL, [*TWILIO_PARAMS[:-1], ("To", "+18005551213")], TWILIO_SIGNATURE),
        (TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS[:-1], TWILIO_SIGNATURE),
        (TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, None),
        (TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, ""),
    ],
    ids=["wrong-token", "wrong-url", "wrong-scheme", "changed-param", "dropped-param",
         "missing-header", "empty-header"],
)  # fmt: skip
def test_twilio_forgeries(
    token: str, url: str, params: list[tuple[str, str]], header: str | None
) -> None:
    with pytest.raises(SignatureInvalid):
        twilio.verify(token, url, params, header)


def _twilio_documented(token: str, url: str, params: list[tuple[str, str]]) -> str:
    """The signature as Twilio's "Validating requests" page computes it, step by step: the
    full URL, then each POST parameter name and value sorted by name, HMAC-SHA1 keyed with
    the auth token, base64."""
    data = url
    for name, value in sorted(params):
        data += name + value
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def test_the_documented_computation_gives_the_published_vector() -> None:
    assert _twilio_documented(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_SIGNATURE


@pytest.mark.parametrize(
    ("signed", "received"),
    [
        ("https://mycompany.com:443/myapp.php?foo=1", "https://mycompany.com/myapp.php?foo=1"),
        ("https://mycompany.com/myapp.php?foo=1", "https://mycompany.com:443/myapp.php?foo=1"),
        ("http://mycompany.com:80/myapp.php", "http://mycompany.com/myapp.php"),
        ("http://mycompany.com/myapp.php", "http://mycompany.com:80/myapp.php"),
        ("https://mycompany.com/myapp.php", "https://mycompany.com/myapp.php"),
    ],
)
def test_twilio_signature_holds_with_or_without_the_default_port(
    signed: str, received: str
) -> None:
    header = _twilio_documented(TWILIO_TOKEN, signed, TWILIO_PARAMS)
    twilio.verify(TWILIO_TOKEN, received, TWILIO_PARAMS, header)


@pytest.mark.parametrize(
    ("signed", "received"),
    [
        # Only the scheme's own default port may be added or dropped.
        ("https://mycompany.com:80/myapp.php", "https://mycompany.com/myapp.php"),
        ("http://mycompany.com:443/myapp.php", "http://mycompany.com/myapp.php"),
        ("https://mycompany.com:8443/myapp.php", "https://mycompany.com/myapp.php"),
        ("https://mycompany.com/myapp.php", "https://mycompany.com:8443/myapp.php"),
    ],
)
def test_twilio_signature_for_another_port_is_refused(signed: str, received: str) -> None:
    header = _twilio_documented(TWILIO_TOKEN, signed, TWILIO_PARAMS)
    with pytest.raises(SignatureInvalid):
        twilio.verify(TWILIO_TOKEN, received, TWILIO_PARAMS, header)


TWILIO_JSON = b'{"MessageSid":"SM1234567890ABCDE","MessageStatus":"delivered","To":"+18005551212"}'


def _twilio_json_url(body: bytes, base: str = "https://mycompany.com/myapp.php?foo=1") -> str:
    return f"{base}&bodySHA256={hashlib.sha256(body).hexdigest()}"


def test_twilio_json_callback_is_checked_with_body_sha256() -> None:
    url = _twilio_json_url(TWILIO_JSON)
    # Signed over the full URL, bodySHA256 included, with no parameters appended.
    header = _twilio_documented(TWILIO_TOKEN, url, [])
    twilio.verify_json(TWILIO_TOKEN, url, TWILIO_JSON, header)
    with_port = url.replace("mycompany.com/", "mycompany.com:443/")
    twilio.verify_json(TWILIO_TOKEN, with_port, TWILIO_JSON, header)

    changed = TWILIO_JSON.replace(b"delivered", b"failed")
    no_hash = "https://mycompany.com/myapp.php?foo=1"
    signed_no_hash = _twilio_documented(TWILIO_TOKEN, no_hash, [])
    forgeries = {
        "changed-body": (url, changed, header),
        "hash-of-the-changed-body": (
            _twilio_json_url(changed),
            changed,
            header,
        ),
        "no-body-hash": (no_hash, TWILIO_JSON, signed_no_hash),
        "signed-without-the-hash": (url, TWILIO_JSON, signed_no_hash),
        "wrong-token": (url, TWILIO_JSON, _twilio_documented("54321", url, [])),
        "missing-header": (url, TWILIO_JSON, None),
    }
    for name, (forged_url, body, signature) in forgeries.items():
        assert rejected(partial(twilio.verify_json, TWILIO_TOKEN, forged_url, body, signature)), (
            name
        )


def _telnyx_key() -> tuple[Ed25519PrivateKey, str]:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, base64.b64encode(raw).decode()


def _telnyx_sign(private: Ed25519PrivateKey, body: bytes, at: int) -> str:
    return base64.b64encode(private.sign(f"{at}|".encode() + body)).decode()


def test_telnyx_ed25519() -> None:
    private, public = _telnyx_key()
    body = b'{"data":{"event_type":"message.received"}}'
    now = int(time.time())
    key = telnyx.public_key(public)
    telnyx.verify(key, body, _telnyx_sign(private, body, now), str(now))

    other, _ = _telnyx_key()
    forgeries = {
        "wrong-key": (body, _telnyx_sign(other, body, now), str(now)),
        "changed-body": (body.replace(b"received", b"sent"), _telnyx_sign(private, body, now),
                         str(now)),
        "timestamp-swapped": (body, _telnyx_sign(private, body, now), str(now + 1)),
        "stale": (body, _telnyx_sign(private, body, now - 600), str(now - 600)),
        "missing-signature": (body, None, str(now)),
        "missing-timestamp": (body, _telnyx_sign(private, body, now), None),
        "garbage-signature": (body, "not base64!", str(now)),
    }  # fmt: skip
    for name, (forged_body, signature, timestamp) in forgeries.items():
        assert rejected(partial(telnyx.verify, key, forged_body, signature, timestamp)), name


def test_telnyx_public_key_must_be_base64_ed25519() -> None:
    with pytest.raises(ValueError, match="Ed25519"):
        telnyx.public_key("not-a-key")
    with pytest.raises(ValueError, match="Ed25519"):
        telnyx.public_key(base64.b64encode(b"short").decode())


def _vonage_token(secret: str, body: bytes, *, iat: int | None = None) -> str:
    claims = {
        "iat": iat if iat is not None else int(time.time()),
        "jti": "abc",
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "k",
        "application_id": "app",
    }
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def test_vonage_signed_webhook() -> None:
    secret = "a-signature-secret-of-32-bytes!!"
    body = b'{"status":"delivered"}'
    claims = vonage.verify(secret, body, _vonage_token(secret, body))
    assert claims["iss"] == "Vonage"
    forgeries = {
        "wrong-secret": (body, _vonage_token("another-secret-of-32-bytes-long!", body)),
        "changed-body": (b'{"status":"rejected"}', _vonage_token(secret, body)),
        "stale": (body, _vonage_token(secret, body, iat=int(time.time()) - 3600)),
        "missing-header": (body, None),
        "not-bearer": (body, "Basic abc"),
    }
    for name, (forged_body, header) in forgeries.items():
        assert rejected(partial(vonage.verify, secret, forged_body, header)), name


PLIVO_TOKEN = "MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u"


def test_plivo_signed_string_follows_the_sdk_rules() -> None:
    # POST with body params: base URL, "?", query (sorted), "." and the sorted key+value pairs.
    assert (
        plivo.signed_string("POST", "https://x.example/cb?ref=m1", [("To", "1"), ("From", "2")])
        == "https://x.example/cb?ref=m1.From2To1"
    )
    assert (
        plivo.signed_string("POST", "https://x.example/cb", [("To", "1"), ("From", "2")])
        == "https://x.example/cb?From2To1"
    )
    assert plivo.signed_string("POST", "https://x.example/cb?b=2&a=1", []) == (
        "https://x.example/cb?a=1&b=2"
    )
    assert plivo.signed_string("GET", "https://x.example/cb?b=2", [("a", "1")]) == (
        "https://x.example/cb?a=1&b=2"
    )


def test_plivo_v3() -> None:
    url = "https://agentsms.example.com/callbacks/plivo/acct_1?ref=msg_1"
    params = [("MessageUUID", "u-1"), ("Status", "delivered"), ("To", "14155550100")]
    nonce = "05429567804466091622"
    good = plivo.signature(PLIVO_TOKEN, "POST", url, params, nonce)
    expected = base64.b64encode(
        hmac.new(
            PLIVO_TOKEN.encode(),
            (url.replace("?ref=msg_1", "?ref=msg_1.") + "MessageUUIDu-1StatusdeliveredTo14155550100"
             + "." + nonce).encode(),
            hashlib.sha256,
        )
        .digest()
    ).decode()  # fmt: skip
    assert good == expected
    plivo.verify(PLIVO_TOKEN, "POST", url, params, good, nonce)
    plivo.verify(PLIVO_TOKEN, "POST", url, params, f"other,{good}", nonce)  # two tokens
    forgeries = {
        "wrong-token": (url, params, plivo.signature("x" * 32, "POST", url, params, nonce), nonce),
        "wrong-url": (url + "&x=1", params, good, nonce),
        "changed-param": (url, [*params[:2], ("To", "14155550101")], good, nonce),
        "other-nonce": (url, params, good, "1"),
        "missing-header": (url, params, None, nonce),
        "missing-nonce": (url, params, good, None),
    }
    for name, (forged_url, forged_params, header, forged_nonce) in forgeries.items():
        check = partial(
            plivo.verify, PLIVO_TOKEN, "POST", forged_url, forged_params, header, forged_nonce
        )
        assert rejected(check), name
