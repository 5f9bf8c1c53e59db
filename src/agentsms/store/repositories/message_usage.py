"""Counts of a project's messages and webhook delivery attempts, by time and by sender
(AgentPhone's usage reports)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, many
from agentsms.store.tables import messages, webhook_deliveries

Unit = Literal["day", "month"]
_SQLITE_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m"}
_POSTGRES_FORMATS = {"day": "YYYY-MM-DD", "month": "YYYY-MM"}


def _bucket(conn: AsyncConnection, column: Any, unit: Unit) -> ColumnElement[str]:
    """``column`` (a UTC time) as ``YYYY-MM-DD`` / ``YYYY-MM`` text on either database."""
    if conn.dialect.name == "sqlite":
        return func.strftime(_SQLITE_FORMATS[unit], column)
    return func.to_char(func.timezone("UTC", column), _POSTGRES_FORMATS[unit])


async def message_counts(
    conn: AsyncConnection, project_id: str, sinces: Sequence[datetime]
) -> tuple[int, list[int]]:
    """The project's messages in all, and created since each of ``sinces``."""
    m = messages.c
    columns = [func.count()] + [func.count().filter(m.created_at >= since) for since in sinces]
    row = (await conn.execute(select(*columns).where(m.project_id == project_id))).one()
    return int(row[0]), [int(n) for n in row[1:]]


async def outbound_segments_since(conn: AsyncConnection, project_id: str, since: datetime) -> int:
    m = messages.c
    query = select(func.coalesce(func.sum(m.segments), 0)).where(
        m.project_id == project_id, m.direction == "outbound", m.created_at >= since
    )
    return int((await conn.execute(query)).scalar_one())


async def messages_per(
    conn: AsyncConnection, project_id: str, unit: Unit, since: datetime
) -> dict[str, int]:
    """Messages created since ``since`` per UTC day or month."""
    bucket = _bucket(conn, messages.c.created_at, unit).label("bucket")
    query = (
        select(bucket, func.count())
        .where(messages.c.project_id == project_id, messages.c.created_at >= since)
        .group_by(bucket)
    )
    return {str(b): int(n) for b, n in (await conn.execute(query)).all()}


async def deliveries_per(
    conn: AsyncConnection, project_id: str, unit: Unit, since: datetime
) -> dict[str, int]:
    """Webhook delivery attempts since ``since`` per UTC day or month."""
    d = webhook_deliveries.c
    bucket = _bucket(conn, d.created_at, unit).label("bucket")
    query = (
        select(bucket, func.count())
        .where(d.project_id == project_id, d.created_at >= since)
        .group_by(bucket)
    )
    return {str(b): int(n) for b, n in (await conn.execute(query)).all()}


async def delivery_rows_since(
    conn: AsyncConnection, project_id: str, since: datetime | None, limit: int
) -> Sequence[Row]:
    """The project's newest delivery attempts (since ``since``), newest first."""
    d = webhook_deliveries.c
    query = select(webhook_deliveries).where(d.project_id == project_id)
    if since is not None:
        query = query.where(d.created_at >= since)
    query = query.order_by(d.id.desc()).limit(limit)
    return many((await conn.execute(query)).mappings().all())


async def delivery_status_counts(
    conn: AsyncConnection, project_id: str, since: datetime | None
) -> dict[tuple[str, bool], int]:
    """Delivery attempts per (status, whether a retry is scheduled)."""
    d = webhook_deliveries.c
    retrying = d.next_retry_at.is_not(None).label("retrying")
    query = select(d.status, retrying, func.count()).where(d.project_id == project_id)
    if since is not None:
        query = query.where(d.created_at >= since)
    query = query.group_by(d.status, retrying)
    return {(str(s), bool(r)): int(n) for s, r, n in (await conn.execute(query)).all()}


async def messages_by_number(
    conn: AsyncConnection, project_id: str, since: datetime
) -> dict[str, dict[str, int]]:
    """Per sender number id: messages since ``since`` per direction."""
    m = messages.c
    query = (
        select(m.number_id, m.direction, func.count())
        .where(m.project_id == project_id, m.created_at >= since, m.number_id.is_not(None))
        .group_by(m.number_id, m.direction)
    )
    found: dict[str, dict[str, int]] = {}
    for number_id, direction, n in (await conn.execute(query)).all():
        found.setdefault(str(number_id), {})[str(direction)] = int(n)
    return found


async def messages_by_conversation(
    conn: AsyncConnection, project_id: str, since: datetime
) -> dict[str, int]:
    """Per conversation id: messages since ``since``."""
    m = messages.c
    query = (
        select(m.conversation_id, func.count())
        .where(m.project_id == project_id, m.created_at >= since, m.conversation_id.is_not(None))
        .group_by(m.conversation_id)
    )
    return {str(c): int(n) for c, n in (await conn.execute(query)).all()}
