"""Counting the statements SQLAlchemy compiles (a statement shape not yet in an engine's
compiled cache): each compilation is CPU on the event loop, ~0.1-0.5 s for a large one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.interfaces import CacheStats

from agentsms.store.db import Database


@contextmanager
def counting_compilations(db: Database) -> Iterator[list[str]]:
    """The SQL of every statement compiled on ``db``'s engines while inside, in order."""
    compiled: list[str] = []

    def seen(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if context is not None and context.cache_hit is CacheStats.CACHE_MISS:
            compiled.append(statement)

    engines = [engine.sync_engine for engine in db.engines]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        yield compiled
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
