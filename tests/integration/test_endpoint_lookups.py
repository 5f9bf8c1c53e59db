"""A project's enabled webhook endpoints are read once per transaction (an intake group asks
for them for its conversations' events and again for its messages'), and read again once
the transaction wrote an endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from agentsms.ids import new_id
from agentsms.store.db import Database
from agentsms.store.repositories import webhooks as repo


@pytest.fixture
async def db(backend_url: str) -> AsyncIterator[Database]:
    database = Database(backend_url)
    yield database
    await database.dispose()


def _endpoint(project_id: str, **values: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": new_id("we"),
        "project_id": project_id,
        "kind": repo.ENDPOINT,
        "url": "https://example.com/hook",
        "event_types": ["message.delivered"],
        "secret": "whsec_test",
        "created_at": now,
        "updated_at": now,
        **values,
    }


async def test_the_endpoints_are_read_once_per_transaction_until_one_is_written(
    db: Database,
) -> None:
    project = new_id("proj")
    reads: list[str] = []

    def count(*args: Any) -> None:
        if "FROM webhook_endpoints" in args[2]:
            reads.append(args[2])

    for engine in db.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", count)
    async with db.write() as conn:
        assert await repo.active_endpoints(conn, project) == []
        assert await repo.active_endpoints(conn, project) == []
        assert len(reads) == 1
        first = _endpoint(project)
        await repo.insert_endpoint(conn, first)
        assert [e["id"] for e in await repo.active_endpoints(conn, project)] == [first["id"]]
        assert len(reads) == 2
        await repo.update_endpoint(conn, first["id"], {"disabled_at": datetime.now(UTC)})
        assert await repo.active_endpoints(conn, project) == []
        assert len(reads) == 3
    async with db.write() as conn:
        # Another transaction reads afresh.
        assert await repo.active_endpoints(conn, project) == []
        assert len(reads) == 4
