"""Helpers shared by the integration tests: reading the database and waiting for work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Table, func, select

from agentsms.core import statuses
from agentsms.store import tables
from tests.conftest import Gateway

Row = RowMapping


async def message_rows(gateway: Gateway, project_id: str | None = None) -> list[Row]:
    """Every message row of a project (the gateway's by default), oldest first."""
    query = (
        select(tables.messages)
        .where(tables.messages.c.project_id == (project_id or gateway.project_id))
        .order_by(tables.messages.c.id)
    )
    async with gateway.db.read() as conn:
        return list((await conn.execute(query)).mappings().all())


async def message_row(gateway: Gateway, message_id: str) -> Row:
    query = select(tables.messages).where(tables.messages.c.id == message_id)
    async with gateway.db.read() as conn:
        row = (await conn.execute(query)).mappings().first()
    assert row is not None, f"message {message_id} is not in the database"
    return row


async def count(gateway: Gateway, table: Table, *where: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(table).where(*where)
    async with gateway.db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def jobs_for(gateway: Gateway, ref: str) -> list[Row]:
    query = select(tables.jobs).where(tables.jobs.c.ref == ref).order_by(tables.jobs.c.id)
    async with gateway.db.read() as conn:
        return list((await conn.execute(query)).mappings().all())


async def sim_sends(gateway: Gateway, reference: str) -> list[Row]:
    """What the simulator carrier logged for one of our message ids."""
    query = select(tables.simulator_sends).where(tables.simulator_sends.c.reference == reference)
    async with gateway.db.read() as conn:
        return list((await conn.execute(query)).mappings().all())


async def idempotency_row(gateway: Gateway, key: str, project_id: str | None = None) -> Row | None:
    keys = tables.idempotency_keys
    query = select(keys).where(
        keys.c.project_id == (project_id or gateway.project_id), keys.c.key == key
    )
    async with gateway.db.read() as conn:
        return (await conn.execute(query)).mappings().first()


async def events_of(gateway: Gateway, message_id: str) -> list[str]:
    events = tables.message_events
    query = select(events.c.status).where(events.c.message_id == message_id).order_by(events.c.seq)
    async with gateway.db.read() as conn:
        return [row[0] for row in (await conn.execute(query)).all()]


async def settle(
    gateway: Gateway,
    ids: Sequence[str],
    *,
    until: frozenset[str] | set[str] = statuses.FINAL,
    within: float = 15.0,
) -> dict[str, Row]:
    """Run due jobs until every message in ``ids`` has a status in ``until``."""
    deadline = time.monotonic() + within
    wanted = list(ids)
    while True:
        await gateway.drain()
        query = select(tables.messages).where(tables.messages.c.id.in_(wanted))
        async with gateway.db.read() as conn:
            found = {row["id"]: row for row in (await conn.execute(query)).mappings()}
        if len(found) == len(wanted) and all(r["status"] in until for r in found.values()):
            return found
        if time.monotonic() > deadline:
            pending = {i: r["status"] for i, r in found.items() if r["status"] not in until}
            raise AssertionError(f"messages did not settle in {within}s: {pending}")
        await asyncio.sleep(0.02)


def problem_fields(body: Mapping[str, Any]) -> dict[str, str]:
    """A problem+json ``errors`` list as {field: message}."""
    return {error["field"]: error["message"] for error in body["errors"]}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and machine code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert isinstance(body["errors"], list)
    return body


async def cancel_pending(gateway: Gateway) -> None:
    """Cancel the project's scheduled and queued messages, so no later test sends them."""
    for row in await message_rows(gateway):
        if row["status"] in statuses.CANCELABLE:
            response = await gateway.client.post(f"/v1/messages/{row['id']}/cancel")
            assert response.status_code == 200, response.text
