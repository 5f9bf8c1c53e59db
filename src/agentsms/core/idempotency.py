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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.errors import AgentsmsError, Conflict, ValidationFailed
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
    (outcome,) = await check_many(conn, project_id, [(key, digest)])
    if isinstance(outcome, AgentsmsError):
        raise outcome
    return outcome


async def check_many(
    conn: AsyncConnection, project_id: str, requests: Sequence[tuple[str, str]]
) -> list[Replay | AgentsmsError | None]:
    """``check`` for many (key, digest) pairs of one project at once, in order: each one's
    replay, None to proceed, or the error ``check`` would raise for it."""
    given = [key for key, _ in requests]
    locked = await repo.lock_keys(conn, project_id, given)
    existing = await repo.get_many(
        conn, project_id, [key for key, held in zip(given, locked, strict=True) if held]
    )
    now = utcnow()
    outcomes: list[Replay | AgentsmsError | None] = []
    for (key, digest), held in zip(requests, locked, strict=True):
        found = existing.get(key)
        if not held:
            outcomes.append(_in_progress())
        elif found is None:
            outcomes.append(None)
        elif found["expires_at"] <= now:
            await repo.remove(conn, project_id, key)
            outcomes.append(None)
        elif found["request_hash"] != digest:
            outcomes.append(
                ValidationFailed(
                    "this Idempotency-Key was used with a different request body",
                    code="idempotency_key_reused",
                )
            )
        else:
            outcomes.append(
                Replay(status=int(found["response_status"]), body=found["response_body"])
            )
    return outcomes


async def record(
    conn: AsyncConnection, project_id: str, key: str, digest: str, *, status: int, body: str
) -> None:
    """Store the response in the transaction that commits the request's work."""
    await record_many(conn, project_id, [(key, digest, status, body)])


async def record_many(
    conn: AsyncConnection, project_id: str, responses: Sequence[tuple[str, str, int, str]]
) -> None:
    """``record`` for many (key, digest, status, body) responses of one project."""
    now = utcnow()
    await repo.insert_records(
        conn,
        [
            {
                "project_id": project_id,
                "key": key,
                "request_hash": digest,
                "response_status": status,
                "response_body": body,
                "created_at": now,
                "expires_at": now + KEEP_FOR,
            }
            for key, digest, status, body in responses
        ],
    )


async def purge_expired(conn: AsyncConnection, limit: int) -> int:
    """Delete at most ``limit`` expired keys; returns how many. The worker runs it a chunk
    per transaction (``store.purge.in_chunks``)."""
    return await repo.remove_expired(conn, utcnow(), limit)
