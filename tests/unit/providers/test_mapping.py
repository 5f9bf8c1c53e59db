"""Carrier statuses and errors mapped to agentsms statuses and to retry or fail."""

from __future__ import annotations

import httpx
import pytest

from agentsms.providers import plivo, telnyx, twilio, vonage
from agentsms.providers.carrier import http_error, retry_after_seconds

FINAL = {"sent", "delivered", "undelivered", "failed", None}


@pytest.mark.parametrize("module", [twilio, telnyx, vonage, plivo])
def test_every_status_maps_to_ours(module: object) -> None:
    statuses = module.STATUSES  # type: ignore[attr-defined]
    assert set(statuses.values()) <= FINAL
    assert statuses.get("delivered") == "delivered"
    assert not (module.PERMANENT & module.RETRYABLE)  # type: ignore[attr-defined]


def test_twilio_documented_codes() -> None:
    for code in ("21211", "21610", "21614", "30003", "30004", "30005", "30006", "30007"):
        assert code in twilio.PERMANENT
        assert twilio.ERRORS[code]
    assert "20429" in twilio.RETRYABLE
    assert "30001" in twilio.RETRYABLE


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {})


def test_http_errors_retry_on_429_and_5xx_and_honour_retry_after() -> None:
    throttled = http_error(_response(429, {"Retry-After": "7"}), "20429", "slow down")
    assert throttled.retryable
    assert throttled.retry_after == 7.0
    outage = http_error(_response(503), "503", "unavailable")
    assert outage.retryable
    assert outage.retry_after is None
    refused = http_error(_response(400), "21610", "opted out", permanent=twilio.PERMANENT)
    assert not refused.retryable
    carrier_retry = http_error(_response(400), "30001", "queue", retryable=twilio.RETRYABLE)
    assert carrier_retry.retryable
    unknown_4xx = http_error(_response(400), "99999", "?")
    assert not unknown_4xx.retryable


def test_retry_after_as_http_date() -> None:
    later = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert (retry_after_seconds(later) or 0) > 1e6
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
