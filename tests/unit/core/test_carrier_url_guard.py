"""An HTTP carrier account's API URL is the tenant's: the worker reaches it only through the
SSRF guard, so an account saved while a private address was allowed never reaches it later."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.fakes.carriers.plivo import FakePlivo
from tests.integration.conversation_helpers import QuietHandler, serve_on_loopback

from agentsms.config import Settings
from agentsms.core.provider_accounts import build_adapter
from agentsms.providers.base import CarrierUnreachable, ProviderAccount, SendError, SendRequest

SEEN: list[str] = []


class Carrier(QuietHandler):
    def do_GET(self) -> None:
        SEEN.append(self.path)
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()

    do_POST = do_GET


@pytest.fixture
def carrier() -> Iterator[str]:
    SEEN.clear()
    with serve_on_loopback(Carrier) as base:
        yield base


def _account(base_url: str) -> ProviderAccount:
    return ProviderAccount(
        id="pa_1",
        provider="plivo",
        name="plivo",
        credentials=FakePlivo().credentials(),
        api_base_url=base_url,
        callback_base_url="https://agentsms.example.com/callbacks",
    )


async def test_a_loopback_carrier_url_is_never_called(carrier: str) -> None:
    adapter = build_adapter(_account(carrier), None, Settings())
    try:
        with pytest.raises(CarrierUnreachable, match="must be an https URL"):
            await adapter.check_credentials()
        request = SendRequest("msg_1", "+14155550100", "+14155550101", "hi", "sms")
        [outcome] = await adapter.send_many([request])
    finally:
        await adapter.aclose()
    assert isinstance(outcome, SendError)
    assert outcome.retryable is False  # refused again on every try
    assert SEEN == []


async def test_the_operator_allow_list_reaches_a_private_carrier(carrier: str) -> None:
    adapter = build_adapter(_account(carrier), None, Settings(trusted_private_hosts="127.0.0.1"))
    try:
        with pytest.raises(CarrierUnreachable, match="answered 503"):
            await adapter.check_credentials()
    finally:
        await adapter.aclose()
    assert len(SEEN) == 1
