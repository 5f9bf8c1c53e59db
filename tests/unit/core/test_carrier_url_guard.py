"""A carrier account's API URL or SMSC address is the tenant's: it is vetted when saved, and
the worker reaches it only through the SSRF guard, so an account saved while a private
address was allowed never reaches it later."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.fakes.carriers.plivo import FakePlivo
from tests.fakes.smsc import FakeSmsc
from tests.integration.conversation_helpers import QuietHandler, serve_on_loopback

from agentsms.config import Settings
from agentsms.core.provider_accounts import AccountInput, build_adapter, validate
from agentsms.errors import ValidationFailed
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


def _smpp_account(smsc: FakeSmsc) -> ProviderAccount:
    return ProviderAccount(
        id="pa_smpp",
        provider="smpp",
        name="operator",
        credentials={"system_id": "agentsms", "password": "secret", "system_type": "agent"},
        api_base_url=smsc.url,
        callback_base_url="http://127.0.0.1/callbacks/smpp/pa_smpp",
    )


async def test_an_smsc_on_loopback_is_never_connected_to() -> None:
    async with FakeSmsc() as smsc:
        adapter = build_adapter(_smpp_account(smsc), None, Settings())
        with pytest.raises(CarrierUnreachable, match="loopback"):
            await adapter.check_credentials()
        assert smsc.connections == 0

        trusted = Settings(trusted_private_hosts="127.0.0.1")
        await build_adapter(_smpp_account(smsc), None, trusted).check_credentials()
        assert smsc.connections == 1
        assert smsc.binds == [("agentsms", "secret", 0)]


@pytest.mark.parametrize(
    ("api_base_url", "reason"),
    [("smpp://127.0.0.1:2775", "loopback"), ("smpps://[::ffff:10.0.0.1]:3550", "private")],
)
def test_an_smsc_inside_is_refused_when_saved(api_base_url: str, reason: str) -> None:
    spec = AccountInput(
        provider="smpp",
        name="operator",
        credentials={"system_id": "agentsms", "password": "secret"},
        api_base_url=api_base_url,
    )
    with pytest.raises(ValidationFailed) as refused:
        validate("proj_1", spec, Settings())
    [error] = refused.value.errors
    assert error.field == "api_base_url"
    assert reason in error.message
    assert validate("proj_1", spec, Settings(trusted_private_hosts="127.0.0.1,10.0.0.0/8"))
