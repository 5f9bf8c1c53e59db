"""What every request handler can reach: settings, database, providers, limiter, caches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from agentsms.api.intake import SendIntake
from agentsms.config import Settings
from agentsms.core.errors import RateLimited
from agentsms.core.projects import Project
from agentsms.providers.registry import ProviderRegistry
from agentsms.store.db import Database


class RateLimiter:
    """Requests per second per project, in memory or in Redis when several APIs share one."""

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
            stats = await self.limiter.get_window_stats(item, project.id)
            retry_after = max(1, int(stats.reset_time - time.time() + 0.999))
            raise RateLimited(
                f"rate limit of {limit} requests per second exceeded for this project",
                retry_after=retry_after,
            )


@dataclass
class AppState:
    settings: Settings
    db: Database
    providers: ProviderRegistry
    limiter: RateLimiter
    sends: SendIntake
    key_cache: dict[str, tuple[Project, float]] = field(default_factory=dict)
