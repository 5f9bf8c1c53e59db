"""``store.bulk.insert_rows``: what goes in is what comes back, however the rows are bound."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from agentsms.store.bulk import insert_rows
from agentsms.store.db import Database
from agentsms.store.tables import jobs


def _job(kind: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": kind,
        "ref": None,
        "payload": {},
        "status": "queued",
        "run_at": 1.0,
        "attempts": 0,
        "max_attempts": 8,
        "lease_owner": None,
        "created_at": 1.0,
    }
    return row | values


async def _read(db: Database, kind: str) -> list[dict[str, Any]]:
    query = select(jobs).where(jobs.c.kind == kind).order_by(jobs.c.id)
    async with db.read() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]


async def test_columns_null_in_every_row_some_rows_or_none_read_back_as_given(
    backend_url: str,
) -> None:
    db = Database(backend_url)
    shared_payload = {"stage": "warning"}
    rows = [
        # ``ref`` is NULL in some rows, ``lease_owner`` in all, ``last_error`` not given.
        _job("bulk.mixed", ref=None, payload=shared_payload, run_at=5.0),
        _job("bulk.mixed", ref="a", payload=shared_payload, run_at=5.0),
        _job("bulk.mixed", ref=None, payload={"n": 1}, run_at=6.5),
        _job("bulk.mixed", ref="b", payload=shared_payload, run_at=6.5),
    ]
    try:
        async with db.write() as conn:
            await insert_rows(conn, jobs, rows)
            await insert_rows(conn, jobs, [_job("bulk.null", lease_owner=None)] * 3)
        mixed = await _read(db, "bulk.mixed")
        nulls = await _read(db, "bulk.null")
    finally:
        await db.dispose()
    assert [(r["ref"], r["payload"], r["run_at"], r["lease_owner"]) for r in mixed] == [
        (None, {"stage": "warning"}, 5.0, None),
        ("a", {"stage": "warning"}, 5.0, None),
        (None, {"n": 1}, 6.5, None),
        ("b", {"stage": "warning"}, 6.5, None),
    ]
    assert all(r["last_error"] is None for r in mixed)
    assert [(r["ref"], r["lease_owner"], r["payload"]) for r in nulls] == [(None, None, {})] * 3
