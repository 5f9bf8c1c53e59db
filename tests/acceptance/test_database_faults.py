"""A real ``agentsms serve`` whose SQLite file another process holds locked: 200 concurrent
POSTs each answer 503 problem+json with ``Retry-After`` within the 5 s database timeout
(none hangs), and nothing of them is written once the lock is released, not even for the
clients that gave up before their answer."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.acceptance.processes import API_KEY, Cluster, Inspector

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

DEFAULT_TIMEOUT = 5.0  # AGENTSMS_DATABASE_TIMEOUT_SECONDS, left at its default


async def _post(http: httpx.AsyncClient, index: int, patience: float) -> tuple[float, object]:
    started = time.monotonic()
    try:
        response: object = await http.post(
            "/v1/messages",
            json={"to": "+14155552671", "body": f"locked {index}"},
            timeout=patience,
        )
    except httpx.TimeoutException as gave_up:
        response = gave_up
    return time.monotonic() - started, response


async def test_a_locked_sqlite_file_is_503_in_time_and_nothing_is_stored_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agentsms.db"
    cluster = Cluster(tmp_path, f"sqlite+aiosqlite:///{path}")
    inspector = Inspector(cluster.database_url)
    try:
        await asyncio.to_thread(cluster.migrate)
        api = await cluster.start_api()
        async with httpx.AsyncClient(
            base_url=api.url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            limits=httpx.Limits(max_connections=None),  # all 200 at once
        ) as http:
            assert (await http.get("/v1/messages")).status_code == 200  # the key is cached
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                # 150 clients wait for their answer; 50 give up after a second, as the
                # clients did whose sends used to be committed after they had left.
                results = await asyncio.gather(
                    *(_post(http, i, 30.0 if i % 4 else 1.0) for i in range(200))
                )
                # Hold the lock past every answer: a withdrawn send must stay withdrawn.
                await asyncio.sleep(1.0)
            finally:
                holder.rollback()
                holder.close()
            answered = [(t, r) for t, r in results if isinstance(r, httpx.Response)]
            gave_up = [r for _, r in results if isinstance(r, httpx.TimeoutException)]
            assert len(answered) == 150
            assert len(gave_up) == 50
            for elapsed, response in answered:
                assert isinstance(response, httpx.Response)
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["code"] == "database_unavailable"
                assert response.headers["Retry-After"] == "5"
                # Each is answered within the timeout of its arrival; 200 connections take
                # up to ~2 s to reach a server on a busy machine.
                assert elapsed < DEFAULT_TIMEOUT + 3.5, elapsed
            await asyncio.sleep(DEFAULT_TIMEOUT)  # anything left would be written by now
            assert await inspector.scalar("SELECT count(*) FROM messages") == 0

            accepted = await http.post("/v1/messages", json={"to": "+14155552671", "body": "ok"})
            assert accepted.status_code == 202, accepted.text
            assert await inspector.scalar("SELECT count(*) FROM messages") == 1
    finally:
        cluster.close()
        await inspector.close()
