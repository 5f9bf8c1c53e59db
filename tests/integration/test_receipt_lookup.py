"""A carrier's receipts find their messages by the carrier's ids through the provider
reference index, not by walking every message of the project (SQLite keeps no statistics
that would tell its planner which index is narrower)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from agentsms.store import migrate
from agentsms.store.db import Database
from agentsms.store.repositories.provider_accounts import references_by_carrier_id


async def test_receipts_by_carrier_id_search_the_provider_reference_index(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'agentsms.db'}"
    await migrate.upgrade_async(url)
    db = Database(url)
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "provider_message_id IN" in statement:
            statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.read() as conn:
            found = await references_by_carrier_id(
                conn,
                provider="twilio",
                project_id="proj_1",
                account_id="acct_1",
                provider_ids=["SM1", "SM2"],
            )
            assert not found
            assert len(statements) == 1
            statement, parameters = statements[0]
            plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            steps = [row[3] for row in plan.all()]
    finally:
        await db.dispose()
    searches = [step for step in steps if "messages" in step.split(" USING")[0]]
    assert searches == [
        "SEARCH messages USING INDEX ix_messages_provider_ref "
        "(provider=? AND provider_message_id=?)"
    ], steps
