"""Provider names and provider accounts to adapters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from agentsms.providers.base import Provider

AccountLoader = Callable[[str], Awaitable[Provider]]
"""Builds the adapter of a provider account from its id (``LookupError`` if it is gone)."""


class ProviderRegistry:
    """The adapters this process can send through: built-in ones by name (the simulator),
    and one per provider account, built on first use and kept."""

    def __init__(self, account_loader: AccountLoader | None = None) -> None:
        self._providers: dict[str, Provider] = {}
        self._accounts: dict[str, Provider] = {}
        self._building: dict[str, asyncio.Lock] = {}
        self.account_loader = account_loader

    def register(self, provider: Provider) -> None:
        self._providers[provider.name] = provider

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise LookupError(f"no provider named {name!r}") from None

    async def resolve(self, name: str, account_id: str | None) -> Provider:
        """The adapter for a number: its account's when it has one, else by name."""
        if account_id is None:
            return self.get(name)
        return await self.for_account(account_id)

    async def for_account(self, account_id: str) -> Provider:
        """The adapter of one provider account (built once per process)."""
        found = self._accounts.get(account_id)
        if found is not None:
            return found
        if self.account_loader is None:
            raise LookupError("this process cannot load provider accounts")
        lock = self._building.setdefault(account_id, asyncio.Lock())
        async with lock:
            found = self._accounts.get(account_id)
            if found is None:
                built = await self.account_loader(account_id)
                found = self._accounts.setdefault(account_id, built)
                if found is not built:  # installed meanwhile (a worker's SMPP session)
                    await _close(built)
        return found

    def loaded(self) -> dict[str, Provider]:
        """The account adapters this process has built, by account id."""
        return dict(self._accounts)

    async def install(self, account_id: str, adapter: Provider) -> None:
        """Use ``adapter`` for an account from now on (closing the one it replaces)."""
        previous = self._accounts.get(account_id)
        self._accounts[account_id] = adapter
        if previous is not None and previous is not adapter:
            await _close(previous)

    async def forget(self, account_id: str) -> None:
        """Drop (and close) an account's adapter, e.g. when the account is deleted."""
        adapter = self._accounts.pop(account_id, None)
        self._building.pop(account_id, None)
        if adapter is not None:
            await _close(adapter)

    async def aclose(self) -> None:
        """Close every account adapter (HTTP clients, SMPP sessions)."""
        adapters = list(self._accounts.values())
        self._accounts.clear()
        for adapter in adapters:
            await _close(adapter)


async def _close(adapter: Provider) -> None:
    close = getattr(adapter, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
