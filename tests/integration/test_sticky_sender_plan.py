"""The sticky-sender lookup every send to a pool makes reads one index, whatever the size of
the message history (issue 18: intake does not slow as the database grows)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from agentsms.store import migrate
from agentsms.store.db import Database
from agentsms.store.repositories import numbers as numbers_repo


async def test_the_newest_sender_of_each_contact_is_read_from_the_contact_index_alone(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    await migrate.upgrade_async(url)
    db = Database(url)
    try:
        async with db.read() as conn:
            statement = numbers_repo._LAST_NUMBERS["sqlite"]
            plan = [
                str(row[-1])
                for row in await conn.execute(
                    text(f"EXPLAIN QUERY PLAN {statement.text}"),
                    {"project_id": "proj_x", "contacts": json.dumps(["+14155550100"])},
                )
            ]
    finally:
        await db.dispose()
    messages = [step for step in plan if " m " in f" {step} "]
    # One seek per contact into the covering index: no message row, no sort, no scan.
    assert messages == [
        "SEARCH m USING COVERING INDEX ix_messages_project_contact (project_id=? AND contact=?)"
    ], plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
