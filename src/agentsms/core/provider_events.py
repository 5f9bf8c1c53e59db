"""What connection-oriented carriers (SMPP) push to agentsms, stored like any callback.

An SMPP session receives delivery receipts and inbound texts on its own socket; it hands
them to a :class:`StoredProviderEvents`, which applies the receipts
(:func:`agentsms.core.receipts.apply_receipts`, forward-only) and stores the texts
(:func:`agentsms.core.inbound.receive`), each in one write transaction. An exception
from here tells the session to make the carrier deliver again later (a database
outage); input that can never be stored (a text to a number that is not in the
project's pool) is logged and dropped, since delivering it again would not help.

A receipt that names only the carrier's id may come before the dispatcher has recorded
that id (another worker's session got it first): it is parked as an
``provider.unmatched_receipts`` job and matched again a few times before it is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import inbound as inbound_texts
from agentsms.core.errors import AgentsmsError
from agentsms.core.receipts import apply_receipts
from agentsms.jobs import queue
from agentsms.jobs.queue import Job, NewJob
from agentsms.providers.base import InboundMessage, Receipt
from agentsms.store.db import Database
from agentsms.store.repositories import messages as messages_repo

log = structlog.get_logger("agentsms.provider_events")

UNMATCHED_RECEIPTS_JOB = "provider.unmatched_receipts"
UNMATCHED_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class AccountScope:
    """Where a provider account's traffic belongs: its project, and the provider name
    that messages sent through it carry in ``messages.provider``."""

    project_id: str
    provider: str


AccountLookup = Callable[[str], Awaitable[AccountScope | None]]
"""Finds a provider account's scope by its id (None: the account no longer exists)."""


class StoredProviderEvents:
    """A :class:`agentsms.providers.base.ProviderEvents` backed by the database."""

    def __init__(
        self, db: Database, accounts: AccountLookup, *, unmatched_retry_seconds: float = 2.0
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.unmatched_retry_seconds = unmatched_retry_seconds

    async def receipts(self, account_id: str, receipts: Sequence[Receipt]) -> None:
        """Apply receipts; those naming only the carrier's id are matched to our message
        by (project, provider, provider_message_id), or parked to be matched later."""
        scope = await self.accounts(account_id)
        if scope is None:
            log.warning("provider_events.unknown_account", account=account_id)
            return
        async with self.db.write() as conn:
            unmatched = await _apply(conn, scope, receipts)
            if unmatched:
                await queue.enqueue(
                    conn,
                    NewJob(
                        kind=UNMATCHED_RECEIPTS_JOB,
                        payload={
                            "account_id": account_id,
                            "project_id": scope.project_id,
                            "provider": scope.provider,
                            "receipts": [_dump(r) for r in unmatched],
                        },
                        run_at=time.time() + self.unmatched_retry_seconds,
                        max_attempts=UNMATCHED_ATTEMPTS,
                    ),
                )

    async def inbound(self, account_id: str, message: InboundMessage) -> None:
        """Store an inbound text for the account's project."""
        scope = await self.accounts(account_id)
        if scope is None:
            log.warning("provider_events.unknown_account", account=account_id)
            return
        try:
            async with self.db.write() as conn:
                await inbound_texts.receive(conn, scope.project_id, scope.provider, message)
        except AgentsmsError as error:
            log.warning(
                "provider_events.inbound_dropped",
                account=account_id,
                to=message.to_number,
                reason=error.detail,
            )


class UnmatchedReceiptHandler:
    """Runs ``provider.unmatched_receipts`` jobs: match parked receipts again, with
    backoff, and drop what is still unmatched after the last attempt."""

    def __init__(self, db: Database, *, retry_seconds: float = 2.0) -> None:
        self.db = db
        self.retry_seconds = retry_seconds

    async def handle(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            payload = job.payload
            scope = AccountScope(payload["project_id"], payload["provider"])
            receipts = [_load(item) for item in payload.get("receipts", [])]
            async with self.db.write() as conn:
                unmatched = await _apply(conn, scope, receipts)
                if not unmatched:
                    await queue.finish(conn, [job.id])
                elif job.attempts >= job.max_attempts:
                    log.info(
                        "provider_events.receipts_dropped",
                        account=payload.get("account_id"),
                        provider_message_ids=[r.provider_message_id for r in unmatched],
                    )
                    await queue.finish(conn, [job.id])
                else:
                    # Receipts matched this time are applied again next time: harmless,
                    # receipts only move a message forward.
                    await queue.retry(
                        conn,
                        job.id,
                        run_at=time.time() + self.retry_seconds * 2 ** (job.attempts - 1),
                        error=f"{len(unmatched)} receipts not matched yet",
                    )


async def _apply(
    conn: AsyncConnection, scope: AccountScope, receipts: Sequence[Receipt]
) -> list[Receipt]:
    """Apply the receipts that name (or can be matched to) one of our messages; return
    those that cannot be matched yet."""
    unnamed = [r.provider_message_id for r in receipts if not r.reference]
    ids = await messages_repo.ids_by_provider_message_ids(
        conn, scope.project_id, scope.provider, [i for i in unnamed if i]
    )
    resolved = [
        r if r.reference else replace(r, reference=ids.get(r.provider_message_id or ""))
        for r in receipts
    ]
    await apply_receipts(conn, [r for r in resolved if r.reference])
    return [r for r in resolved if not r.reference and r.provider_message_id]


def _dump(receipt: Receipt) -> dict[str, Any]:
    return {
        "provider_message_id": receipt.provider_message_id,
        "status": receipt.status,
        "error_code": receipt.error_code,
        "error_message": receipt.error_message,
        "price": None if receipt.price is None else str(receipt.price),
        "currency": receipt.currency,
    }


def _load(item: dict[str, Any]) -> Receipt:
    return Receipt(
        provider_message_id=item["provider_message_id"],
        status=item["status"],
        error_code=item.get("error_code"),
        error_message=item.get("error_message"),
        price=None if item.get("price") is None else Decimal(item["price"]),
        currency=item.get("currency"),
    )
