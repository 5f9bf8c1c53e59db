"""Checking credentials against a carrier that answers 5xx or cannot be reached: each HTTP
adapter says which carrier, and neither is a rejection of the credentials."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from tests.fakes.carriers.plivo import FakePlivo
from tests.fakes.carriers.telnyx import FakeTelnyx
from tests.fakes.carriers.twilio import FakeTwilio
from tests.fakes.carriers.vonage import FakeVonage
from tests.integration.conversation_helpers import QuietHandler, serve_on_loopback

from agentsms.providers.base import CarrierUnreachable, ProviderAccount
from agentsms.providers.carrier import HttpCarrier
from agentsms.providers.plivo import PlivoProvider
from agentsms.providers.telnyx import TelnyxProvider
from agentsms.providers.twilio import TwilioProvider
from agentsms.providers.vonage import VonageProvider

CARRIERS: dict[str, tuple[type[HttpCarrier], type, str]] = {
    "plivo": (PlivoProvider, FakePlivo, "Plivo"),
    "telnyx": (TelnyxProvider, FakeTelnyx, "Telnyx"),
    "twilio": (TwilioProvider, FakeTwilio, "Twilio"),
    "vonage": (VonageProvider, FakeVonage, "Vonage"),
}


class Outage(QuietHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def outage() -> Iterator[str]:
    with serve_on_loopback(Outage) as base:
        yield base


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _adapter(name: str, base_url: str) -> tuple[HttpCarrier, str]:
    adapter, fake, title = CARRIERS[name]
    account = ProviderAccount(
        id="pa_1",
        provider=name,
        name=name,
        credentials=fake().credentials(),
        api_base_url=base_url,
        callback_base_url="https://agentsms.example.com/callbacks",
    )
    return adapter(account), title


@pytest.mark.parametrize("name", sorted(CARRIERS))
async def test_a_5xx_answer_is_unreachable_not_rejected(name: str, outage: str) -> None:
    adapter, title = _adapter(name, outage)
    try:
        with pytest.raises(CarrierUnreachable) as raised:
            await adapter.check_credentials()
    finally:
        await adapter.aclose()
    assert str(raised.value) == f"{title} answered 503"


@pytest.mark.parametrize("name", sorted(CARRIERS))
async def test_a_carrier_that_cannot_be_reached_is_unreachable(name: str) -> None:
    adapter, title = _adapter(name, _closed_port())
    try:
        with pytest.raises(CarrierUnreachable) as raised:
            await adapter.check_credentials()
    finally:
        await adapter.aclose()
    assert str(raised.value).startswith(f"{title} could not be reached: ")
