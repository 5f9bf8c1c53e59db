"""Idempotency keys: the same key and request replays the first response and sends nothing.

The key's record (request digest, status and exact body) is written in the same
transaction as the messages it answers for, so a replayed response always names committed
work, and a request that fails stores nothing. A duplicate that arrives while the first
is still running gets ``409``: within a process a set of keys in flight says so; across
PostgreSQL processes a transaction-scoped advisory lock on the key does. (Across SQLite
processes write transactions are serialized, so the duplicate waits and then replays.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.errors import Conflict, ValidationFailed
from agentsms.store.repositories import idempotency as repo
from agentsms.store.types import utcnow

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255
_in_flight: set[tuple[str, str]] = set()


@dataclass(frozen=True, slots=True)
class Replay:
    """The stored first response for a key."""

    status: int
    body: str


def request_hash(method: str, path: str, body: Any) -> str:
    """A digest of the request as parsed, independent of key order and whitespace."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _in_progress() -> Conflict:
    return Conflict(
        "a request with this Idempotency-Key is still in progress; retry shortly",
        code="idempotency_key_in_flight",
    )


@asynccontextmanager
async def claim(project_id: str, key: str) -> AsyncIterator[None]:
    """Hold ``key`` for this process while its request runs; ``Conflict`` if already held."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
            code="invalid_idempotency_key",
        )
    token = (project_id, key)
    if token in _in_flight:
        raise _in_progress()
    _in_flight.add(token)
    try:
        yield
    finally:
        _in_flight.discard(token)


async def check(conn: AsyncConnection, project_id: str, key: str, digest: str) -> Replay | None:
    """Inside the request's write transaction: the response to replay, or None to proceed.

    Raises ``Conflict`` while another process runs a request with this key and
    ``ValidationFailed`` when the key was used for a different request.
    """
    if not await repo.lock_key(conn, project_id, key):
        raise _in_progress()
    existing = await repo.get(conn, project_id, key)
    if existing is None:
        return None
    if existing["expires_at"] <= utcnow():
        await repo.remove(conn, project_id, key)
        return None
    if existing["request_hash"] != digest:
        raise ValidationFailed(
            "this Idempotency-Key was used with a different request body",
            code="idempotency_key_reused",
        )
    return Replay(status=int(existing["response_status"]), body=existing["response_body"])


async def record(
    conn: AsyncConnection, project_id: str, key: str, digest: str, *, status: int, body: str
) -> None:
    """Store the response in the transaction that commits the request's work."""
    now = utcnow()
    await repo.insert_record(
        conn,
        project_id=project_id,
        key=key,
        request_hash=digest,
        status=status,
        body=body,
        now=now,
        expires_at=now + KEEP_FOR,
    )


async def purge_expired(conn: AsyncConnection) -> int:
    return await repo.remove_expired(conn, utcnow())
