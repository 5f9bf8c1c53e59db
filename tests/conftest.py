"""Shared fixtures: a real database (SQLite always, PostgreSQL when configured) and the app.

``AGENTSMS_TEST_POSTGRES_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``)
adds the PostgreSQL backend to every test that uses the ``backend_url`` fixture.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from agentsms.app import create_app
from agentsms.config import Settings
from agentsms.core import projects
from agentsms.core.numbers import add_simulator_number
from agentsms.core.sending import Outbox
from agentsms.jobs.worker import Worker
from agentsms.runtime import build_worker
from agentsms.store import migrate
from agentsms.store.db import Database
from tests.databases import create_postgres_database, drop_postgres_database

POSTGRES_URL = os.environ.get("AGENTSMS_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


async def reset_postgres(url: str) -> None:
    """Empty the PostgreSQL test database and bring it to the newest schema."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    await migrate.upgrade_async(url)


@pytest.fixture(scope="session", params=BACKENDS)
async def backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated, empty database URL for this test session, one per backend."""
    if request.param == "postgres":
        assert POSTGRES_URL is not None
        # Each pytest-xdist worker process gets a database of its own.
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        name = f"{make_url(POSTGRES_URL).database}_{worker}" if worker else None
        url = await create_postgres_database(POSTGRES_URL, name) if name else POSTGRES_URL
        await reset_postgres(url)
        yield url
        if name:
            await drop_postgres_database(POSTGRES_URL, name)
        return
    path: Path = tmp_path_factory.mktemp("db") / "agentsms.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate.upgrade_async(url)
    yield url


def test_settings(url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": url,
        "simulator_delivery_delay_seconds": 0.0,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "worker_poll_interval": 0.02,
        "default_rate_limit_per_second": 10_000,
        # Every test client shares one address; tests of the limit set their own.
        "auth_failures_per_minute": 100_000,
        "secret_key": "test-dashboard-secret",
        # Tests read /metrics right after changing messages.
        "metrics_counts_max_age_seconds": 0.0,
    }
    base.update(overrides)
    return Settings.model_validate(base)


@dataclass
class Gateway:
    """A running app (no background worker) plus a fresh project and a client for it."""

    app: FastAPI
    db: Database
    settings: Settings
    worker: Worker
    client: httpx.AsyncClient
    project_id: str
    api_key: str

    @property
    def outbox(self) -> Outbox:
        """The app's one way to send."""
        outbox: Outbox = self.app.state.agentsms.outbox
        return outbox

    async def drain(self, rounds: int = 50) -> int:
        """Run due jobs until none are left due now (receipts included)."""
        total = 0
        for _ in range(rounds):
            ran = await self.worker.run_once()
            total += ran
            if ran == 0:
                break
        return total

    async def new_project(self) -> tuple[str, httpx.AsyncClient]:
        """Another project with its own key and simulator number, and a client for it."""
        async with self.db.write() as conn:
            project, key = await projects.create_project(conn, "other")
            await add_simulator_number(conn, project.id, "+14155550199")
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        )
        return project.id, client


@pytest.fixture(scope="session")
async def app_under_test(backend_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(test_settings(backend_url))
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def open_gateway(app: FastAPI, name: str = "test") -> AsyncIterator[Gateway]:
    """A fresh project with one simulator number on a running ``app``, and a client for it."""
    state = app.state.agentsms
    async with state.db.write() as conn:
        project, key = await projects.create_project(conn, name)
        await add_simulator_number(conn, project.id, "+14155550100")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        yield Gateway(
            app=app,
            db=state.db,
            settings=state.settings,
            worker=build_worker(state.db, state.providers, state.settings, outbox=state.outbox),
            client=client,
            project_id=project.id,
            api_key=key,
        )


@pytest.fixture
async def gateway(app_under_test: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(app_under_test) as opened:
        yield opened


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    return "asyncio"
