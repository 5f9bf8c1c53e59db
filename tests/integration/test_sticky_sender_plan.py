"""The sticky-sender lookup every send to a pool makes reads one row per contact of a table
with one row per person, whatever the size of the message history (issue 18: intake does
not slow as the database grows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import create_engine, text

from agentsms.store import migrate
from agentsms.store.db import Database
from agentsms.store.migrate import alembic_config
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.repositories import numbers as numbers_repo


async def test_the_newest_sender_of_each_contact_is_one_primary_key_seek(
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
    senders = [step for step in plan if " s " in f" {step} "]
    # One seek per contact into sticky_senders' primary key: no message, no sort, no scan.
    assert senders == ["SEARCH s USING PRIMARY KEY (project_id=? AND contact=?)"], plan
    assert not any("messages" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


_INSERT = text(
    "INSERT INTO messages (id, project_id, direction, to_number, from_number, number_id, "
    "contact, body, media_urls, channel, status, segments, encoding, price_estimate, currency, "
    "metadata, provider, in_flight, attempts, created_at, updated_at, purpose) VALUES (:id, "
    ":project, 'outbound', :contact, '+14155550100', :number, :contact, 'hi', '[]', 'sms', "
    "'queued', 1, 'GSM-7', 0, 'USD', '{}', 'simulator', 0, 0, :now, :now, 'api')"
)


def test_the_migration_fills_each_persons_newest_sender_and_drops_the_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "0017_partial_message_indexes")
    engine = create_engine(f"sqlite:///{path}")
    now = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    with engine.begin() as conn:
        for message_id, project, contact, number in (
            ("msg_1", "proj_1", "+14155550101", "num_a"),
            ("msg_3", "proj_1", "+14155550101", "num_b"),
            ("msg_2", "proj_1", "+14155550101", "num_c"),
            ("msg_4", "proj_1", "+14155550102", None),
            ("msg_5", "proj_2", "+14155550101", "num_d"),
        ):
            conn.execute(
                _INSERT,
                {
                    "id": message_id,
                    "project": project,
                    "contact": contact,
                    "number": number,
                    "now": now,
                },
            )
    command.upgrade(config, "head")
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT * FROM sticky_senders ORDER BY 1, 2")).all()
        indexes = {row[1] for row in conn.execute(text("PRAGMA index_list(messages)"))}
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("proj_1", "+14155550101", "msg_3", "num_b"),
        ("proj_1", "+14155550102", "msg_4", None),
        ("proj_2", "+14155550101", "msg_5", "num_d"),
    ]
    assert "ix_messages_project_contact" not in indexes


async def test_each_insert_keeps_the_newest_message_and_its_sender(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sticky.db'}"
    await migrate.upgrade_async(url)
    db = Database(url)

    def row(message_id: str, contact: str, number_id: str | None) -> dict[str, Any]:
        return {
            "id": message_id,
            "project_id": "proj_1",
            "direction": "outbound",
            "to_number": contact,
            "from_number": "+14155550100",
            "number_id": number_id,
            "contact": contact,
            "body": "hi",
            "media_urls": [],
            "channel": "sms",
            "status": "queued",
            "segments": 1,
            "encoding": "GSM-7",
            "price_estimate": 0,
            "currency": "USD",
            "metadata": {},
            "provider": "simulator",
            "in_flight": False,
            "attempts": 0,
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
        }

    try:
        async with db.write() as conn:
            # One insert with two messages to a person: the newer one's number counts.
            await messages_repo.insert_messages(
                conn, [row("msg_2", "+14155550101", "num_b"), row("msg_1", "+14155550101", "num_a")]
            )
            await messages_repo.insert_messages(conn, [row("msg_3", "+14155550102", "num_c")])
        async with db.write() as conn:
            # An older message (another transaction's, committed late) does not win.
            await messages_repo.insert_messages(conn, [row("msg_0", "+14155550101", "num_z")])
            await messages_repo.insert_messages(conn, [row("msg_4", "+14155550102", "num_d")])
        async with db.read() as conn:
            found = await numbers_repo.last_numbers_for_contacts(
                conn, "proj_1", ["+14155550101", "+14155550102", "+14155550103"]
            )
    finally:
        await db.dispose()
    assert found == {"+14155550101": "num_b", "+14155550102": "num_d"}
