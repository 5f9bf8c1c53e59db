"""SmppSessions keeps one bound session per SMPP account, against a fake SMSC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tests.fakes.smsc import FakeSmsc, wait_until

from agentsms.providers.base import InboundMessage, ProviderAccount, Receipt, SendRequest
from agentsms.providers.registry import ProviderRegistry
from agentsms.providers.smpp import SmppOptions
from agentsms.providers.smpp_sessions import SmppSessions

OPTIONS = SmppOptions(connect_timeout=2.0, reconnect_initial=0.01, reconnect_max=0.1)


class Sink:
    async def receipts(self, account_id: str, receipts: Sequence[Receipt]) -> None:
        return None

    async def inbound(self, account_id: str, message: InboundMessage) -> None:
        return None


def _account(account_id: str, url: str, provider: str = "smpp") -> ProviderAccount:
    return ProviderAccount(
        id=account_id,
        provider=provider,
        name=account_id,
        credentials={"system_id": "agentsms", "password": "secret"},
        api_base_url=url,
        callback_base_url=f"http://x/callbacks/{provider}/{account_id}",
    )


async def test_sync_starts_restarts_and_stops_sessions() -> None:
    registry = ProviderRegistry()
    sessions = SmppSessions(registry, Sink(), options=OPTIONS)
    async with FakeSmsc() as first, FakeSmsc() as second:
        one = _account("pa_1", first.url)
        two = _account("pa_2", second.url)
        twilio = _account("pa_3", "https://api.twilio.com", provider="twilio")
        try:
            await sessions.sync([one, two, twilio])
            assert sorted(sessions.running()) == ["pa_1", "pa_2"]
            await wait_until(lambda: first.bound_sessions != [] and second.bound_sessions != [])
            provider = await registry.for_account("pa_1")  # where the dispatcher finds it
            assert provider is sessions.running()["pa_1"]
            request = SendRequest("msg_1", "+14155550100", "+4915112345678", "hi", "sms")
            assert [type(o).__name__ for o in await provider.send_many([request])] == ["SendResult"]

            await sessions.sync([one, two, twilio])  # unchanged: nothing restarts
            assert first.connections == 1

            changed = replace(one, credentials={"system_id": "agentsms", "password": "new"})
            await sessions.sync([changed])
            assert sorted(registry.loaded()) == ["pa_1"]
            await wait_until(lambda: first.connections == 2 and first.binds[-1][2] == 0x0E)
            await wait_until(lambda: second.bound_sessions == [])  # pa_2 unbound
            assert first.bound_sessions == []  # the old session of pa_1 unbound too
            assert await registry.for_account("pa_1") is not provider
        finally:
            await sessions.close()
        assert registry.loaded() == {}
