"""The long-lived SMPP sessions of a worker process: one per SMPP provider account.

HTTP carriers are stateless adapters; an SMPP account is a TCP session that must stay
bound to receive receipts and inbound texts. :class:`SmppSessions` keeps one
:class:`SmppProvider` per account in the process's :class:`ProviderRegistry`: ``sync``
starts sessions for new accounts, restarts those whose settings or credentials changed,
and unbinds those that are gone; ``close`` unbinds them all at shutdown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from agentsms.providers.base import ProviderAccount, ProviderEvents
from agentsms.providers.registry import ProviderRegistry
from agentsms.providers.smpp import SmppOptions, SmppProvider

log = structlog.get_logger("agentsms.smpp_sessions")


def account_provider_name(account: ProviderAccount) -> str:
    """The registry name of an account's session (also ``messages.provider`` for the
    messages it sends, and ``AccountScope.provider`` for its receipts)."""
    return f"smpp:{account.id}"


class SmppSessions:
    """One bound SMPP session per SMPP provider account, registered by name."""

    def __init__(
        self,
        registry: ProviderRegistry,
        events: ProviderEvents,
        *,
        options: SmppOptions | None = None,
        name_of: Callable[[ProviderAccount], str] = account_provider_name,
    ) -> None:
        self.registry = registry
        self.events = events
        self.options = options
        self.name_of = name_of
        self._sessions: dict[str, tuple[ProviderAccount, SmppProvider]] = {}

    def get(self, account_id: str) -> SmppProvider | None:
        found = self._sessions.get(account_id)
        return None if found is None else found[1]

    async def sync(self, accounts: Sequence[ProviderAccount]) -> None:
        """Make the running sessions match ``accounts`` (non-SMPP accounts are ignored)."""
        wanted = {a.id: a for a in accounts if a.provider == "smpp"}
        for account_id in [i for i in self._sessions if i not in wanted]:
            await self._stop(account_id)
        for account_id, account in wanted.items():
            running = self._sessions.get(account_id)
            if running is not None and running[0] == account:
                continue
            if running is not None:
                await self._stop(account_id)
            try:
                provider = SmppProvider(
                    account, self.events, self.options, name=self.name_of(account)
                )
            except ValueError as error:
                log.error("smpp_sessions.bad_account", account=account_id, error=str(error))
                continue
            self._sessions[account_id] = (account, provider)
            self.registry.register(provider)
            await provider.start()
            log.info("smpp_sessions.started", account=account_id, provider=provider.name)

    async def close(self) -> None:
        """Unbind every session."""
        for account_id in list(self._sessions):
            await self._stop(account_id)

    async def _stop(self, account_id: str) -> None:
        _, provider = self._sessions.pop(account_id)
        self.registry.unregister(provider.name)
        await provider.close()
        log.info("smpp_sessions.stopped", account=account_id)
