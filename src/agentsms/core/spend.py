"""A project's daily spend cap: ``daily_segment_cap`` and ``daily_spend_cap`` in its settings.

A capped project's charges are counted per UTC day in one row (``repositories.usage``),
updated in the transaction that accepts or sends the messages, never by counting messages.
A message is charged once: at intake when it is due now (``queued``), or at dispatch when
it waited for a later time (``scheduled`` when a worker takes it). A send that would take
the day past either cap is refused with ``spend_cap_reached`` (HTTP 429, ``Retry-After``
until the next UTC midnight) and no provider is called for it. Opt-out confirmations are
charged but never refused. A project without a cap counts nothing; setting a cap starts
today's count from the messages the project accepted for sending today.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import compliance, statuses
from agentsms.errors import RateLimited, invalid
from agentsms.store.repositories import usage as repo
from agentsms.store.types import utcnow

SEGMENT_CAP = "daily_segment_cap"
SPEND_CAP = "daily_spend_cap"
SETTINGS_KEYS = (SEGMENT_CAP, SPEND_CAP)
CODE = "spend_cap_reached"
MAX_CAP = 1_000_000_000
_CENT_PARTS = Decimal("0.000001")


class SpendCapReached(RateLimited):
    """A send past the project's daily cap (429; retry after the next UTC midnight)."""

    code = CODE
    title = "Daily spend cap reached"


@dataclass(frozen=True, slots=True)
class Caps:
    """A project's caps per UTC day: segments, and spend in its numbers' price units."""

    segments: int | None
    spend: Decimal | None

    def allows(self, segments: int, spend: Decimal) -> bool:
        return (self.segments is None or segments <= self.segments) and (
            self.spend is None or spend <= self.spend
        )


def caps_of(settings: Mapping[str, Any]) -> Caps | None:
    """The caps in a project's settings, or None when it has none."""
    segments, spend = settings.get(SEGMENT_CAP), settings.get(SPEND_CAP)
    if segments is None and spend is None:
        return None
    return Caps(
        None if segments is None else int(segments),
        None if spend is None else Decimal(str(spend)),
    )


def normalized(key: str, value: Any) -> int | str | None:
    """A cap setting as stored (None removes the cap); ``ValidationFailed`` naming
    ``settings.<key>`` when it is not a bounded, finite amount."""
    if value is None:
        return None
    field = f"settings.{key}"
    if key == SEGMENT_CAP:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAP:
            raise invalid(field, f"must be a whole number of segments from 1 to {MAX_CAP}, or null")
        return value
    amount: Decimal | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
    if (
        amount is None
        or not amount.is_finite()
        or not 0 < amount <= MAX_CAP
        or amount != amount.quantize(_CENT_PARTS)
    ):
        raise invalid(
            field,
            f"must be an amount greater than 0 and at most {MAX_CAP} with at most 6 decimals, "
            "or null",
        )
    return f"{amount.normalize():f}"


def day_of(moment: datetime) -> str:
    """The UTC day a charge at ``moment`` counts toward (``YYYY-MM-DD``)."""
    return moment.astimezone(UTC).date().isoformat()


def _start_of_day(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)


def _refusal(caps: Caps, segments: int, spend: Decimal, now: datetime) -> SpendCapReached:
    parts = []
    if caps.segments is not None:
        parts.append(f"daily_segment_cap {caps.segments} ({segments} segments charged today)")
    if caps.spend is not None:
        parts.append(f"daily_spend_cap {caps.spend} ({spend} charged today)")
    reset = _start_of_day(now) + timedelta(days=1)
    return SpendCapReached(
        f"this send would pass the project's {' and '.join(parts)}; sends resume at "
        f"{reset.isoformat().replace('+00:00', 'Z')} (UTC day)",
        retry_after=max(1, math.ceil((reset - now).total_seconds())),
    )


class Costed(Protocol):
    """What charging reads of a message (a ``MessageRecord`` or a ``Cost``)."""

    @property
    def segments(self) -> int: ...

    @property
    def price_estimate(self) -> Decimal: ...

    @property
    def purpose(self) -> str: ...


class Cost(NamedTuple):
    """What a message not yet stored costs: its segments and price, and its purpose
    (a compliance answer is never refused)."""

    segments: int
    price_estimate: Decimal
    purpose: str


async def charge(
    conn: AsyncConnection,
    project_id: str,
    settings: Mapping[str, Any],
    rows: Sequence[Costed],
    now: datetime,
    *,
    all_or_nothing: bool,
) -> list[SpendCapReached | None]:
    """Charge today's count with ``rows`` (messages: ``segments``, ``price_estimate``,
    ``purpose``) in order: None for each charged, the refusal for each that would pass a
    cap. With ``all_or_nothing`` nothing is charged unless every row fits. Without caps
    nothing is counted and every row is None."""
    caps = caps_of(settings)
    if caps is None or not rows:
        return [None] * len(rows)
    day = day_of(now)
    segments, spend = await repo.lock_day(conn, project_id, day)
    outcomes: list[SpendCapReached | None] = []
    added_segments, added_spend = 0, Decimal(0)
    for row in rows:
        more_segments = segments + added_segments + int(row.segments)
        more_spend = spend + added_spend + Decimal(row.price_estimate)
        if caps.allows(more_segments, more_spend) or row.purpose == compliance.COMPLIANCE:
            added_segments = more_segments - segments
            added_spend = more_spend - spend
            outcomes.append(None)
        else:
            outcomes.append(_refusal(caps, segments + added_segments, spend + added_spend, now))
    if all_or_nothing and any(outcomes):
        return outcomes
    if added_segments or added_spend:
        await repo.add(conn, project_id, day, added_segments, added_spend)
    return outcomes


async def charge_intake(
    conn: AsyncConnection,
    project_id: str,
    settings: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    now: datetime,
) -> None:
    """Charge the accepted ``rows`` that are due now, all or none: ``SpendCapReached``
    when they do not all fit (scheduled ones are charged when they are sent)."""
    if caps_of(settings) is None:
        return
    due = [
        Cost(int(row["segments"]), Decimal(row["price_estimate"]), row["purpose"])
        for row in rows
        if row["status"] == statuses.QUEUED
    ]
    refused = next(
        (r for r in await charge(conn, project_id, settings, due, now, all_or_nothing=True) if r),
        None,
    )
    if refused is not None:
        raise refused


async def start_counting(
    conn: AsyncConnection, project_id: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> None:
    """When a project gets its first cap, today's count starts from what it has already
    accepted for sending today (while it has a cap, every charge keeps the count)."""
    if caps_of(old) is None and caps_of(new) is not None:
        now = utcnow()
        await repo.reset_day(conn, project_id, day_of(now), _start_of_day(now))
