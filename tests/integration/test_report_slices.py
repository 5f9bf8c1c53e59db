"""The simulator's delivery reports are applied a slice at a time: a claim carrying many
reports (a batch's fan-out) never holds the write lock and the event loop in one long
transaction, and a job bigger than a slice is split and finished with its last slice."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from sqlalchemy import select

from agentsms.core import simulator
from agentsms.core.simulator import REPORT_JOB, ReportHandler
from agentsms.jobs import queue
from agentsms.jobs.queue import NewJob
from agentsms.providers.base import Receipt
from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.helpers import message_row, settle


async def test_reports_are_applied_in_slices_and_each_job_finished_with_its_last(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await gateway.client.post(
        "/v1/numbers",
        json={
            "number": "+14155550131",
            "throughput_mps": 100,
            "settings": {"delivery_delay_seconds": 3600},
        },
    )
    assert response.status_code == 201, response.text
    ids = []
    for n in range(7):
        sent = await gateway.client.post(
            "/v1/messages",
            json={"to": f"+1415555{3200 + n}", "body": f"slice {n}", "from": "+14155550131"},
        )
        assert sent.status_code == 202, sent.text
        ids.append(str(sent.json()["id"]))
    await settle(gateway, ids, until={"sent"})
    receipts = []
    for message_id in ids:
        row = await message_row(gateway, message_id)
        receipts.append(
            {
                "reference": message_id,
                "provider_message_id": row["provider_message_id"],
                "status": "delivered",
                "error_code": None,
            }
        )
    async with gateway.db.write() as conn:
        await queue.enqueue_many(
            conn,
            [
                NewJob(kind=REPORT_JOB, payload={"receipts": receipts[:5]}, run_at=time.time()),
                NewJob(kind=REPORT_JOB, payload={"receipts": receipts[5:]}, run_at=time.time()),
            ],
        )
        claimed = await queue.claim(
            conn, owner="slices", limit=10, lease_seconds=30, kinds=[REPORT_JOB]
        )
    assert len(claimed) == 2

    slices: list[tuple[int, int]] = []  # (receipts applied, report jobs left) per slice
    real_apply = simulator.apply_carrier_receipts

    async def apply(conn: object, origin: object, items: Sequence[Receipt]) -> int:
        left = select(tables.jobs.c.id).where(tables.jobs.c.id.in_([j.id for j in claimed]))
        slices.append((len(items), len((await conn.execute(left)).all())))  # type: ignore[attr-defined]
        return await real_apply(conn, origin, items)  # type: ignore[arg-type]

    monkeypatch.setattr(simulator, "RECEIPTS_PER_TRANSACTION", 3)
    monkeypatch.setattr(simulator, "apply_carrier_receipts", apply)
    await ReportHandler(gateway.db).handle(claimed)

    # 5 + 2 reports in slices of 3: the first job is split; it is finished with its second
    # slice (which also carries the second job's first report), the second job with the third.
    assert slices == [(3, 2), (3, 2), (1, 1)]
    for message_id in ids:
        assert (await message_row(gateway, message_id))["status"] == "delivered"
    async with gateway.db.read() as conn:
        left = await conn.execute(
            select(tables.jobs.c.id).where(tables.jobs.c.id.in_([j.id for j in claimed]))
        )
        assert left.all() == []


async def test_a_split_job_applied_again_changes_nothing(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that died between a job's slices leaves it to be run again: its first
    slices apply a second time, and move nothing (receipts only move messages forward)."""
    response = await gateway.client.post(
        "/v1/numbers",
        json={
            "number": "+14155550132",
            "throughput_mps": 100,
            "settings": {"delivery_delay_seconds": 3600},
        },
    )
    assert response.status_code == 201, response.text
    sent = await gateway.client.post(
        "/v1/messages", json={"to": "+14155553300", "body": "again", "from": "+14155550132"}
    )
    assert sent.status_code == 202, sent.text
    message_id = str(sent.json()["id"])
    await settle(gateway, [message_id], until={"sent"})
    row = await message_row(gateway, message_id)
    receipt = {
        "reference": message_id,
        "provider_message_id": row["provider_message_id"],
        "status": "delivered",
        "error_code": None,
    }
    monkeypatch.setattr(simulator, "RECEIPTS_PER_TRANSACTION", 1)
    for _ in range(2):
        async with gateway.db.write() as conn:
            await queue.enqueue_many(
                conn, [NewJob(kind=REPORT_JOB, payload={"receipts": [receipt]}, run_at=time.time())]
            )
            claimed = await queue.claim(
                conn, owner="again", limit=10, lease_seconds=30, kinds=[REPORT_JOB]
            )
        await ReportHandler(gateway.db).handle(claimed)
    after = await message_row(gateway, message_id)
    assert after["status"] == "delivered"
    async with gateway.db.read() as conn:
        events = await conn.execute(
            select(tables.message_events.c.status).where(
                tables.message_events.c.message_id == message_id
            )
        )
        assert [status for (status,) in events].count("delivered") == 1
