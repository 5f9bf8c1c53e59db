"""The suppression list: who opted out, since when, and how; add, remove, import, export.

An opt-out covers the whole project (``scope: "project"``): no number of its sender pool
texts the person (``RECIPIENT_OPTED_OUT``) until they opt back in, except the compliance
answers. ``source`` says how an entry came to be: ``keyword`` (the person texted an opt-out
word, kept in ``keyword``, to our ``number``), ``api``, ``import`` (a CSV file), or
``dashboard``. Removing an entry opts the person back in (``recipient.opted_in`` event).

A CSV import is all or nothing: one bad row and nothing is added, and every bad row is
named (``rows[<line>].phone_number``, the file's line number, header included).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import webhooks
from agentsms.core import conversations
from agentsms.core.phone import InvalidPhoneNumberError, parse_phone, parse_phone_field
from agentsms.errors import FieldError, NotFound, ValidationFailed, invalid
from agentsms.store.repositories import Row
from agentsms.store.repositories import conversations as conversations_repo
from agentsms.store.repositories import optouts as repo
from agentsms.store.repositories.optouts import OptOutFilter
from agentsms.store.types import utcnow
from agentsms.webhooks.events import Event, emit_many

Source = Literal["keyword", "api", "import", "dashboard"]
SOURCES: tuple[Source, ...] = ("keyword", "api", "import", "dashboard")
SCOPE = "project"
"""What an opt-out covers: every sender number of the project."""
MAX_IMPORT_ROWS = 100_000
CSV_COLUMNS = ("phone_number", "scope", "source", "keyword", "number", "created_at")
"""The export's columns; an import reads ``phone_number`` and, when given, ``keyword`` and
``created_at`` (other columns are ignored, so an export imports as it is)."""


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import did: entries added, and those already on the list (left as they were)."""

    added: int
    already: int


def encode_cursor(row: Row) -> str:
    """The cursor of the page after ``row``."""
    raw = f"{row['created_at'].astimezone(UTC).isoformat()}|{row['recipient']}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, recipient = raw.split("|", 1)
        return datetime.fromisoformat(at), recipient
    except ValueError:
        raise invalid("cursor", "is not a cursor this list returned") from None


async def list_opt_outs(
    conn: AsyncConnection,
    project_id: str,
    *,
    phone_number: str | None = None,
    source: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[Row], str | None]:
    """A page of the project's opt-outs, newest first, and the next page's cursor."""
    where = OptOutFilter(
        project_id=project_id,
        recipient=None
        if phone_number is None
        else parse_phone_field(phone_number, "phone_number").e164,
        source=source,
        after=None if cursor is None else _decode_cursor(cursor),
    )
    rows = await repo.page(conn, where, limit + 1)
    more = len(rows) > limit
    return rows[:limit], encode_cursor(rows[limit - 1]) if more else None


async def every_opt_out(conn: AsyncConnection, project_id: str) -> list[Row]:
    """The whole list, newest first (for exports)."""
    found: list[Row] = []
    where = OptOutFilter(project_id=project_id)
    while True:
        rows = await repo.page(conn, where, 1000)
        found.extend(rows)
        if len(rows) < 1000:
            return found
        where = OptOutFilter(project_id, after=(rows[-1]["created_at"], rows[-1]["recipient"]))


async def get_opt_out(conn: AsyncConnection, project_id: str, phone_number: str) -> Row:
    """The entry of ``phone_number``; ``NotFound`` when the person is not opted out."""
    recipient = parse_phone_field(phone_number, "phone_number").e164
    row = await repo.get(conn, project_id, recipient)
    if row is None:
        raise NotFound(f"{recipient} has not opted out of this project")
    return row


async def add_opt_out(
    conn: AsyncConnection,
    project_id: str,
    phone_number: str,
    *,
    source: Source,
    keyword: str | None = None,
) -> tuple[Row, bool]:
    """Put a person on the list (their active conversations end); the entry and whether it
    is new (an entry already there is left as it was)."""
    recipient = parse_phone_field(phone_number, "phone_number").e164
    added = await _record(
        conn,
        project_id,
        [{"recipient": recipient, "keyword": keyword, "created_at": utcnow()}],
        source,
    )
    row = await repo.get(conn, project_id, recipient)
    assert row is not None
    return row, bool(added)


async def remove_opt_out(
    conn: AsyncConnection, project_id: str, phone_number: str, *, source: Source
) -> Row:
    """Opt a person back in: the entry goes (and is returned) and ``recipient.opted_in`` is
    emitted; ``NotFound`` when the person was not opted out."""
    row = await get_opt_out(conn, project_id, phone_number)
    await repo.remove(conn, project_id, row["recipient"])
    await webhooks.emit(
        conn,
        project_id=project_id,
        event_type="recipient.opted_in",
        data=_event_data(row["recipient"], None, source),
    )
    return row


async def import_csv(
    conn: AsyncConnection, project_id: str, text: str, *, source: Source = "import"
) -> Imported:
    """Add every person of a CSV file to the list, or nobody (``ValidationFailed`` naming
    each bad row)."""
    entries = parse_csv(text)
    added = await _record(conn, project_id, entries, source)
    return Imported(added=added, already=len(entries) - added)


def parse_csv(text: str) -> list[dict[str, Any]]:
    """The entries of a CSV file: a header naming ``phone_number`` (and optionally
    ``keyword``, ``created_at``), or a bare column of numbers. Repeats are dropped."""
    rows = [
        (line, cells)
        for line, cells in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1)
        if any(cell.strip() for cell in cells)
    ]
    if not rows:
        raise invalid("file", "has no rows; give a phone_number column")
    columns = {name.strip().lower(): i for i, name in enumerate(rows[0][1])}
    if "phone_number" in columns:
        rows = rows[1:]
    elif _is_phone(rows[0][1][0]):
        columns = {"phone_number": 0}
    else:
        raise invalid("file", "the header names no phone_number column")
    if len(rows) > MAX_IMPORT_ROWS:
        raise invalid("file", f"has {len(rows)} rows; the limit is {MAX_IMPORT_ROWS}")
    errors: list[FieldError] = []
    entries: dict[str, dict[str, Any]] = {}
    now = utcnow()
    for line, cells in rows:
        entry = _entry(line, cells, columns, now, errors)
        if entry is not None:
            entries.setdefault(entry["recipient"], entry)
    if errors:
        shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:20])
        raise ValidationFailed(f"nothing was imported: {shown}", errors=errors)
    return list(entries.values())


def export_csv(rows: Iterable[Row]) -> str:
    """The list as a CSV file (``CSV_COLUMNS``), which ``import_csv`` reads back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row["recipient"],
                SCOPE,
                row["source"],
                row["keyword"] or "",
                row["number"] or "",
                row["created_at"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
            ]
        )
    return out.getvalue()


def _is_phone(value: str) -> bool:
    try:
        parse_phone(value)
    except InvalidPhoneNumberError:
        return False
    return True


def _cell(cells: Sequence[str], columns: Mapping[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _entry(
    line: int,
    cells: Sequence[str],
    columns: Mapping[str, int],
    now: datetime,
    errors: list[FieldError],
) -> dict[str, Any] | None:
    raw = _cell(cells, columns, "phone_number")
    field = f"rows[{line}]"
    try:
        recipient = parse_phone(raw).e164 if raw else None
    except InvalidPhoneNumberError as error:
        errors.append(FieldError(f"{field}.phone_number", f"{raw!r}: {error.reason}"))
        return None
    if recipient is None:
        errors.append(FieldError(f"{field}.phone_number", "is empty"))
        return None
    created_at = now
    when = _cell(cells, columns, "created_at")
    if when:
        try:
            created_at = datetime.fromisoformat(when)
        except ValueError:
            errors.append(FieldError(f"{field}.created_at", f"{when!r} is not an ISO 8601 time"))
            return None
        created_at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        if created_at > now:
            errors.append(FieldError(f"{field}.created_at", "is in the future"))
            return None
    keyword = _cell(cells, columns, "keyword")[:40] or None
    return {"recipient": recipient, "keyword": keyword, "created_at": created_at}


async def _record(
    conn: AsyncConnection, project_id: str, entries: Sequence[Mapping[str, Any]], source: Source
) -> int:
    """Record new entries; end the conversations of the people newly on the list and emit
    ``recipient.opted_out`` for each. How many were new."""
    already = await repo.opted_out(conn, project_id, [e["recipient"] for e in entries])
    fresh = [e for e in entries if e["recipient"] not in already]
    if not fresh:
        return 0
    await repo.record_many(
        conn,
        [{**entry, "project_id": project_id, "source": source, "number": None} for entry in fresh],
    )
    recipients = [e["recipient"] for e in fresh]
    active = await conversations_repo.active_for_users(conn, project_id, recipients)
    await conversations.end_conversations(
        conn,
        project_id,
        [c.id for c in active],
        status=conversations.OPTED_OUT,
        reason="opt_out",
        now=utcnow(),
    )
    await emit_many(
        conn,
        project_id,
        [
            Event("recipient.opted_out", _event_data(e["recipient"], e["keyword"], source))
            for e in fresh
        ],
    )
    return len(fresh)


def _event_data(recipient: str, keyword: str | None, source: Source) -> dict[str, Any]:
    return {
        "recipient": recipient,
        "number": None,
        "keyword": keyword,
        "source": source,
        "conversation_id": None,
        "metadata": {},
    }
