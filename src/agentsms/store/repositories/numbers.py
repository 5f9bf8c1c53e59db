"""The sender number pool."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import numbers, sender_pacing


async def insert_number(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(numbers).values(**row))


# Built once: every send reads its project's pool.
_LIST_NUMBERS = (
    select(numbers).where(numbers.c.project_id == bindparam("project_id")).order_by(numbers.c.id)
)


async def list_numbers(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    result = await conn.execute(_LIST_NUMBERS, {"project_id": project_id})
    return many(result.mappings().all())


async def get_number(conn: AsyncConnection, project_id: str, number_id: str) -> Row | None:
    query = select(numbers).where(numbers.c.project_id == project_id, numbers.c.id == number_id)
    return one((await conn.execute(query)).mappings().first())


async def find_by_e164(conn: AsyncConnection, project_id: str, e164: str) -> Row | None:
    query = select(numbers).where(numbers.c.project_id == project_id, numbers.c.number == e164)
    return one((await conn.execute(query)).mappings().first())


# Built once: every claimed batch of sends reads its numbers.
_NUMBERS_BY_IDS = select(numbers).where(numbers.c.id.in_(bindparam("b_ids", expanding=True)))


async def numbers_by_ids(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, Row]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = many((await conn.execute(_NUMBERS_BY_IDS, {"b_ids": wanted})).mappings())
    return {row["id"]: row for row in rows}


async def update_number(
    conn: AsyncConnection, project_id: str, number_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(numbers)
        .where(numbers.c.project_id == project_id, numbers.c.id == number_id)
        .values(**values)
    )


async def numbers_in(conn: AsyncConnection, project_id: str, e164s: Sequence[str]) -> set[str]:
    """Which of ``e164s`` the project's pool already has."""
    if not e164s:
        return set()
    query = select(numbers.c.number).where(
        numbers.c.project_id == project_id, numbers.c.number.in_(list(e164s))
    )
    return {row[0] for row in (await conn.execute(query)).all()}


async def delete_number(conn: AsyncConnection, project_id: str, number_id: str) -> bool:
    result = await conn.execute(
        delete(numbers).where(numbers.c.project_id == project_id, numbers.c.id == number_id)
    )
    await conn.execute(delete(sender_pacing).where(sender_pacing.c.number_id == number_id))
    return bool(result.rowcount)


# One primary-key seek per contact into ``sticky_senders`` (one row per person).
_NEWEST_SENDER = (
    "(SELECT s.number_id FROM sticky_senders AS s"
    " WHERE s.project_id = :project_id AND s.contact = {contact})"
)
_LAST_NUMBERS = {
    "sqlite": text(
        f"SELECT c.value, {_NEWEST_SENDER.format(contact='c.value')} FROM json_each(:contacts) AS c"
    ),
    "postgresql": text(
        f"SELECT c.contact, {_NEWEST_SENDER.format(contact='c.contact')}"
        " FROM unnest(CAST(:contacts AS text[])) AS c(contact)"
    ),
}


async def last_numbers_for_contacts(
    conn: AsyncConnection, project_id: str, contacts: Sequence[str]
) -> dict[str, str]:
    """For each contact, the number id of the newest message between it and the project."""
    wanted = list(dict.fromkeys(contacts))
    if not wanted:
        return {}
    sqlite = conn.dialect.name == "sqlite"
    result = await conn.execute(
        _LAST_NUMBERS["sqlite" if sqlite else "postgresql"],
        {"project_id": project_id, "contacts": json.dumps(wanted) if sqlite else wanted},
    )
    return {contact: number_id for contact, number_id in result.all() if number_id is not None}
