"""PostgreSQL costs per message (issue 18): the simulator's send goes in one statement without
BEGIN and COMMIT, and the intake's thread lookup is an index lookup whatever the statistics
the prepared statement's generic plan was made with."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select, text

from agentsms.core.simulator import REPORT_JOB, StoredSimulatorLedger
from agentsms.ids import new_id
from agentsms.providers.base import SendRequest, SendResult
from agentsms.providers.simulator import SimulatorProvider
from agentsms.store import tables
from agentsms.store.db import Database
from agentsms.store.repositories import conversations as conversations_repo
from agentsms.store.repositories import optouts as optouts_repo
from agentsms.store.repositories import webhooks as webhooks_repo


def _postgres_only(url: str) -> None:
    if url.startswith("sqlite"):
        pytest.skip("PostgreSQL round trips and plans")


@pytest.fixture
async def db(backend_url: str) -> AsyncIterator[Database]:
    _postgres_only(backend_url)
    database = Database(backend_url)
    yield database
    await database.dispose()


def _statements(db: Database) -> list[tuple[str, bool]]:
    """The SQL of every statement run on ``db`` from now on, in order, each with whether
    its driver connection ran it in autocommit (no BEGIN before it, no COMMIT after)."""
    seen: list[tuple[str, bool]] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _record(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append((statement, bool(conn.connection.dbapi_connection.autocommit)))

    return seen


def _request(reference: str) -> SendRequest:
    return SendRequest(
        reference=reference,
        from_number="+14155550100",
        to_number="+14155553201",
        body="hello",
        channel="sms",
    )


async def _logged(db: Database, reference: str) -> list[dict[str, Any]]:
    query = select(tables.simulator_sends).where(tables.simulator_sends.c.reference == reference)
    async with db.read() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]


async def _report_references(db: Database) -> list[str]:
    query = select(tables.jobs.c.payload).where(tables.jobs.c.kind == REPORT_JOB)
    async with db.read() as conn:
        payloads = (await conn.execute(query)).scalars().all()
    return [
        receipt["reference"]
        for payload in payloads
        for receipt in (json.loads(payload) if isinstance(payload, str) else payload)["receipts"]
    ]


async def test_a_first_send_is_one_statement_outside_a_transaction(db: Database) -> None:
    simulator = SimulatorProvider(StoredSimulatorLedger(db))
    reference = new_id("msg")
    statements = _statements(db)

    (outcome,) = await simulator.send_many([_request(reference)])

    assert isinstance(outcome, SendResult)
    assert len(statements) == 1, statements
    assert statements[0][1], "autocommit: no BEGIN, no COMMIT"
    (logged,) = await _logged(db, reference)
    assert logged["provider_message_id"] == outcome.provider_message_id
    assert logged["repeat_count"] == 0
    assert logged["outcome"] == "delivered"
    assert reference in await _report_references(db)


async def test_a_repeated_send_is_answered_from_the_log_and_counted(db: Database) -> None:
    simulator = SimulatorProvider(StoredSimulatorLedger(db))
    reference = new_id("msg")
    (first,) = await simulator.send_many([_request(reference)])
    statements = _statements(db)

    (again,) = await simulator.send_many([_request(reference)])

    assert again == first
    # The one statement wrote nothing (the reference was logged), then the transaction
    # that reads the log answered it and counted the repeat.
    assert len(statements) > 1
    assert not any(autocommit for _, autocommit in statements[1:]), statements
    (logged,) = await _logged(db, reference)
    assert logged["repeat_count"] == 1
    assert (await _report_references(db)).count(reference) == 1


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("conversations", conversations_repo._EXISTING_KEYS_PG),
        ("optouts", optouts_repo._OPTED_OUT_PG),
        ("webhook_deliveries", webhooks_repo._ATTEMPTS_PG),
    ],
)
async def test_a_lookup_by_a_list_reads_the_index_on_a_table_planned_empty(
    backend_url: str, table: str, statement: str
) -> None:
    _postgres_only(backend_url)
    conn = await asyncpg.connect(backend_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        # A prepared statement's generic plan, made while the table is empty.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING INDEXES)")
        await conn.execute(f"PREPARE lookup AS {statement}")
        arguments = {1: "('{a,b}')", 2: "('proj_x', '{a,b}')"}
        if table == "webhook_deliveries":
            arguments[2] = "('{a,b}', '{c,d}')"
        explained = await conn.fetch(
            f"EXPLAIN EXECUTE lookup{arguments[len(set(re.findall(r'[$][0-9]', statement)))]}"
        )
    finally:
        await conn.close()
    plan = "\n".join(row[0] for row in explained)
    assert "Index Only Scan" in plan or "Index Scan" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_the_opt_out_lookup_finds_the_opted_out(db: Database) -> None:
    project = new_id("proj")
    async with db.write() as conn:
        await conn.execute(
            tables.optouts.insert().values(
                project_id=project, recipient="+14155553203", created_at=datetime.now(UTC)
            )
        )
    async with db.read() as conn:
        found = await optouts_repo.opted_out(
            conn, project, ["+14155553203", "+14155553204", "+14155553203"]
        )
    assert found == {"+14155553203"}


async def test_the_thread_lookup_finds_the_keys_that_have_a_conversation(db: Database) -> None:
    key = f"test|{new_id('x')}"
    async with db.write() as conn:
        await conn.execute(
            text(
                "INSERT INTO conversations (id, project_id, agent_number, user_number, channel, "
                "status, thread_key, agent_paused, engaged, settings, metadata, state, "
                "extracted, created_at, updated_at) VALUES (:id, 'proj_x', '+14155550100', "
                "'+14155553202', 'sms', 'active', :key, false, false, '{}', '{}', '{}', '{}', "
                "now(), now())"
            ),
            {"id": new_id("conv"), "key": key},
        )
    async with db.read() as conn:
        found = await conversations_repo._existing_keys(conn, [key, "test|none", key])
    assert found == [key, key]
