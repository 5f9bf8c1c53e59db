"""A project's address book: people by phone number, with a name, an email, notes, their
time zone (read before the one their number implies, see :mod:`agentsms.core.zones`) and
free-form metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.numbers import CHANNELS
from agentsms.core.phone import line_type, parse_phone_field
from agentsms.core.storable import metadata_problem
from agentsms.core.zones import zone_problem
from agentsms.errors import Conflict, NotFound, invalid
from agentsms.ids import new_id
from agentsms.store.repositories import Row
from agentsms.store.repositories import contacts as repo
from agentsms.store.repositories import numbers as numbers_repo
from agentsms.store.types import utcnow

MAX_NAME = 200
MAX_EMAIL = 320
MAX_NOTES = 10_000


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A contact's fields; ``None`` leaves a field as it is on update, unless it is named
    in ``cleared`` (then it is emptied)."""

    phone_number: str | None = None
    name: str | None = None
    email: str | None = None
    notes: str | None = None
    timezone: str | None = None
    metadata: Mapping[str, Any] | None = None
    cleared: frozenset[str] = field(default=frozenset())


CLEARABLE = frozenset({"email", "notes", "timezone", "metadata"})


def _check(spec: ContactInput) -> None:
    if spec.name is not None and not (0 < len(spec.name.strip()) <= MAX_NAME):
        raise invalid("name", f"must be 1 to {MAX_NAME} characters")
    if spec.email is not None and (len(spec.email) > MAX_EMAIL or "@" not in spec.email):
        raise invalid("email", "must be an email address")
    if spec.notes is not None and len(spec.notes) > MAX_NOTES:
        raise invalid("notes", f"at most {MAX_NOTES} characters")
    if spec.timezone is not None and (problem := zone_problem(spec.timezone)) is not None:
        raise invalid("timezone", problem)
    if spec.metadata is not None and (problem := metadata_problem(spec.metadata)) is not None:
        raise invalid("metadata", problem)
    fixed = sorted(spec.cleared - CLEARABLE)
    if fixed:
        raise invalid(fixed[0], "cannot be null")


async def _unused(conn: AsyncConnection, project_id: str, e164: str, own_id: str | None) -> None:
    existing = await repo.find_by_number(conn, project_id, e164)
    if existing is not None and existing["id"] != own_id:
        raise Conflict(f"{e164} is already contact {existing['id']}", code="contact_exists")


async def create_contact(conn: AsyncConnection, project_id: str, spec: ContactInput) -> Row:
    if spec.phone_number is None:
        raise invalid("phone_number", "is required")
    if spec.name is None:
        raise invalid("name", "is required")
    phone = parse_phone_field(spec.phone_number, "phone_number")
    _check(spec)
    await _unused(conn, project_id, phone.e164, None)
    now = utcnow()
    row = {
        "id": new_id("ct"),
        "project_id": project_id,
        "phone_number": phone.e164,
        "name": spec.name.strip(),
        "email": spec.email,
        "notes": spec.notes,
        "timezone": spec.timezone,
        "metadata": dict(spec.metadata or {}),
        "created_at": now,
        "updated_at": now,
    }
    await repo.insert_contact(conn, row)
    return row


async def get_contact(conn: AsyncConnection, project_id: str, contact_id: str) -> Row:
    row = await repo.get_contact(conn, project_id, contact_id)
    if row is None:
        raise NotFound(f"contact {contact_id} not found")
    return row


async def list_contacts(
    conn: AsyncConnection, project_id: str, *, search: str | None, limit: int, offset: int
) -> tuple[Sequence[Row], int]:
    """A page of contacts whose name, number or email contains ``search``, and the total."""
    rows = await repo.list_contacts(conn, project_id, search, limit, offset)
    return rows, await repo.count_contacts(conn, project_id, search)


async def page_contacts(
    conn: AsyncConnection,
    project_id: str,
    *,
    phone_number: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Row], str | None]:
    """A page of contacts, newest first, and the cursor of the next page (or ``None``);
    ``phone_number`` (any format) keeps that person's contact only."""
    e164 = None if phone_number is None else parse_phone_field(phone_number, "phone_number").e164
    rows = await repo.page_contacts(
        conn, project_id, phone_number=e164, before_id=cursor, limit=limit + 1
    )
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)


async def update_contact(
    conn: AsyncConnection, project_id: str, contact_id: str, spec: ContactInput
) -> Row:
    row = await get_contact(conn, project_id, contact_id)
    _check(spec)
    values: dict[str, object] = {"updated_at": utcnow()}
    if spec.phone_number is not None:
        phone = parse_phone_field(spec.phone_number, "phone_number")
        await _unused(conn, project_id, phone.e164, row["id"])
        values["phone_number"] = phone.e164
    if spec.name is not None:
        values["name"] = spec.name.strip()
    if spec.email is not None:
        values["email"] = spec.email
    if spec.notes is not None:
        values["notes"] = spec.notes
    if spec.timezone is not None:
        values["timezone"] = spec.timezone
    if spec.metadata is not None:
        values["metadata"] = dict(spec.metadata)
    for name in spec.cleared:
        values[name] = {} if name == "metadata" else None
    await repo.update_contact(conn, row["id"], values)
    return await get_contact(conn, project_id, contact_id)


async def delete_contact(conn: AsyncConnection, project_id: str, contact_id: str) -> None:
    if not await repo.delete_contact(conn, project_id, contact_id):
        raise NotFound(f"contact {contact_id} not found")


@dataclass(frozen=True, slots=True)
class Reach:
    """How the project can text a person: their line, and the channels its pool can use."""

    phone_number: str
    line_type: str
    channels: tuple[str, ...]


TEXT_ONLY_LINES = frozenset({"landline", "toll_free"})
"""Lines that take no media, iMessage or WhatsApp (a text may still reach them)."""


async def reach(conn: AsyncConnection, project_id: str, raw_number: str) -> Reach:
    """The channels the project's sender pool offers that can reach ``raw_number``.

    Whether a person uses iMessage or WhatsApp is not knowable without sending: those
    channels are listed when the pool has them and the line is not a landline.
    """
    e164 = parse_phone_field(raw_number, "phone_number").e164
    kind = line_type(e164)
    offered = {
        c for row in await numbers_repo.list_numbers(conn, project_id) for c in row["capabilities"]
    }
    if kind in TEXT_ONLY_LINES:
        offered &= {"sms"}
    return Reach(e164, kind, tuple(c for c in CHANNELS if c in offered))
