"""Our signatures verify with the reference ``standardwebhooks`` package, and only as sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agentsms.webhooks import signing
from agentsms.webhooks.delivery import encode, signing_keys

SECRET = signing.new_secret()
OLD_SECRET = signing.new_secret()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=30), "type": st.text(max_size=20), "data": json_values}
)


def _headers(msg_id: str, body: str, keys: list[str]) -> dict[str, str]:
    return signing.headers(msg_id, datetime.now(UTC), body, keys)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads, position=st.integers(min_value=0), delta=st.integers(1, 255))
def test_random_payloads_verify_and_any_changed_byte_fails(
    payload: dict[str, object], position: int, delta: int
) -> None:
    body = encode(payload)
    msg_id = "evt_" + str(abs(hash(body)))
    headers = _headers(msg_id, body, [SECRET])
    assert Webhook(SECRET).verify(body.encode(), headers) == json.loads(body)

    raw = bytearray(body.encode())
    index = position % len(raw)
    raw[index] = (raw[index] + delta) % 256
    with pytest.raises((WebhookVerificationError, UnicodeDecodeError)):
        Webhook(SECRET).verify(bytes(raw), headers)


def test_other_secret_fails() -> None:
    body = encode({"id": "evt_1", "type": "message.sent", "data": {}})
    headers = _headers("evt_1", body, [SECRET])
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(body, headers)


def test_changed_id_or_timestamp_fails() -> None:
    body = encode({"id": "evt_1", "type": "message.sent", "data": {}})
    headers = _headers("evt_1", body, [SECRET])
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, headers | {"webhook-id": "evt_2"})
    stamp = str(int(headers["webhook-timestamp"]) - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, headers | {"webhook-timestamp": stamp})


def test_rotation_sends_both_signatures_and_either_secret_verifies() -> None:
    now = datetime.now(UTC)
    later = datetime(2999, 1, 1, tzinfo=UTC)
    keys = signing_keys(
        {"secret": SECRET, "previous_secret": OLD_SECRET, "previous_secret_expires_at": later}, now
    )
    assert keys == [SECRET, OLD_SECRET]
    body = encode({"id": "evt_r", "type": "message.sent", "data": {"x": 1}})
    headers = _headers("evt_r", body, keys)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(SECRET).verify(body, headers) == {
        "id": "evt_r",
        "type": "message.sent",
        "data": {"x": 1},
    }
    assert Webhook(OLD_SECRET).verify(body, headers)["id"] == "evt_r"


def test_expired_previous_secret_no_longer_signs() -> None:
    now = datetime.now(UTC)
    past = datetime(2000, 1, 1, tzinfo=UTC)
    keys = signing_keys(
        {"secret": SECRET, "previous_secret": OLD_SECRET, "previous_secret_expires_at": past}, now
    )
    assert keys == [SECRET]


def test_secret_format() -> None:
    assert SECRET.startswith("whsec_")
    assert signing.new_secret() != SECRET
    Webhook(SECRET)  # the reference implementation accepts it
