"""What connection-oriented carriers (SMPP) push to agentsms, stored like any callback.

An SMPP session receives delivery receipts and inbound texts on its own socket; it hands
them to a :class:`StoredProviderEvents`, which applies the receipts
(:func:`agentsms.core.receipts.apply_receipts`, forward-only) and stores the texts
(:func:`agentsms.core.inbound.receive`), each in one write transaction. An exception
from here tells the session to make the carrier deliver again later (a database
outage); input that can never be stored (a text to a number that is not in the
project's pool) is logged and dropped, since delivering it again would not help.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from agentsms.core import inbound as inbound_texts
from agentsms.core.errors import AgentsmsError
from agentsms.core.receipts import apply_receipts
from agentsms.providers.base import InboundMessage, Receipt
from agentsms.store.db import Database
from agentsms.store.repositories import messages as messages_repo

log = structlog.get_logger("agentsms.provider_events")


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

    def __init__(self, db: Database, accounts: AccountLookup) -> None:
        self.db = db
        self.accounts = accounts

    async def receipts(self, account_id: str, receipts: Sequence[Receipt]) -> None:
        """Apply receipts; those naming only the carrier's id are matched to our message
        by (project, provider, provider_message_id)."""
        scope = await self.accounts(account_id)
        if scope is None:
            log.warning("provider_events.unknown_account", account=account_id)
            return
        async with self.db.write() as conn:
            unnamed = [r.provider_message_id for r in receipts if not r.reference]
            ids = await messages_repo.ids_by_provider_message_ids(
                conn, scope.project_id, scope.provider, [i for i in unnamed if i]
            )
            resolved = [
                r if r.reference else replace(r, reference=ids.get(r.provider_message_id or ""))
                for r in receipts
            ]
            unmatched = sum(1 for r in resolved if not r.reference)
            if unmatched:
                log.info("provider_events.unmatched_receipts", account=account_id, count=unmatched)
            await apply_receipts(conn, [r for r in resolved if r.reference])

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
