"""Standard Webhooks signatures (https://www.standardwebhooks.com), via ``standardwebhooks``.

Secrets are ``whsec_`` + base64 of 32 random bytes. During a secret rotation both the new
and the previous secret sign, so ``webhook-signature`` carries several space-separated
``v1,<base64>`` signatures and a receiver holding either secret verifies.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret, ``whsec_<base64 of 32 random bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_header(msg_id: str, timestamp: datetime, body: str, keys: Sequence[str]) -> str:
    """The ``webhook-signature`` value: one ``v1,...`` per secret, space-separated."""
    return " ".join(Webhook(key).sign(msg_id, timestamp, body) for key in keys)


def headers(msg_id: str, timestamp: datetime, body: str, keys: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt at ``timestamp``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(msg_id, timestamp, body, keys),
    }
