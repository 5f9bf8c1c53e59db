"""A project's address book."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import contacts


async def insert_contact(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(contacts).values(**row))


async def get_contact(conn: AsyncConnection, project_id: str, contact_id: str) -> Row | None:
    query = select(contacts).where(contacts.c.project_id == project_id, contacts.c.id == contact_id)
    return one((await conn.execute(query)).mappings().first())


async def find_by_number(conn: AsyncConnection, project_id: str, e164: str) -> Row | None:
    query = select(contacts).where(
        contacts.c.project_id == project_id, contacts.c.phone_number == e164
    )
    return one((await conn.execute(query)).mappings().first())


def _matching(project_id: str, search: str | None) -> Any:
    where = contacts.c.project_id == project_id
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        where = where & or_(
            func.lower(contacts.c.name).like(pattern, escape="\\"),
            contacts.c.phone_number.like(pattern, escape="\\"),
            func.lower(func.coalesce(contacts.c.email, "")).like(pattern, escape="\\"),
        )
    return where


async def list_contacts(
    conn: AsyncConnection, project_id: str, search: str | None, limit: int, offset: int
) -> Sequence[Row]:
    """By name, then id."""
    query = (
        select(contacts)
        .where(_matching(project_id, search))
        .order_by(contacts.c.name, contacts.c.id)
        .limit(limit)
        .offset(offset)
    )
    return many((await conn.execute(query)).mappings().all())


async def count_contacts(conn: AsyncConnection, project_id: str, search: str | None) -> int:
    query = select(func.count()).select_from(contacts).where(_matching(project_id, search))
    return int((await conn.execute(query)).scalar_one())


async def update_contact(conn: AsyncConnection, contact_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(contacts).where(contacts.c.id == contact_id).values(**values))


async def delete_contact(conn: AsyncConnection, project_id: str, contact_id: str) -> bool:
    result = await conn.execute(
        delete(contacts).where(contacts.c.project_id == project_id, contacts.c.id == contact_id)
    )
    return bool(result.rowcount)


async def timezones_by_number(
    conn: AsyncConnection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """``(project_id, phone_number) → timezone`` of the contacts among ``pairs`` that have one."""
    by_project: dict[str, set[str]] = {}
    for project_id, number in pairs:
        by_project.setdefault(project_id, set()).add(number)
    found: dict[tuple[str, str], str] = {}
    for project_id, numbers in by_project.items():
        wanted = sorted(numbers)
        for start in range(0, len(wanted), 500):
            query = select(contacts.c.phone_number, contacts.c.timezone).where(
                contacts.c.project_id == project_id,
                contacts.c.phone_number.in_(wanted[start : start + 500]),
                contacts.c.timezone.is_not(None),
            )
            for number, zone in (await conn.execute(query)).all():
                found[(project_id, number)] = zone
    return found


async def page_contacts(
    conn: AsyncConnection,
    project_id: str,
    *,
    phone_number: str | None,
    before_id: str | None,
    limit: int,
) -> Sequence[Row]:
    """Newest first (ids are time-ordered), those older than ``before_id``."""
    query = select(contacts).where(contacts.c.project_id == project_id)
    if phone_number is not None:
        query = query.where(contacts.c.phone_number == phone_number)
    if before_id is not None:
        query = query.where(contacts.c.id < before_id)
    query = query.order_by(contacts.c.id.desc()).limit(limit)
    return many((await conn.execute(query)).mappings().all())
