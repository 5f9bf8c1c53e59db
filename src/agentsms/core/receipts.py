"""Delivery receipts: the one path every carrier's status report takes into agentsms.

Receipts come in the words of agentsms (a ``ReceiptStatus``), with the carrier's own error
code and, when the carrier gave it, the code in words; each provider module maps its
carrier's statuses and codes (see ``providers.catalog.error_description``). Carriers reach
``apply_receipts`` through ``core.provider_events.apply_carrier_receipts``, which matches
their reports to our messages first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import statuses
from agentsms.core.clock import from_epoch
from agentsms.core.messages import record_events
from agentsms.providers.base import Receipt
from agentsms.providers.catalog import error_description
from agentsms.store.records import AdvancedMessage
from agentsms.store.repositories import messages as repo


async def apply_receipts(conn: AsyncConnection, receipts: Sequence[Receipt]) -> int:
    """Move messages forward by their receipts; returns how many changed.

    A duplicate or out-of-order receipt (one whose status is not ahead of the message's)
    changes nothing, so replays and late reports are harmless.
    """
    now = from_epoch(time.time())
    changed = 0
    groups: dict[tuple[str, str | None, str | None], dict[str, Receipt]] = {}
    for receipt in receipts:
        if not receipt.reference:
            continue
        key = (receipt.status, receipt.error_code, receipt.error_message)
        # The same report twice in one delivery: one change, one event.
        groups.setdefault(key, {}).setdefault(receipt.reference, receipt)
    for (status, code, text), items in groups.items():
        values: dict[str, Any] = {"status": status, "updated_at": now, "in_flight": False}
        if status == statuses.DELIVERED:
            values["delivered_at"] = now
        if code is not None:
            values["error_code"] = code
            values["error_message"] = text or _unknown(code)
        elif status in (statuses.SENT, statuses.DELIVERED):
            # Sent after all: an earlier attempt's error no longer describes the message.
            values["error_code"] = values["error_message"] = None
        # The rows as they are after the change: no separate read of the messages.
        # A ``sent`` report leaves a message being sent to its sender, who records it.
        since = statuses.before(status)
        if status == statuses.SENT:
            since = tuple(s for s in since if s != statuses.SENDING)
        undescribed = code is not None and not text
        moved = await repo.advance(conn, list(items), from_statuses=since, values=values)
        changed += len(moved)
        if undescribed and code is not None:
            await _describe(conn, moved, code)
        data: dict[str, Any] = {} if code is None else {"error_code": code}
        # A final report can beat the sender's own record of the carrier's acceptance (the
        # message has no sent_at yet): its "sent" is told here, before the report's status.
        told = [m for m in moved if m.sent_at is None] if status != statuses.SENT else []
        await record_events(
            conn, [(m, statuses.SENT, {}) for m in told] + [(m, status, data) for m in moved], now
        )
        await _fill_provider_details(conn, [(items[m.id], m) for m in moved])
    return changed


async def _fill_provider_details(
    conn: AsyncConnection, items: Sequence[tuple[Receipt, AdvancedMessage]]
) -> None:
    rows = []
    for receipt, message in items:
        if receipt.price is None and (
            receipt.provider_message_id is None or message.provider_message_id
        ):
            continue
        row: dict[str, Any] = {"b_id": message.id}
        row["provider_message_id"] = message.provider_message_id or receipt.provider_message_id
        if receipt.price is not None:
            row["price"] = receipt.price
        rows.append(row)
    # update_each wants rows of one shape: with and without a price.
    for shape in (True, False):
        same = [row for row in rows if ("price" in row) is shape]
        if same:
            await repo.update_each(conn, same, from_statuses=statuses.ALL)


def _unknown(code: str) -> str:
    return f"carrier error {code}"


async def _describe(conn: AsyncConnection, moved: Sequence[AdvancedMessage], code: str) -> None:
    """A code given without words: in the words of the provider each message went through,
    when it knows the code."""
    described = [
        {"b_id": m.id, "error_message": words}
        for m in moved
        if (words := error_description(m.provider, code)) is not None
    ]
    await repo.update_each(conn, described, from_statuses=statuses.ALL)
