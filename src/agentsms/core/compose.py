"""Composing sends by hand: recipients from a CSV, a preview of each row, a live counter.

The dashboard's compose page uses these; every rule of what a valid message is stays in
``core.sending`` (``Outbox.check`` validates a preview exactly as a send would).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.numbers import SenderPool
from agentsms.core.segments import (
    GSM7_MULTI_PART,
    GSM7_SINGLE,
    UCS2_MULTI_PART,
    UCS2_SINGLE,
    count_segments,
)
from agentsms.core.sending import BatchSpec, OutboundSpec, Outbox
from agentsms.core.storable import text_problem
from agentsms.core.templates import has_placeholders
from agentsms.errors import FieldError, ValidationFailed, invalid
from agentsms.store.repositories import numbers as numbers_repo

NUMBER_COLUMNS = ("to", "phone", "number")
RESERVED_COLUMNS = frozenset({*NUMBER_COLUMNS, "body", "send_at", "external_id"})


@dataclass(frozen=True, slots=True)
class CsvRecipient:
    """One CSV row: the recipient, its own ``{{variables}}``, and the line it came from."""

    line: int
    to: str
    variables: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    external_id: str | None = None


def read_csv(
    text: str, *, max_rows: int | None = None, field_name: str = "file"
) -> list[CsvRecipient]:
    """Parse a recipients CSV: a ``to``/``phone``/``number`` column, optional ``body`` and
    ``external_id``; every other column is a variable for ``{{column}}`` placeholders (an
    empty cell counts as missing, so a text that uses it is refused for that row).

    Raises ``ValidationFailed`` naming ``field_name`` when the file cannot be used at all
    (or has more than ``max_rows`` recipients, when given; a batch's own limit is the
    ``Outbox``'s to check).
    """
    if (problem := text_problem(text)) is not None:
        raise invalid(field_name, problem)
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        headers = [name for name in (reader.fieldnames or []) if name]
        by_key = {name.strip().lower(): name for name in headers}
        column = next((by_key[c] for c in NUMBER_COLUMNS if c in by_key), None)
        if column is None:
            raise invalid(
                field_name,
                f"no recipient column; name one of {', '.join(NUMBER_COLUMNS)} "
                f"(found: {', '.join(headers) or 'no header'})",
            )
        variables = [name for name in headers if name.strip().lower() not in RESERVED_COLUMNS]
        rows: list[CsvRecipient] = []
        for record in reader:
            values = {k: (v or "").strip() for k, v in record.items() if isinstance(v, str) and k}
            if not any(values.values()):
                continue
            if max_rows is not None and len(rows) == max_rows:
                raise invalid(field_name, f"has more than {max_rows} recipients")
            rows.append(
                CsvRecipient(
                    line=reader.line_num,
                    to=values.get(column, ""),
                    # An empty cell is a missing value: "Hi {{name}}" never goes out as "Hi ".
                    variables={n.strip(): values[n] for n in variables if values.get(n)},
                    body=values.get(by_key.get("body", ""), "") or None,
                    external_id=values.get(by_key.get("external_id", ""), "") or None,
                )
            )
    except csv.Error as error:
        raise invalid(field_name, f"is not a readable CSV file: {error}") from None
    if not rows:
        raise invalid(field_name, "has no recipients")
    return rows


def outbound(
    recipient: CsvRecipient,
    template: str,
    *,
    from_: str | None = None,
    send_at: datetime | None = None,
) -> OutboundSpec:
    """The message one CSV row asks for (the row's own ``body`` wins over the template)."""
    return OutboundSpec(
        to=recipient.to,
        body=recipient.body if recipient.body is not None else template,
        from_=from_,
        send_at=send_at,
        external_id=recipient.external_id,
        variables=recipient.variables,
    )


def batch_spec(
    recipients: Sequence[CsvRecipient],
    template: str,
    *,
    from_: str | None = None,
    send_at: datetime | None = None,
    spacing_seconds: float | None = None,
) -> BatchSpec:
    return BatchSpec(
        items=[outbound(r, template, from_=from_, send_at=send_at) for r in recipients],
        spacing_seconds=spacing_seconds,
    )


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One recipient as it would be sent: the filled text, its cost, or what is wrong."""

    line: int
    to: str
    body: str | None
    segments: int | None
    encoding: str | None
    price: Decimal | None
    currency: str | None
    errors: list[FieldError]


async def preview(
    conn: AsyncConnection,
    outbox: Outbox,
    project_id: str,
    recipients: Sequence[CsvRecipient],
    template: str,
    *,
    from_: str | None = None,
    project_settings: Mapping[str, Any] | None = None,
) -> list[PreviewRow]:
    """Every row filled, validated and priced as ``outbox`` would send it, writing nothing."""
    specs = [outbound(r, template, from_=from_) for r in recipients]
    found = await outbox.check(conn, project_id, specs, project_settings=project_settings)
    rows: list[PreviewRow] = []
    for recipient, checked in zip(recipients, found, strict=True):
        message = checked.message
        rows.append(
            PreviewRow(
                line=recipient.line,
                to=message["to_number"] if message else recipient.to,
                body=message["body"] if message else None,
                segments=message["segments"] if message else None,
                encoding=message["encoding"] if message else None,
                price=Decimal(message["price_estimate"]) if message else None,
                currency=message["currency"] if message else None,
                errors=checked.errors,
            )
        )
    return rows


def row_errors(error: ValidationFailed) -> dict[int, list[FieldError]]:
    """A batch's ``recipients[i].field`` errors grouped by recipient index ``i``."""
    grouped: dict[int, list[FieldError]] = {}
    for item in error.errors:
        if item.field.startswith("recipients["):
            index, _, rest = item.field.removeprefix("recipients[").partition("]")
            grouped.setdefault(int(index), []).append(
                FieldError(rest.removeprefix(".") or "to", item.message)
            )
    return grouped


@dataclass(frozen=True, slots=True)
class Counter:
    """What a text costs as SMS while it is being typed."""

    encoding: str
    segments: int
    units: int
    characters: int
    units_left: int
    templated: bool
    price_low: Decimal | None
    price_high: Decimal | None
    currency: str | None


async def count(
    conn: AsyncConnection, project_id: str, body: str, *, from_: str | None = None
) -> Counter:
    """Segments, encoding and price range of ``body`` from ``from_`` or the senders in the
    pool that could carry it. A template is counted as written (before filling)."""
    info = count_segments(body)
    single, part = (
        (GSM7_SINGLE, GSM7_MULTI_PART)
        if info.encoding == "GSM-7"
        else (UCS2_SINGLE, UCS2_MULTI_PART)
    )
    capacity = single if info.segments <= 1 else part * info.segments
    numbers = list(await numbers_repo.list_numbers(conn, project_id))
    if from_:
        pool = SenderPool(numbers)
        try:
            numbers = [pool.explicit(from_, "from")]
        except ValidationFailed:
            numbers = []
    senders = [n for n in numbers if "sms" in n["capabilities"]]
    prices = sorted(Decimal(n["price_per_segment"]) * info.segments for n in senders)
    return Counter(
        encoding=info.encoding,
        segments=info.segments,
        units=info.units,
        characters=info.characters,
        units_left=capacity - info.units,
        templated=has_placeholders(body),
        price_low=prices[0] if prices else None,
        price_high=prices[-1] if prices else None,
        currency=senders[0]["currency"] if senders else None,
    )
