"""Reads that are fresh for every caller, shared by the callers that ask at the same time.

A webhook attempt that waited for its turn reads its endpoint again, so that deleting or
disabling the endpoint, or changing its URL or secret, applies to the attempts still
waiting. Hundreds of attempts of one claimed group wait for the same few endpoints; read
one at a time, those reads cost as much as the requests. ``FreshReads.get(key)`` answers
from a read that started after the call: the keys asked for while a read runs wait for
the next one, which reads them all in one query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FreshReads(Generic[K, V]):
    """``get(key)``: ``read([...])[key]`` (``None`` when absent) from a read begun after the
    call; ``read`` takes every key asked for meanwhile at once."""

    def __init__(self, read: Callable[[Sequence[K]], Awaitable[dict[K, V]]]) -> None:
        self._read = read
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.reads = 0
        """Reads made so far."""

    async def get(self, key: K) -> V | None:
        """The value of ``key`` as a read started after this call found it."""
        answer: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(answer)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_waiting())
        return await answer

    async def _read_waiting(self) -> None:
        try:
            await asyncio.sleep(0)  # the callers woken in this turn of the loop join in
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                self.reads += 1
                try:
                    found = await self._read(list(batch))
                except Exception as error:
                    for answers in batch.values():
                        for answer in answers:
                            if not answer.done():
                                answer.set_exception(error)
                    continue
                for key, answers in batch.items():
                    for answer in answers:
                        if not answer.done():
                            answer.set_result(found.get(key))
        finally:
            self._reader = None
