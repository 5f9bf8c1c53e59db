"""Webhook delivery is cheap: pooled keep-alive connections with a bound per origin, one
read of the endpoints per claimed group, one insert of the delivery log per group."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event

from agentsms.webhooks import delivery
from agentsms.webhooks.origin_limits import OriginLimits
from tests.conftest import Gateway, open_gateway
from tests.integration.test_webhooks_delivery import (
    Receiver,
    create,
    insecure_app,  # noqa: F401 (the app fixture)
    receiver,  # noqa: F401 (the receiver fixture)
    send_event,
    use_handler,
)
from tests.raw_http import read_request


class KeepAliveReceiver:
    """An HTTP/1.1 receiver that keeps connections open and counts them."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await read_request(reader)
                self.requests += 1
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def hooks(insecure_app: FastAPI) -> AsyncIterator[Gateway]:  # noqa: F811
    async with open_gateway(insecure_app, "pooling") as opened:
        yield opened


@pytest.fixture
async def keepalive() -> AsyncIterator[KeepAliveReceiver]:
    found = KeepAliveReceiver()
    server = await asyncio.start_server(found.serve, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found


async def test_origin_limits_bound_each_origin_and_forget_idle_ones() -> None:
    limits = OriginLimits(per_origin=3)
    running: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}
    waits: list[bool] = []

    async def request(name: str) -> None:
        async with limits.hold(f"https://{name}.example:8443/hook?n=1") as waited:
            waits.append(waited)
            running[name] += 1
            peak[name] = max(peak[name], running[name])
            await asyncio.sleep(0.01)
            running[name] -= 1

    await asyncio.gather(*(request(name) for name in "ab" * 10))
    assert peak == {"a": 3, "b": 3}
    assert waits.count(False) == 6  # three per origin went at once, the rest waited
    assert limits.origins == 0


async def test_deliveries_reuse_pooled_connections(
    hooks: Gateway, keepalive: KeepAliveReceiver
) -> None:
    handler = use_handler(hooks)
    await create(hooks, f"http://127.0.0.1:{keepalive.port}/hook")
    for n in range(30):
        await send_event(hooks, n=n)
    await hooks.drain()
    first = keepalive.connections
    assert keepalive.requests == 30
    assert 1 <= first <= delivery.PER_ORIGIN
    for n in range(30):
        await send_event(hooks, n=n)
    await hooks.drain()
    await handler.idle()
    assert keepalive.requests == 60
    assert keepalive.connections == first  # the second round opened none


async def test_a_group_reads_its_endpoints_once_and_logs_in_one_insert(
    hooks: Gateway,
    keepalive: KeepAliveReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On a loaded machine an attempt may start more than FRESH_FOR after the group's read
    # (and rightly read again): that is the next test's subject, not this one's.
    monkeypatch.setattr(delivery, "FRESH_FOR", 60.0)
    use_handler(hooks)
    await create(hooks, f"http://127.0.0.1:{keepalive.port}/one")
    await create(hooks, f"http://127.0.0.1:{keepalive.port}/two")
    for n in range(5):
        await send_event(hooks, n=n)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    engines = [engine.sync_engine for engine in hooks.db.engines]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        assert await hooks.worker.run_once() == 10
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
    assert keepalive.requests == 10
    assert sum("FROM webhook_endpoints" in sql for sql in statements) == 1
    assert sum(sql.startswith("INSERT INTO webhook_deliveries") for sql in statements) == 1


async def test_attempts_that_waited_less_than_fresh_for_use_the_group_s_read(
    hooks: Gateway,
    keepalive: KeepAliveReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twelve attempts to a quick origin that takes two at a time: while the group's read
    of the endpoint is fresh, those that waited for their turn read it no more; once it is
    not (``FRESH_FOR`` below zero), every attempt reads it again."""
    monkeypatch.setattr(delivery, "PER_ORIGIN", 2)
    use_handler(hooks)
    await create(hooks, f"http://127.0.0.1:{keepalive.port}/quick")
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    reads: list[int] = []
    for fresh_for in (60.0, -1.0):
        monkeypatch.setattr(delivery, "FRESH_FOR", fresh_for)
        for n in range(12):
            await send_event(hooks, n=n)
        statements.clear()
        engines = [engine.sync_engine for engine in hooks.db.engines]
        for engine in engines:
            event.listen(engine, "before_cursor_execute", seen)
        try:
            assert await hooks.worker.run_once() >= 12
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", seen)
        reads.append(sum("FROM webhook_endpoints" in sql for sql in statements))
    assert keepalive.requests == 24
    assert reads[0] == 1
    assert reads[1] > 1


async def test_attempts_waiting_for_a_busy_origin_leave_the_others_their_turn(
    hooks: Gateway,
    receiver: Receiver,  # noqa: F811
    keepalive: KeepAliveReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten attempts to a slow origin that takes two at a time, with four attempts at a time
    in all: the one attempt to another origin goes at once, not after the slow ones."""
    monkeypatch.setattr(delivery, "CONCURRENCY", 4)
    monkeypatch.setattr(delivery, "PER_ORIGIN", 2)
    handler = use_handler(hooks)
    await create(hooks, receiver.url("/slow"))
    receiver.on("/slow", *[(200, {}, 1.0)] * 10)
    for n in range(10):
        await send_event(hooks, n=n)
    await create(hooks, f"http://127.0.0.1:{keepalive.port}/quick")
    # Both endpoints get the next event: ten attempts to the slow origin are ahead of it.
    await send_event(hooks, n=10)
    assert await hooks.worker.run_once() == 12
    assert keepalive.requests == 1  # answered within the handler's inline wait
    await handler.idle()
    assert len(receiver.at("/slow")) == 11
