"""A locked or unreachable database: requests answer 503 problem+json with ``Retry-After``
within the database timeout, and a request refused that way is never stored afterwards."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from agentsms.app import create_app
from agentsms.store import migrate, tables
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for
from tests.integration.helpers import assert_problem, count

TIMEOUT = 1.5
"""``database_timeout_seconds`` of these apps: each refusal must come within it (+ slack)."""
SLACK = 1.5


@asynccontextmanager
async def app_on(url: str, **overrides: object) -> AsyncIterator[FastAPI]:
    app = create_app(settings_for(url, database_timeout_seconds=TIMEOUT, **overrides))
    async with app.router.lifespan_context(app):
        yield app


async def _post(
    client: httpx.AsyncClient, index: int, **headers: str
) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = await client.post(
        "/v1/messages", json={"to": "+14155552671", "body": f"fault {index}"}, headers=headers
    )
    return time.monotonic() - started, response


def assert_unavailable(elapsed: float, response: httpx.Response) -> None:
    body = assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "2"  # the timeout, rounded up
    assert "not carried out" in body["detail"]
    assert elapsed < TIMEOUT + SLACK, elapsed


async def _messages(gateway: Gateway) -> int:
    return await count(gateway, tables.messages, tables.messages.c.project_id == gateway.project_id)


async def test_a_locked_sqlite_file_answers_503_in_time_and_stores_nothing_later(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locked.db'}"
    await migrate.upgrade_async(url)
    async with app_on(url) as app, open_gateway(app) as gateway:
        client = gateway.client
        scheduled = await client.post(
            "/v1/messages", json={"to": "+14155552671", "body": "later", "send_at": 4102444800}
        )
        assert scheduled.status_code == 202
        before = await _messages(gateway)

        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic()
        try:
            # A first wave goes into one intake transaction that waits for the lock (and
            # fails at TIMEOUT). A second wave queues behind it and runs out of time before
            # any transaction takes it: the case that used to be committed after its clients
            # gave up. A cancel waits for the process's write turn, then for the lock.
            first = [asyncio.create_task(_post(client, i)) for i in range(5)]
            await asyncio.sleep(0.5)
            second = [asyncio.create_task(_post(client, 10 + i)) for i in range(5)]
            keyed = asyncio.create_task(_post(client, 99, **{"Idempotency-Key": "fault-1"}))
            cancel_started = time.monotonic()
            canceled = await client.post(f"/v1/messages/{scheduled.json()['id']}/cancel")
            cancel_elapsed = time.monotonic() - cancel_started
            # Released as soon as the second wave was refused, while the transaction meant
            # for it may still wait for the lock: what it writes then must not include them.
            refused = await asyncio.gather(*second, keyed)
        finally:
            holder.rollback()
            holder.close()
        assert time.monotonic() - locked_at >= TIMEOUT
        for elapsed, response in await asyncio.gather(*first):
            assert_unavailable(elapsed, response)
        for elapsed, response in refused:
            assert_unavailable(elapsed, response)
            assert "nothing was stored" in response.json()["detail"]
        assert_unavailable(cancel_elapsed, canceled)

        await asyncio.sleep(TIMEOUT)  # anything left over would have been written by now
        assert await _messages(gateway) == before
        status = (await client.get(f"/v1/messages/{scheduled.json()['id']}")).json()["status"]
        assert status == "scheduled"

        # The database is back: the same idempotency key is new (nothing was stored for it).
        _, retried = await _post(client, 99, **{"Idempotency-Key": "fault-1"})
        assert retried.status_code == 202
        assert retried.headers.get("Idempotent-Replayed") != "true"
        assert await _messages(gateway) == before + 1
        canceled = await client.post(f"/v1/messages/{scheduled.json()['id']}/cancel")
        assert canceled.status_code == 200


async def test_a_locked_postgres_table_answers_503_in_time(backend_url: str) -> None:
    if backend_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's lock_timeout")
    async with app_on(backend_url) as app, open_gateway(app) as gateway:
        holder = await asyncpg.connect(backend_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
            results = await asyncio.gather(*(_post(gateway.client, i) for i in range(5)))
            await transaction.rollback()
        finally:
            await holder.close()
        for elapsed, response in results:
            assert_unavailable(elapsed, response)
        assert await _messages(gateway) == 0
        _, accepted = await _post(gateway.client, 0)
        assert accepted.status_code == 202


async def test_an_unreachable_postgres_answers_503_not_500() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with (
        app_on(f"postgresql+asyncpg://agentsms@127.0.0.1:{port}/none") as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": "Bearer ask_whatever"},
        ) as client,
    ):
        for request in (
            client.post("/v1/messages", json={"to": "+14155552671", "body": "x"}),
            client.get("/v1/messages"),
        ):
            started = time.monotonic()
            response = await request
            body = assert_problem(response, 503, "database_unavailable")
            assert "cannot be reached" in body["detail"]
            assert response.headers["Retry-After"] == "2"
            assert time.monotonic() - started < TIMEOUT + SLACK
