"""Name lookups at connect time: shared per host, and none for a literal address."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpcore
import pytest

from agentsms.config import Settings
from agentsms.webhooks.ssrf import UrlPolicy, VettingBackend


class SlowResolver:
    """A name server that takes ``seconds`` to answer and counts the questions it gets."""

    def __init__(self, answer: Sequence[str] | None, seconds: float = 0.2) -> None:
        self.answer = answer
        self.seconds = seconds
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        await asyncio.sleep(self.seconds)
        if self.answer is None:
            raise OSError(-2, "Name or service not known")
        return self.answer


def _backend(settings: Settings, resolver: SlowResolver) -> VettingBackend:
    return VettingBackend(policy=UrlPolicy.of(settings), resolver=resolver, dialer=None)


async def test_connections_opened_together_to_one_host_share_its_lookup() -> None:
    resolver = SlowResolver(["93.184.216.34"])
    backend = _backend(Settings(), resolver)
    answers = await asyncio.gather(*(backend.addresses("hooks.example", 443) for _ in range(20)))
    assert answers == [["93.184.216.34"]] * 20
    assert resolver.asked == ["hooks.example"]
    await backend.addresses("hooks.example", 443)  # a later connection asks afresh
    assert resolver.asked == ["hooks.example"] * 2


async def test_a_failed_lookup_fails_every_connection_waiting_for_it() -> None:
    resolver = SlowResolver(None)
    backend = _backend(Settings(), resolver)
    results = await asyncio.gather(
        *(backend.addresses("dead.invalid", 443) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, httpcore.ConnectError) for r in results), results
    assert "cannot resolve dead.invalid" in str(results[0])
    assert resolver.asked == ["dead.invalid"]


async def test_a_caller_that_gives_up_leaves_the_lookup_to_the_others() -> None:
    resolver = SlowResolver(["93.184.216.34"], seconds=0.3)
    backend = _backend(Settings(), resolver)
    impatient = asyncio.create_task(backend.addresses("hooks.example", 443))
    patient = asyncio.create_task(backend.addresses("hooks.example", 443))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert await patient == ["93.184.216.34"]
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert resolver.asked == ["hooks.example"]


@pytest.mark.parametrize("settings", [Settings(allow_insecure_urls=True), Settings()])
async def test_a_literal_address_is_dialled_without_a_lookup(settings: Settings) -> None:
    resolver = SlowResolver(["93.184.216.34"])
    backend = _backend(settings, resolver)
    if settings.allow_insecure_urls:
        assert await backend.addresses("127.0.0.1", 8080) == ["127.0.0.1"]
    assert await backend.addresses("93.184.216.35", 443) == ["93.184.216.35"]
    assert resolver.asked == []
