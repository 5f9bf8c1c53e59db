"""The handoff fence in the adapters: after the dispatcher's deadline, a send reaches no
carrier (its outcome says so); before it, or with no deadline, it goes as always."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from tests.fakes.carriers.plivo import FakePlivo
from tests.fakes.carriers.server import FakeCarrier
from tests.fakes.carriers.telnyx import FakeTelnyx
from tests.fakes.carriers.twilio import FakeTwilio
from tests.fakes.carriers.vonage import FakeVonage
from tests.fakes.smsc import FakeSmsc
from tests.unit.providers.test_smpp import FAST, Recorder, account, request

from agentsms.providers.base import ProviderAccount, SendRequest, SendResult
from agentsms.providers.carrier import HttpCarrier
from agentsms.providers.handoff import HANDOFF_LAPSED, handoff_deadline, is_lapsed
from agentsms.providers.plivo import PlivoProvider
from agentsms.providers.smpp import SmppProvider
from agentsms.providers.telnyx import TelnyxProvider
from agentsms.providers.twilio import TwilioProvider
from agentsms.providers.vonage import VonageProvider

CARRIERS: dict[str, tuple[type[HttpCarrier], type[FakeCarrier]]] = {
    "plivo": (PlivoProvider, FakePlivo),
    "telnyx": (TelnyxProvider, FakeTelnyx),
    "twilio": (TwilioProvider, FakeTwilio),
    "vonage": (VonageProvider, FakeVonage),
}


@pytest.fixture(scope="module", params=sorted(CARRIERS))
def carrier(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeCarrier]]:
    fake = CARRIERS[request.param][1]()
    fake.start()
    yield request.param, fake
    fake.stop()


@pytest.fixture
async def adapter(carrier: tuple[str, FakeCarrier]) -> AsyncIterator[HttpCarrier]:
    name, fake = carrier
    made = CARRIERS[name][0](
        ProviderAccount(
            id="pa_1",
            provider=name,
            name=name,
            credentials=fake.credentials(),  # type: ignore[attr-defined]
            api_base_url=fake.base_url,
            callback_base_url="https://agentsms.example.com/callbacks",
        )
    )
    yield made
    await made.aclose()


def _text(n: int) -> SendRequest:
    return SendRequest(
        reference=f"msg_{n:05d}",
        from_number="+14155550142",
        to_number="+14155550123",
        body="hi",
        channel="sms",
    )


async def test_an_http_send_after_the_deadline_never_reaches_the_carrier(
    carrier: tuple[str, FakeCarrier], adapter: HttpCarrier
) -> None:
    _, fake = carrier
    before = len(fake.requests)
    with handoff_deadline(time.time() + 60):
        [first] = await adapter.send_many([_text(1)])  # opens a keep-alive connection
    assert isinstance(first, SendResult)
    assert len(fake.requests) == before + 1

    with handoff_deadline(time.time() - 0.001):
        outcomes = await adapter.send_many([_text(2), _text(3)])
    assert [is_lapsed(outcome) for outcome in outcomes] == [True, True]
    assert {getattr(outcome, "code", None) for outcome in outcomes} == {HANDOFF_LAPSED}
    assert all(outcome.retryable for outcome in outcomes)  # type: ignore[union-attr]
    assert len(fake.requests) == before + 1  # neither request was written

    [after] = await adapter.send_many([_text(4)])  # no deadline: sends as always
    assert isinstance(after, SendResult)
    assert len(fake.requests) == before + 2


async def test_an_smpp_send_after_the_deadline_submits_nothing() -> None:
    async with FakeSmsc() as smsc:
        provider = SmppProvider(account(smsc), Recorder(), FAST)
        try:
            await provider.wait_bound()
            with handoff_deadline(time.time() - 0.001):
                outcomes = await provider.send_many([request(1), request(2)])
            assert [is_lapsed(outcome) for outcome in outcomes] == [True, True]
            assert smsc.submits == []
            with handoff_deadline(time.time() + 60):
                [again] = await provider.send_many([request(1)])
            assert isinstance(again, SendResult)
            assert len(smsc.submits) == 1
        finally:
            await provider.close()
