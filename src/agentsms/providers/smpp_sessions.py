"""The long-lived SMPP sessions of a worker process: one per SMPP provider account.

HTTP carriers are stateless adapters, built on first use; an SMPP account is a TCP
session that must stay bound to receive receipts and inbound texts, whether or not this
process has sent anything through it yet. :class:`SmppSessions` keeps the SMPP adapters
in the process's :class:`ProviderRegistry` (by account id, where the dispatcher finds
them) in step with the accounts it is given: ``sync`` starts sessions for new accounts,
rebinds those whose address or credentials changed, and unbinds those that are gone. The
worker reads the SMPP accounts from the database and syncs periodically
(``runtime.build_worker``); only worker processes (``agentsms worker``, and ``serve`` with
its built-in worker) sync: an SMSC limits the binds of a system_id, so API-only processes
never bind.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from agentsms.providers.base import ProviderAccount, ProviderEvents
from agentsms.providers.registry import ProviderRegistry
from agentsms.providers.smpp import AddressVetter, SmppOptions, SmppProvider

log = structlog.get_logger("agentsms.smpp_sessions")


class SmppSessions:
    """One bound SMPP session per SMPP provider account, kept in a registry."""

    def __init__(
        self,
        registry: ProviderRegistry,
        events: ProviderEvents,
        *,
        options: SmppOptions | None = None,
        vet: AddressVetter | None = None,
    ) -> None:
        """``vet`` is the SSRF guard in production (``webhooks.ssrf.tcp_address_vetter``)."""
        self.registry = registry
        self.events = events
        self.options = options
        self.vet = vet

    def running(self) -> dict[str, SmppProvider]:
        """The SMPP adapters of this process, by account id."""
        return {
            account_id: adapter
            for account_id, adapter in self.registry.loaded().items()
            if isinstance(adapter, SmppProvider)
        }

    async def sync(self, accounts: Sequence[ProviderAccount]) -> None:
        """Make the running sessions match ``accounts`` (non-SMPP accounts are ignored)."""
        wanted = {a.id: a for a in accounts if a.provider == "smpp"}
        for account_id in self.running().keys() - wanted.keys():
            await self.registry.forget(account_id)
            log.info("smpp_sessions.stopped", account_id=account_id)
        running = self.running()
        for account_id, account in wanted.items():
            session = running.get(account_id)
            if session is None or session.account != account:
                try:
                    session = SmppProvider(account, self.events, self.options, vet=self.vet)
                except ValueError as error:
                    log.error("smpp_sessions.bad_account", account_id=account_id, error=str(error))
                    continue
                await self.registry.install(account_id, session)
                log.info("smpp_sessions.started", account_id=account_id)
            await session.start()  # a no-op for a session that runs

    async def close(self) -> None:
        """Unbind every session."""
        for account_id in self.running():
            await self.registry.forget(account_id)
