"""Guessing credentials is throttled per client address: past a few failed API-key checks or
dashboard sign-ins in a minute, that address gets 429 with ``Retry-After`` (problem+json on
the API, the vendor's shape on compat surfaces, a page on the dashboard); other addresses
and successful requests are not slowed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.app import create_app
from agentsms.core import projects
from agentsms.core.projects import Project
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for
from tests.integration.dashboard_helpers import Browser, field_error
from tests.integration.helpers import assert_problem

LIMIT = 3
ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.9"


@pytest.fixture
async def gateway(backend_url: str) -> AsyncIterator[Gateway]:
    """An app of its own (a fresh failure count) allowing ``LIMIT`` failures a minute; keys
    are not cached, so that every request is checked."""
    settings = settings_for(backend_url, auth_failures_per_minute=LIMIT, api_key_cache_seconds=0)
    app = create_app(settings)
    async with app.router.lifespan_context(app), open_gateway(app, "throttled") as opened:
        yield opened


@asynccontextmanager
async def client_from(
    app: FastAPI, address: str, api_key: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


def assert_retry_after(response: httpx.Response) -> None:
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_failed_api_key_checks_are_throttled_per_address(gateway: Gateway) -> None:
    app = gateway.app
    async with (
        client_from(app, ATTACKER, "ask_guess") as guesser,
        client_from(app, ATTACKER, gateway.api_key) as same_address,
        client_from(app, NEIGHBOUR, gateway.api_key) as neighbour,
        client_from(app, NEIGHBOUR, "ask_typo") as neighbour_typo,
    ):
        # Successful requests are never counted.
        for _ in range(LIMIT * 3):
            assert (await same_address.get("/v1/project")).status_code == 200
        for _ in range(LIMIT):
            assert_problem(await guesser.get("/v1/project"), 401, "unauthorized")
        throttled = await guesser.get("/v1/project")
        body = assert_problem(throttled, 429, "rate_limited")
        assert "failed credential checks" in body["detail"]
        assert_retry_after(throttled)
        # The address is refused whatever key it tries now...
        assert_problem(await same_address.get("/v1/project"), 429, "rate_limited")
        # ...on the vendor surfaces too, in the vendor's shape.
        vendor = await guesser.get("/compat/agentphone/v1/agents")
        assert vendor.status_code == 429
        assert_retry_after(vendor)
        # Another address is not slowed, and has its own count.
        assert (await neighbour.get("/v1/project")).status_code == 200
        assert_problem(await neighbour_typo.get("/v1/project"), 401, "unauthorized")


async def test_failed_dashboard_sign_ins_are_throttled_per_address(gateway: Gateway) -> None:
    async with (
        client_from(gateway.app, ATTACKER) as attacker_http,
        client_from(gateway.app, NEIGHBOUR) as neighbour_http,
    ):
        attacker = Browser(attacker_http)
        await attacker.get("/dashboard/login")
        for _ in range(LIMIT):
            refused = await attacker.post("/dashboard/login", {"api_key": "ask_guess"})
            assert refused.status_code == 401
        throttled = await attacker.post("/dashboard/login", {"api_key": gateway.api_key})
        assert throttled.status_code == 429
        assert_retry_after(throttled)
        message = field_error(throttled.text, "api_key") or ""
        assert message.startswith("Too many failed sign-ins from your address")
        assert (await attacker.get("/dashboard")).status_code == 303  # not signed in
        # API-key checks from that address are refused as well: one count per address.
        async with client_from(gateway.app, ATTACKER, gateway.api_key) as api:
            assert_problem(await api.get("/v1/project"), 429, "rate_limited")
        neighbour = Browser(neighbour_http)
        assert (await neighbour.sign_in(gateway.api_key)).status_code == 303
        assert (await neighbour.get("/dashboard")).status_code == 200


async def test_concurrent_requests_share_one_lookup_of_their_key(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests that arrive while their key is being looked up take that lookup's project
    (one database read for all of them), each answered as if it had looked itself."""
    lookups: list[str] = []
    authenticate = projects.authenticate

    async def counted(conn: AsyncConnection, api_key: str) -> Project:
        lookups.append(api_key)
        await asyncio.sleep(0.05)  # still looking when the others arrive
        return await authenticate(conn, api_key)

    monkeypatch.setattr(projects, "authenticate", counted)
    async with client_from(gateway.app, NEIGHBOUR, gateway.api_key) as client:
        answers = await asyncio.gather(*(client.get("/v1/project") for _ in range(8)))
        assert [a.status_code for a in answers] == [200] * 8
        assert {a.json()["id"] for a in answers} == {gateway.project_id}
        assert len(lookups) == 1
        # Not cached (``api_key_cache_seconds=0``): the next request looks again.
        assert (await client.get("/v1/project")).status_code == 200
        assert len(lookups) == 2


async def test_concurrent_failed_checks_each_count(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed lookup is not shared: each request waiting on it checks its key itself, so
    each failure counts towards the address's limit."""
    lookups: list[str] = []
    authenticate = projects.authenticate

    async def counted(conn: AsyncConnection, api_key: str) -> Project:
        lookups.append(api_key)
        await asyncio.sleep(0.05)
        return await authenticate(conn, api_key)

    monkeypatch.setattr(projects, "authenticate", counted)
    async with client_from(gateway.app, ATTACKER, "ask_guess") as guesser:
        answers = await asyncio.gather(*(guesser.get("/v1/project") for _ in range(LIMIT)))
        assert [a.status_code for a in answers] == [401] * LIMIT
        assert len(lookups) == LIMIT
        throttled = await guesser.get("/v1/project")
    assert throttled.status_code == 429
    assert_retry_after(throttled)
