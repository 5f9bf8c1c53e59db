"""Provider accounts, inbound de-duplication, multi-part inbound texts and stored media."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import TextClause, bindparam, delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.bulk import id_list_params, id_list_sql
from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import (
    inbound_parts,
    inbound_seen,
    media,
    numbers,
    provider_accounts,
)

_CHUNK = 500


async def insert_account(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(provider_accounts).values(**row))


async def list_accounts(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    query = (
        select(provider_accounts)
        .where(provider_accounts.c.project_id == project_id)
        .order_by(provider_accounts.c.id)
    )
    return many((await conn.execute(query)).mappings().all())


async def accounts_of_provider(conn: AsyncConnection, provider: str) -> Sequence[Row]:
    """Every project's accounts at one carrier."""
    query = (
        select(provider_accounts)
        .where(provider_accounts.c.provider == provider)
        .order_by(provider_accounts.c.id)
    )
    return many((await conn.execute(query)).mappings().all())


async def get_account(conn: AsyncConnection, account_id: str) -> Row | None:
    query = select(provider_accounts).where(provider_accounts.c.id == account_id)
    return one((await conn.execute(query)).mappings().first())


async def numbers_using(conn: AsyncConnection, account_id: str) -> int:
    query = select(func.count()).where(numbers.c.provider_account_id == account_id)
    return int((await conn.execute(query)).scalar_one())


async def delete_account(conn: AsyncConnection, project_id: str, account_id: str) -> bool:
    result = await conn.execute(
        delete(provider_accounts).where(
            provider_accounts.c.project_id == project_id, provider_accounts.c.id == account_id
        )
    )
    return bool(result.rowcount)


async def carrier_ids_by_reference(
    conn: AsyncConnection, *, provider: str, project_id: str | None, references: Sequence[str]
) -> dict[str, str | None]:
    """Our id → the carrier's id (None before the carrier answered) of the outbound messages
    among ``references`` that a carrier may report on: with a ``project_id`` (a provider
    account's), that project's messages; without one (the simulator, which carries every
    project's texts), those sent through ``provider``."""
    dialect = conn.dialect.name
    value = provider if project_id is None else project_id
    found: dict[str, str | None] = {}
    wanted = list(dict.fromkeys(references))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        # By primary key only (the scope is checked here, so no planner is tempted to walk
        # a project's or a provider's index instead).
        result = await conn.exec_driver_sql(
            f"SELECT id, provider_message_id, {'provider' if project_id is None else 'project_id'} "
            f"FROM messages WHERE id {id_list_sql(dialect, len(chunk), 1)} "
            "AND direction = 'outbound'",
            tuple(id_list_params(dialect, chunk)),
        )
        rows = cast("list[tuple[str, str | None, str]]", result.all())
        found.update((row[0], row[1]) for row in rows if row[2] == value)
    return found


async def references_by_carrier_id(
    conn: AsyncConnection,
    *,
    provider: str,
    project_id: str | None,
    account_id: str | None,
    provider_ids: Sequence[str],
) -> dict[str, str]:
    """The carrier's id → our id of the outbound messages of ``provider`` among
    ``provider_ids``: with a ``project_id`` (a provider account's), the project's messages
    not sent from another account's number (two SMSCs may issue the same ids; a number
    removed since still matches); without one (the simulator), any project's."""
    dialect = conn.dialect.name
    if project_id is None:
        query = _ANY_PROJECT_SQLITE if dialect == "sqlite" else _ANY_PROJECT
    else:
        query = _BY_CARRIER_ID_SQLITE if dialect == "sqlite" else _BY_CARRIER_ID
    found: dict[str, str] = {}
    wanted = list(dict.fromkeys(provider_ids))
    for start in range(0, len(wanted), _CHUNK):
        params: dict[str, Any] = {"provider": provider, "ids": wanted[start : start + _CHUNK]}
        if project_id is not None:
            params |= {"project_id": project_id, "account_id": account_id}
        for message_id, carrier_id in (await conn.execute(query, params)).all():
            found[carrier_id] = message_id
    return found


def _by_carrier_id(indexed_by: str) -> TextClause:
    return text(
        f"SELECT id, provider_message_id FROM messages {indexed_by} "
        "WHERE provider = :provider AND provider_message_id IN :ids "
        "AND project_id = :project_id AND direction = 'outbound' "
        "AND number_id NOT IN (SELECT id FROM numbers "
        "WHERE project_id = :project_id AND provider_account_id != :account_id)"
    ).bindparams(bindparam("ids", expanding=True))


def _any_project(indexed_by: str) -> TextClause:
    return text(
        f"SELECT id, provider_message_id FROM messages {indexed_by} "
        "WHERE provider = :provider AND provider_message_id IN :ids AND direction = 'outbound'"
    ).bindparams(bindparam("ids", expanding=True))


# SQLite keeps no statistics here, and without them it walks every message of the project
# (its project index looks as narrow as the carrier's ids): it is told which index to use.
_BY_CARRIER_ID = _by_carrier_id("")
_BY_CARRIER_ID_SQLITE = _by_carrier_id("INDEXED BY ix_messages_provider_ref")
_ANY_PROJECT = _any_project("")
_ANY_PROJECT_SQLITE = _any_project("INDEXED BY ix_messages_provider_ref")


async def seen(conn: AsyncConnection, account_id: str, provider_message_id: str) -> bool:
    query = select(inbound_seen.c.account_id).where(
        inbound_seen.c.account_id == account_id,
        inbound_seen.c.provider_message_id == provider_message_id,
    )
    return (await conn.execute(query)).first() is not None


async def mark_seen(
    conn: AsyncConnection, account_id: str, provider_message_id: str, now: float
) -> bool:
    """Record a carrier message id; False when it was already there (a repeat delivery)."""
    if await seen(conn, account_id, provider_message_id):
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(inbound_seen).values(
                    account_id=account_id, provider_message_id=provider_message_id, created_at=now
                )
            )
    except IntegrityError:  # a concurrent delivery of the same message won
        return False
    return True


async def insert_part(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Hold one part of a concatenated text; False if that part is already held."""
    try:
        async with conn.begin_nested():
            await conn.execute(insert(inbound_parts).values(**row))
    except IntegrityError:
        return False
    return True


async def parts(conn: AsyncConnection, account_id: str, group_key: str) -> Sequence[Row]:
    query = (
        select(inbound_parts)
        .where(inbound_parts.c.account_id == account_id, inbound_parts.c.group_key == group_key)
        .order_by(inbound_parts.c.part)
    )
    return many((await conn.execute(query)).mappings().all())


async def delete_parts(conn: AsyncConnection, account_id: str, group_key: str) -> None:
    await conn.execute(
        delete(inbound_parts).where(
            inbound_parts.c.account_id == account_id, inbound_parts.c.group_key == group_key
        )
    )


async def insert_media(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(media), list(rows))


async def get_media(conn: AsyncConnection, token: str) -> Row | None:
    return one((await conn.execute(select(media).where(media.c.token == token))).mappings().first())
