"""A person's time zone, as the database knows it: their contact's ``timezone``.

The rules themselves (most specific first: contact, conversation, configured, number,
UTC) are pure and live in :mod:`agentsms.timezones`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.store.repositories import contacts as contacts_repo
from agentsms.timezones import (
    METADATA_KEY,
    UTC_ZONE,
    UnknownZone,
    metadata_zone,
    person_zones,
    zone,
    zone_problem,
    zones_for,
)

__all__ = [
    "METADATA_KEY",
    "UTC_ZONE",
    "UnknownZone",
    "contact_zone",
    "contact_zones",
    "metadata_zone",
    "person_zones",
    "zone",
    "zone_problem",
    "zones_for",
]


async def contact_zone(conn: AsyncConnection, project_id: str, number: str) -> str | None:
    """The ``timezone`` of the project's contact for ``number`` (E.164), if any."""
    found = await contacts_repo.timezones_by_number(conn, [(project_id, number)])
    return found.get((project_id, number))


async def contact_zones(
    conn: AsyncConnection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """``(project_id, number) → timezone`` for the pairs whose contact has a time zone."""
    return await contacts_repo.timezones_by_number(conn, pairs)
