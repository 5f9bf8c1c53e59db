"""Personas and their versions, pathways and their versions, dispositions, extraction schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.numeric import INT32_MAX, whole_number
from agentsms.store.repositories import Row, many, one
from agentsms.store.tables import (
    dispositions,
    extraction_schemas,
    pathway_versions,
    pathways,
    persona_versions,
    personas,
)


async def insert_persona(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(personas).values(**row))


async def next_alias(conn: AsyncConnection, project_id: str) -> int:
    query = select(func.coalesce(func.max(personas.c.alias), 0)).where(
        personas.c.project_id == project_id
    )
    return int((await conn.execute(query)).scalar_one()) + 1


async def get_persona(conn: AsyncConnection, project_id: str, ref: str) -> Row | None:
    """A persona by id, or by its numeric alias."""
    query = select(personas).where(personas.c.project_id == project_id)
    alias = whole_number(ref, INT32_MAX)
    query = query.where(personas.c.alias == alias if alias is not None else personas.c.id == ref)
    return one((await conn.execute(query)).mappings().first())


async def list_personas(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    query = select(personas).where(personas.c.project_id == project_id).order_by(personas.c.id)
    return many((await conn.execute(query)).mappings().all())


async def update_persona(conn: AsyncConnection, persona_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(personas).where(personas.c.id == persona_id).values(**values))


async def delete_persona(conn: AsyncConnection, persona_id: str) -> None:
    """The persona and its versions."""
    await conn.execute(delete(persona_versions).where(persona_versions.c.persona_id == persona_id))
    await conn.execute(delete(personas).where(personas.c.id == persona_id))


async def insert_version(conn: AsyncConnection, table: Table, row: dict[str, Any]) -> None:
    await conn.execute(insert(table).values(**row))


async def latest_version(conn: AsyncConnection, table: Table, owner: str) -> int:
    key = table.c.persona_id if table is persona_versions else table.c.pathway_id
    query = select(func.coalesce(func.max(table.c.version), 0)).where(key == owner)
    return int((await conn.execute(query)).scalar_one())


async def get_version(conn: AsyncConnection, table: Table, owner: str, version: int) -> Row | None:
    key = table.c.persona_id if table is persona_versions else table.c.pathway_id
    query = select(table).where(key == owner, table.c.version == version)
    return one((await conn.execute(query)).mappings().first())


async def versions(conn: AsyncConnection, table: Table, owner: str) -> Sequence[Row]:
    key = table.c.persona_id if table is persona_versions else table.c.pathway_id
    query = select(table).where(key == owner).order_by(table.c.version)
    return many((await conn.execute(query)).mappings().all())


async def insert_pathway(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(pathways).values(**row))


async def get_pathway(conn: AsyncConnection, project_id: str, pathway_id: str) -> Row | None:
    query = select(pathways).where(pathways.c.project_id == project_id, pathways.c.id == pathway_id)
    return one((await conn.execute(query)).mappings().first())


async def list_pathways(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    query = select(pathways).where(pathways.c.project_id == project_id).order_by(pathways.c.id)
    return many((await conn.execute(query)).mappings().all())


async def insert_named(conn: AsyncConnection, table: Table, row: dict[str, Any]) -> None:
    """A disposition or an extraction schema."""
    await conn.execute(insert(table).values(**row))


async def named_by_name(conn: AsyncConnection, table: Table, project_id: str, name: str) -> bool:
    query = select(table.c.id).where(table.c.project_id == project_id, table.c.name == name)
    return (await conn.execute(query)).first() is not None


async def list_named(conn: AsyncConnection, table: Table, project_id: str) -> Sequence[Row]:
    query = select(table).where(table.c.project_id == project_id).order_by(table.c.id)
    return many((await conn.execute(query)).mappings().all())


async def named_by_ids(
    conn: AsyncConnection, table: Table, project_id: str, ids: Sequence[str]
) -> dict[str, Row]:
    if not ids:
        return {}
    query = select(table).where(table.c.project_id == project_id, table.c.id.in_(list(ids)))
    return {row["id"]: row for row in many((await conn.execute(query)).mappings())}


__all__ = [
    "dispositions",
    "extraction_schemas",
    "pathway_versions",
    "persona_versions",
]
