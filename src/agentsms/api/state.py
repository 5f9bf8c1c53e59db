"""What every request handler can reach: settings, database, providers, limiter, caches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from agentsms.api.intake import SendIntake
from agentsms.api.scraped_counts import ScrapedCounts
from agentsms.config import Settings
from agentsms.core.projects import Project
from agentsms.core.sending import Outbox
from agentsms.errors import RateLimited, Unauthorized
from agentsms.providers.registry import ProviderRegistry
from agentsms.store.db import Database

FAILED_CREDENTIALS = "failed-credentials"
KEY_CACHE_LIMIT = 10_000
"""API keys (and compat bearer tokens' key ids) whose project one process keeps cached."""


class RateLimiter:
    """Requests per second per project, and failed credential checks per minute per client
    address; in memory, or in Redis when several APIs share one."""

    def __init__(self, storage_url: str) -> None:
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        storage = storage_from_string(url)
        assert isinstance(storage, Storage)
        self.storage = storage
        self.limiter = FixedWindowRateLimiter(self.storage)
        self._items: dict[int, RateLimitItemPerSecond] = {}

    async def check(self, project: Project, default: int) -> None:
        limit = project.rate_limit(default)
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerSecond(limit)
        if not await self.limiter.hit(item, project.id):
            raise RateLimited(
                f"rate limit of {limit} requests per second exceeded for this project",
                retry_after=await self._retry_after(item, project.id),
            )

    @asynccontextmanager
    async def guard_credentials(self, client: str, per_minute: int) -> AsyncIterator[None]:
        """Around one check of a caller's credentials (an API key, a dashboard sign-in):
        ``RateLimited`` at once when ``client`` (its address) failed ``per_minute`` checks in
        the current minute; an ``Unauthorized`` raised inside counts as one more failure.
        Successful checks cost one counter read and are never counted."""
        item = RateLimitItemPerMinute(per_minute)
        if not await self.limiter.test(item, FAILED_CREDENTIALS, client):
            raise RateLimited(
                f"too many failed credential checks from this address (at most {per_minute} "
                "a minute); try again later",
                retry_after=await self._retry_after(item, FAILED_CREDENTIALS, client),
            )
        try:
            yield
        except Unauthorized:
            await self.limiter.hit(item, FAILED_CREDENTIALS, client)
            raise

    async def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = await self.limiter.get_window_stats(item, *identifiers)
        return max(1, int(stats.reset_time - time.time() + 0.999))


@dataclass
class AppState:
    settings: Settings
    db: Database
    providers: ProviderRegistry
    limiter: RateLimiter
    outbox: Outbox
    """The one way this process accepts messages (its ``SendPolicy`` read at start-up)."""
    sends: SendIntake
    counts: ScrapedCounts
    key_cache: dict[str, tuple[Project, float]] = field(default_factory=dict)
    key_lookups: dict[str, asyncio.Future[Project | None]] = field(default_factory=dict)
    """The API keys (by digest) being looked up now: their project, or None if it failed."""

    def remember_key(self, key: str, project: Project, now: float) -> None:
        """Cache ``key``'s project for ``Settings.api_key_cache_seconds`` from ``now``
        (``time.monotonic()``); past ``KEY_CACHE_LIMIT`` entries the cache starts over, so
        a stream of distinct keys never grows it without bound."""
        if len(self.key_cache) >= KEY_CACHE_LIMIT:
            self.key_cache.clear()
        self.key_cache[key] = (project, now + self.settings.api_key_cache_seconds)
