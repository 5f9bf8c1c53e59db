"""Webhook signatures. Each endpoint names a signing scheme; the default is Standard
Webhooks (https://www.standardwebhooks.com, via ``standardwebhooks``).

Secrets are ``whsec_`` + base64 of 32 random bytes. During a secret rotation both the new
and the previous secret sign, so a receiver holding either secret verifies.

Schemes (``SCHEMES``, by name):
- ``standard-webhooks``: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``
  (space-separated ``v1,<base64>`` signatures).
- ``hmac-sha256-timestamped``: ``X-Webhook-Timestamp: <unix seconds>`` and
  ``X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``, the
  secret's text (as shown to the customer) being the key; comma-separated during a rotation.
  Used by the AgentPhone-compatible webhooks.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
STANDARD = "standard-webhooks"
HMAC_TIMESTAMPED = "hmac-sha256-timestamped"

Scheme = Callable[[str, datetime, str, Sequence[str]], dict[str, str]]
"""(message id, timestamp, body, secrets) -> the signature headers of one attempt."""


def new_secret() -> str:
    """A fresh signing secret, ``whsec_<base64 of 32 random bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=1024)
def _signer(key: str) -> Webhook:
    """The signer of one secret, kept: building one decodes the secret every time."""
    return Webhook(key)


def signature_header(msg_id: str, timestamp: datetime, body: str, keys: Sequence[str]) -> str:
    """The ``webhook-signature`` value: one ``v1,...`` per secret, space-separated."""
    return " ".join(_signer(key).sign(msg_id, timestamp, body) for key in keys)


def headers(msg_id: str, timestamp: datetime, body: str, keys: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt at ``timestamp``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(msg_id, timestamp, body, keys),
    }


def hmac_timestamped(key: str, stamp: str, body: str) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 keyed by ``key`` over ``"{stamp}.{body}"``."""
    digest = hmac.new(key.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def hmac_timestamped_headers(
    msg_id: str, timestamp: datetime, body: str, keys: Sequence[str]
) -> dict[str, str]:
    """``X-Webhook-Timestamp`` and ``X-Webhook-Signature`` (and ``X-Webhook-Id``)."""
    stamp = str(int(timestamp.timestamp()))
    return {
        "x-webhook-id": msg_id,
        "x-webhook-timestamp": stamp,
        "x-webhook-signature": ",".join(hmac_timestamped(key, stamp, body) for key in keys),
    }


SCHEMES: dict[str, Scheme] = {STANDARD: headers, HMAC_TIMESTAMPED: hmac_timestamped_headers}


def scheme(name: str | None) -> Scheme:
    """The signing scheme called ``name`` (``None``: Standard Webhooks)."""
    return SCHEMES[name or STANDARD]
