"""Shared by the conversation tests."""

from __future__ import annotations

from sqlalchemy import delete, select

from agentsms.store import tables
from agentsms.webhooks.events import DELIVER_JOB
from tests.conftest import Gateway


async def forget_deliveries(gateway: Gateway) -> None:
    """Drop the queued webhook deliveries of the gateway's project (to hosts that do not
    exist), so they do not linger in the shared test database for other tests. Its queued
    messages are sent first, so that no later test's worker sends them (and emits for them)."""
    await gateway.drain()
    events = select(tables.webhook_events.c.id).where(
        tables.webhook_events.c.project_id == gateway.project_id
    )
    async with gateway.db.write() as conn:
        await conn.execute(
            delete(tables.jobs).where(
                tables.jobs.c.kind == DELIVER_JOB, tables.jobs.c.ref.in_(events)
            )
        )
