"""Provider accounts, inbound de-duplication, multi-part inbound texts and stored media."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


async def messages_for_receipts(
    conn: AsyncConnection,
    *,
    provider: str,
    project_id: str | None,
    account_id: str | None = None,
    references: Sequence[str] = (),
    provider_ids: Sequence[str] = (),
) -> Sequence[Row]:
    """``id`` and ``provider_message_id`` of outbound messages a carrier reports on: found
    by our id, or by the carrier's id among the messages of ``provider``.

    With a ``project_id`` (a provider account's), only that project's messages, and by
    carrier id only those not sent from another account's number (two SMSCs may issue the
    same ids; a number removed since still matches). Without one (the simulator, which
    carries every project's texts), only messages sent through ``provider``.
    """
    dialect = conn.dialect.name
    scope, value = ("provider", provider) if project_id is None else ("project_id", project_id)
    found: list[Row] = []
    wanted = list(dict.fromkeys(references))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        # By primary key only (the scope is checked here, so no planner is tempted to walk
        # a project's or a provider's index instead).
        result = await conn.exec_driver_sql(
            "SELECT id, provider_message_id, project_id, provider FROM messages "
            f"WHERE id {id_list_sql(dialect, len(chunk), 1)} AND direction = 'outbound'",
            tuple(id_list_params(dialect, chunk)),
        )
        for row in result.mappings():
            if row[scope] == value:
                found.append({"id": row["id"], "provider_message_id": row["provider_message_id"]})
    wanted = list(dict.fromkeys(provider_ids))
    if project_id is None:
        by_carrier_id = _ANY_PROJECT_SQLITE if dialect == "sqlite" else _ANY_PROJECT
    else:
        by_carrier_id = _BY_CARRIER_ID_SQLITE if dialect == "sqlite" else _BY_CARRIER_ID
    for start in range(0, len(wanted), _CHUNK):
        params = {
            "provider": provider,
            "ids": wanted[start : start + _CHUNK],
            "project_id": project_id,
            "account_id": account_id,
        }
        if project_id is None:
            del params["project_id"], params["account_id"]
        found.extend(many((await conn.execute(by_carrier_id, params)).mappings().all()))
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
