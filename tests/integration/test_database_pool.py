"""The PostgreSQL connection pool: idle connections are checked before use, busy ones not."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from agentsms.store import db as db_module
from agentsms.store.db import Database


def _postgres_only(url: str) -> None:
    if url.startswith("sqlite"):
        pytest.skip("the ping applies to the PostgreSQL pool")


async def _backend_pid(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_that_died_while_idle_is_replaced(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(backend_url)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.05)
    db = Database(backend_url, pool_size=1)
    try:
        first = await _backend_pid(db)
        admin = await asyncpg.connect(backend_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
        second = await _backend_pid(db)
        assert second != first
    finally:
        await db.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(backend_url)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.3)
    db = Database(backend_url, pool_size=1)
    pings: list[Any] = []
    ping = db.engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counting_ping)
    try:
        for _ in range(5):
            await _backend_pid(db)
        assert pings == []
        await asyncio.sleep(0.4)
        await _backend_pid(db)
        assert len(pings) == 1
    finally:
        await db.dispose()


async def test_connections_a_burst_opened_are_kept_for_the_next_burst(backend_url: str) -> None:
    _postgres_only(backend_url)
    db = Database(backend_url, pool_size=2)

    async def held_backend() -> int:
        async with db.read() as conn:
            pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            await asyncio.sleep(0.05)  # all of the burst at once
        return pid

    try:
        first = set(await asyncio.gather(*(held_backend() for _ in range(6))))
        second = set(await asyncio.gather(*(held_backend() for _ in range(6))))
        assert len(first) == 6
        # None opened anew: a new connection is a server process and every statement
        # prepared again.
        assert second == first
    finally:
        await db.dispose()
