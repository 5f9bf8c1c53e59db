"""At most so many requests at a time to one origin (scheme, host, port).

Webhook attempts share one pooled client; without a per-origin bound one slow customer
endpoint could take every pooled connection and every delivery slot. The bookkeeping
lives only while an origin has requests running or waiting, so a stream of distinct
origins leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx


@dataclass(slots=True)
class _Slot:
    semaphore: asyncio.Semaphore
    users: int = 0


@functools.lru_cache(maxsize=4096)
def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url`` (the unit connections are pooled by); kept, as an
    endpoint's URL comes again and again."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}"


class OriginLimits:
    """``hold(url)``: wait for one of the ``per_origin`` slots of the URL's origin."""

    def __init__(self, per_origin: int) -> None:
        self.per_origin = per_origin
        self._slots: dict[str, _Slot] = {}

    @property
    def origins(self) -> int:
        """Origins with requests running or waiting."""
        return len(self._slots)

    @asynccontextmanager
    async def hold(self, url: str) -> AsyncIterator[bool]:
        """Hold a slot of ``url``'s origin; yields whether it had to wait for one."""
        origin = origin_of(url)
        slot = self._slots.get(origin)
        if slot is None:
            slot = self._slots[origin] = _Slot(asyncio.Semaphore(self.per_origin))
        slot.users += 1
        try:
            waited = slot.semaphore.locked()
            async with slot.semaphore:
                yield waited
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[origin]
