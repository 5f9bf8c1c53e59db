"""Webhook endpoints, project signing secrets, events and delivery attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import insert_rows
from agentsms.store.purge import chunk_delete
from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import (
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
    webhook_project_secrets,
)

ENDPOINT = "endpoint"
OVERRIDE = "override"


async def insert_endpoint(conn: AsyncConnection, row: dict[str, Any]) -> None:
    _forget_active(conn)
    await conn.execute(insert(webhook_endpoints).values(**row))


async def get_endpoint(conn: AsyncConnection, project_id: str, endpoint_id: str) -> Row | None:
    """A project's endpoint that is not deleted."""
    query = select(webhook_endpoints).where(
        webhook_endpoints.c.id == endpoint_id,
        webhook_endpoints.c.project_id == project_id,
        webhook_endpoints.c.deleted_at.is_(None),
    )
    return one((await conn.execute(query)).mappings().first())


async def endpoints_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Row]:
    """Endpoints by id, deleted or not."""
    found: dict[str, Row] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), 500):
        query = select(webhook_endpoints).where(
            webhook_endpoints.c.id.in_(unique[start : start + 500])
        )
        found |= {row["id"]: row for row in many((await conn.execute(query)).mappings().all())}
    return found


async def list_endpoints(
    conn: AsyncConnection, project_id: str, *, kind: str | None, before_id: str | None, limit: int
) -> Sequence[Row]:
    """Newest first."""
    query = select(webhook_endpoints).where(
        webhook_endpoints.c.project_id == project_id, webhook_endpoints.c.deleted_at.is_(None)
    )
    if kind is not None:
        query = query.where(webhook_endpoints.c.kind == kind)
    if before_id is not None:
        query = query.where(webhook_endpoints.c.id < before_id)
    query = query.order_by(webhook_endpoints.c.id.desc()).limit(limit)
    return many((await conn.execute(query)).mappings().all())


# Built once: every send asks it.
_ACTIVE_ENDPOINTS = select(
    webhook_endpoints.c.id, webhook_endpoints.c.kind, webhook_endpoints.c.event_types
).where(
    webhook_endpoints.c.project_id == bindparam("project_id"),
    webhook_endpoints.c.deleted_at.is_(None),
    webhook_endpoints.c.disabled_at.is_(None),
)


_ACTIVE_MEMO = "agentsms_active_endpoints"


async def active_endpoints(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    """The project's enabled endpoints of both kinds (id, kind, event types): cheap.

    An empty answer means no event of the project goes anywhere. Read once per project and
    transaction (an intake group asks for its new conversations' events and again for its
    messages'): a later call in the same transaction gets the first answer, unless this
    connection wrote an endpoint since.
    """
    transaction = conn.sync_connection.get_transaction() if conn.sync_connection else None
    if transaction is None:  # none begun yet: nothing to share the answer with
        return await _read_active(conn, project_id)
    memo = conn.info.get(_ACTIVE_MEMO)
    if memo is None or memo[0] is not transaction:
        memo = conn.info[_ACTIVE_MEMO] = (transaction, {})
    found: dict[str, Sequence[Row]] = memo[1]
    if project_id not in found:
        found[project_id] = await _read_active(conn, project_id)
    return found[project_id]


async def _read_active(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    result = await conn.execute(_ACTIVE_ENDPOINTS, {"project_id": project_id})
    return many(result.mappings().all())


def _forget_active(conn: AsyncConnection) -> None:
    conn.info.pop(_ACTIVE_MEMO, None)


async def find_override(conn: AsyncConnection, project_id: str, url: str) -> Row | None:
    query = select(webhook_endpoints).where(
        webhook_endpoints.c.project_id == project_id,
        webhook_endpoints.c.kind == OVERRIDE,
        webhook_endpoints.c.url == url,
        webhook_endpoints.c.deleted_at.is_(None),
    )
    return one((await conn.execute(query)).mappings().first())


async def update_endpoint(conn: AsyncConnection, endpoint_id: str, values: dict[str, Any]) -> None:
    _forget_active(conn)
    await conn.execute(
        update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(**values)
    )


async def get_project_secret(conn: AsyncConnection, project_id: str) -> Row | None:
    query = select(webhook_project_secrets).where(
        webhook_project_secrets.c.project_id == project_id
    )
    return one((await conn.execute(query)).mappings().first())


async def project_secrets_by_ids(
    conn: AsyncConnection, project_ids: Sequence[str]
) -> dict[str, Row]:
    """Projects' signing secrets, by project id (projects without one are left out)."""
    unique = sorted(set(project_ids))
    if not unique:
        return {}
    query = select(webhook_project_secrets).where(webhook_project_secrets.c.project_id.in_(unique))
    return {row["project_id"]: row for row in many((await conn.execute(query)).mappings().all())}


async def insert_project_secret(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(webhook_project_secrets).values(**row))


async def update_project_secret(
    conn: AsyncConnection, project_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(webhook_project_secrets)
        .where(webhook_project_secrets.c.project_id == project_id)
        .values(**values)
    )


async def insert_events(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(conn, webhook_events, rows)


async def events_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Row]:
    found: dict[str, Row] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), 500):
        query = select(webhook_events).where(webhook_events.c.id.in_(unique[start : start + 500]))
        found |= {row["id"]: row for row in many((await conn.execute(query)).mappings().all())}
    return found


async def insert_deliveries(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(conn, webhook_deliveries, rows)


# PostgreSQL: one statement for any number of pairs, each counted by its own subquery on
# ``ix_webhook_deliveries_event`` (a plan that stays an index lookup whatever the statistics
# a prepared statement's generic plan was made with; an ``IN`` list of each length was a
# statement of its own, and big ones read the whole table).
_ATTEMPTS_PG = (
    "SELECT p.e, p.ep, (SELECT count(*) FROM webhook_deliveries AS d"
    " WHERE d.event_id = p.e AND d.endpoint_id = p.ep)"
    " FROM unnest($1::varchar[], $2::varchar[]) AS p(e, ep)"
)


async def attempts_so_far(
    conn: AsyncConnection, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Logged attempts per (event id, endpoint id)."""
    if not pairs:
        return {}
    if conn.dialect.name == "postgresql":
        unique = sorted(set(pairs))
        result = await conn.exec_driver_sql(
            _ATTEMPTS_PG, ([e for e, _ in unique], [p for _, p in unique])
        )
        rows: Sequence[Any] = result.all()
        found = {(row[0], row[1]): int(row[2]) for row in rows}
        return {pair: found[pair] for pair in pairs}
    events = sorted({event_id for event_id, _ in pairs})
    counts: dict[tuple[str, str], int] = {}
    for start in range(0, len(events), 500):
        query = (
            select(webhook_deliveries.c.event_id, webhook_deliveries.c.endpoint_id, func.count())
            .where(webhook_deliveries.c.event_id.in_(events[start : start + 500]))
            .group_by(webhook_deliveries.c.event_id, webhook_deliveries.c.endpoint_id)
        )
        counts |= {(e, p): int(n) for e, p, n in (await conn.execute(query)).all()}
    return {pair: counts.get(pair, 0) for pair in pairs}


async def list_deliveries(
    conn: AsyncConnection,
    endpoint_id: str,
    *,
    event_id: str | None,
    status: str | None,
    before_id: str | None,
    limit: int,
) -> Sequence[Row]:
    """Newest first."""
    query = select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
    if event_id is not None:
        query = query.where(webhook_deliveries.c.event_id == event_id)
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    if before_id is not None:
        query = query.where(webhook_deliveries.c.id < before_id)
    query = query.order_by(webhook_deliveries.c.id.desc()).limit(limit)
    return many((await conn.execute(query)).mappings().all())


async def get_delivery(conn: AsyncConnection, endpoint_id: str, delivery_id: str) -> Row | None:
    query = select(webhook_deliveries).where(
        webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.endpoint_id == endpoint_id
    )
    return one((await conn.execute(query)).mappings().first())


async def purge_deliveries_before(conn: AsyncConnection, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` delivery attempts older than ``before``; returns how many."""
    condition = webhook_deliveries.c.created_at < before
    result = await conn.execute(chunk_delete(webhook_deliveries, condition, limit))
    return int(result.rowcount or 0)


async def purge_events_before(conn: AsyncConnection, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` events older than ``before``; returns how many."""
    condition = webhook_events.c.created_at < before
    result = await conn.execute(chunk_delete(webhook_events, condition, limit))
    return int(result.rowcount or 0)
