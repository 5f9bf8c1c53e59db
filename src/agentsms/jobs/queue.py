"""Jobs table access: enqueue, claim with a lease, heartbeat, finish, retry, recover.

Every piece of background work is a row here, written in the same transaction as the
state that needs it. A claimed job is leased to one worker; the worker heartbeats while
it works, and a job whose lease ran out goes back to the queue for another worker.

Every claim takes the job's next lease token (``lease_token``, its claim count). What a
claim does to its job later (finish, retry, release, fail, renew) is fenced by that token:
it changes the row only while the same claim still holds it, so a worker that stalled
past its lease (a stopped process, a long pause) and resumed changes nothing of a job that
was recovered and claimed again since.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Update, bindparam, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement, TextClause

from agentsms.config import DEFAULT_JOB_MAX_ATTEMPTS
from agentsms.store.bulk import id_list_params, id_list_sql, insert_columns, insert_rows
from agentsms.store.tables import jobs

QUEUED = "queued"
RUNNING = "running"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue."""

    kind: str
    ref: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    run_at: float | None = None
    max_attempts: int = DEFAULT_JOB_MAX_ATTEMPTS


@dataclass(slots=True)
class Lease:
    """Until when a claim surely holds its job, by its worker's knowledge: the expiry its
    claim wrote, moved on by ``renew``. (Heartbeats extend the lease in the table without
    telling the claim: this is a lower bound.)"""

    until: float

    def holds(self, margin: float) -> bool:
        """Whether the claim still holds its job ``margin`` seconds from now."""
        return time.time() + margin < self.until


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job. ``attempts`` counts this claim."""

    id: int
    kind: str
    ref: str | None
    payload: dict[str, Any]
    run_at: float
    attempts: int
    max_attempts: int
    owner: str
    """The worker holding its lease (heartbeats extend the leases of their owner's jobs)."""
    token: int
    """This claim's lease token: only while the job still has it may the claim change it."""
    lease: Lease


def _row(job: NewJob, now: float) -> dict[str, Any]:
    return {
        "kind": job.kind,
        "ref": job.ref,
        "payload": job.payload,
        "status": QUEUED,
        "run_at": now if job.run_at is None else job.run_at,
        "attempts": 0,
        "max_attempts": job.max_attempts,
        "created_at": now,
    }


async def enqueue(conn: AsyncConnection, job: NewJob) -> None:
    """Add one job in the caller's transaction."""
    await conn.execute(insert(jobs).values(**_row(job, time.time())))


async def enqueue_refs(
    conn: AsyncConnection,
    kind: str,
    refs: Sequence[tuple[str, float | None]],
    *,
    max_attempts: int,
) -> None:
    """Add one ``kind`` job without payload per ``(ref, run_at)`` (run_at None: now), in
    the caller's transaction: ``enqueue_many`` without a ``NewJob`` per row."""
    if refs:
        now = time.time()
        count = len(refs)
        # By column: the constant ones are one shared value, written (and encoded) once.
        await insert_columns(
            conn,
            jobs,
            {
                "kind": [kind] * count,
                "ref": [ref for ref, _ in refs],
                "payload": [{}] * count,
                "status": [QUEUED] * count,
                "run_at": [now if run_at is None else run_at for _, run_at in refs],
                "attempts": [0] * count,
                "max_attempts": [max_attempts] * count,
                "created_at": [now] * count,
            },
            set_based=True,
        )


async def enqueue_many(conn: AsyncConnection, new_jobs: Sequence[NewJob]) -> None:
    """Add many jobs in the caller's transaction."""
    if new_jobs:
        now = time.time()
        await insert_rows(conn, jobs, [_row(job, now) for job in new_jobs], set_based=True)


_CLAIM_SQL = {
    "postgresql": """
        UPDATE jobs SET status = 'running', lease_owner = :owner,
               lease_expires_at = :lease, attempts = attempts + 1,
               lease_token = lease_token + 1
        WHERE id IN (
            SELECT id FROM jobs WHERE status = 'queued' AND run_at <= :now {kinds}
            ORDER BY run_at LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING id, kind, ref, payload, run_at, attempts, max_attempts, lease_token
    """,
    "sqlite": """
        UPDATE jobs SET status = 'running', lease_owner = :owner,
               lease_expires_at = :lease, attempts = attempts + 1,
               lease_token = lease_token + 1
        WHERE id IN (
            SELECT id FROM jobs WHERE status = 'queued' AND run_at <= :now {kinds}
            ORDER BY run_at LIMIT :limit)
        RETURNING id, kind, ref, payload, run_at, attempts, max_attempts, lease_token
    """,
}


@lru_cache(maxsize=16)
def _claim_statement(sqlite: bool, kinds: int) -> TextClause:
    """The claim for ``kinds`` kinds (``:k0``...; none: any kind), built once: a statement
    built per call costs its cache key every time."""
    kinds_sql = ""
    if kinds:
        kinds_sql = f"AND kind IN ({', '.join(f':k{i}' for i in range(kinds))})"
    return text(_CLAIM_SQL["sqlite" if sqlite else "postgresql"].format(kinds=kinds_sql))


async def claim(
    conn: AsyncConnection,
    *,
    owner: str,
    limit: int,
    lease_seconds: float,
    kinds: Sequence[str] | None = None,
    now: float | None = None,
) -> list[Job]:
    """Lease up to ``limit`` due jobs to ``owner``, oldest due first."""
    now = time.time() if now is None else now
    params: dict[str, Any] = {
        "owner": owner,
        "lease": now + lease_seconds,
        "now": now,
        "limit": limit,
    }
    if kinds:
        params.update({f"k{i}": kind for i, kind in enumerate(kinds)})
    statement = _claim_statement(conn.dialect.name == "sqlite", len(kinds or ()))
    result = await conn.execute(statement, params)
    claimed = [
        Job(
            id=row.id,
            kind=row.kind,
            ref=row.ref,
            payload=_payload(row.payload),
            run_at=row.run_at,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            owner=owner,
            token=row.lease_token,
            lease=Lease(until=params["lease"]),
        )
        for row in result
    ]
    claimed.sort(key=lambda job: (job.run_at, job.id))
    return claimed


def _payload(value: Any) -> dict[str, Any]:
    if value == "{}":
        return {}  # most jobs (every message.send) carry no payload
    if isinstance(value, str):
        loaded = json.loads(value)
        assert isinstance(loaded, dict)
        return loaded
    assert isinstance(value, dict)
    return value


async def heartbeat(conn: AsyncConnection, *, owner: str, lease_seconds: float) -> int:
    """Extend the lease of every job ``owner`` is running.

    On PostgreSQL rows another transaction holds (the owner's own handlers finishing them)
    are skipped rather than waited for: waiting on rows locked in another order is how a
    heartbeat deadlocked with a handler. A job being finished needs no longer lease.
    """
    mine: ColumnElement[bool] = (jobs.c.lease_owner == owner) & (jobs.c.status == RUNNING)
    if conn.dialect.name != "sqlite":
        locked = select(jobs.c.id).where(mine).order_by(jobs.c.id).with_for_update(skip_locked=True)
        mine = jobs.c.id.in_(locked.scalar_subquery())
    result = await conn.execute(
        update(jobs).where(mine).values(lease_expires_at=time.time() + lease_seconds)
    )
    return int(result.rowcount or 0)


def _claimed(dialect: str, count: int, after: int) -> str:
    """``WHERE`` condition: ``count`` job ids still held by one lease token, the
    parameters after the statement's first ``after`` ones (ids, then the token)."""
    token = "?" if dialect == "sqlite" else f"${after + 2}"
    return (
        f"id {id_list_sql(dialect, count, after + 1, 'bigint')} "
        f"AND lease_token = {token} AND status = '{RUNNING}'"
    )


def _by_token(claims: Sequence[Job]) -> dict[int, list[int]]:
    """The claims' job ids by lease token (nearly always one: a batch's first claims)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for job in claims:
        groups[job.token].append(job.id)
    return groups


async def _each_held(
    conn: AsyncConnection,
    statement: str,
    claims: Sequence[Job],
    params: Sequence[Any] = (),
    *,
    tell: bool = False,
) -> set[int]:
    """Run ``statement`` over the jobs the claims still hold, in chunks: ``{where}`` in it
    is the fence, after the statement's own ``params`` (``{p1}``, ``{p2}``...). With
    ``tell``, returns the ids of those jobs, known by the row count (one more query only
    for a chunk it fell short in: a claim that lost its job)."""
    dialect = conn.dialect.name
    marks = {f"p{i + 1}": "?" if dialect == "sqlite" else f"${i + 1}" for i in range(len(params))}
    held: set[int] = set()
    for token, ids in _by_token(claims).items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            where = _claimed(dialect, len(chunk), len(params))
            result = await conn.exec_driver_sql(
                statement.format(where=where, **marks),
                (*params, *id_list_params(dialect, chunk), token),
            )
            if not tell:
                continue
            if result.rowcount == len(chunk):
                held.update(chunk)
            else:
                found = await conn.exec_driver_sql(
                    f"SELECT id FROM jobs WHERE {_claimed(dialect, len(chunk), 0)}",
                    (*id_list_params(dialect, chunk), token),
                )
                held.update(row[0] for row in found)
    return held


async def finish(conn: AsyncConnection, claims: Sequence[Job]) -> None:
    """Done: the row goes away (the state it served is recorded elsewhere). Only jobs the
    claims still hold: one recovered and claimed again since is the new claim's."""
    await _each_held(conn, "DELETE FROM jobs WHERE {where}", claims)


async def renew(conn: AsyncConnection, claims: Sequence[Job], *, lease_seconds: float) -> Renewal:
    """Extend the leases of the claims that still hold their jobs; the fence before work
    that must not be done twice (a send handed to a carrier). The claims' own ``lease``
    moves on only when ``Renewal.apply`` is called, once the transaction has committed."""
    until = time.time() + lease_seconds
    held = await _each_held(
        conn, "UPDATE jobs SET lease_expires_at = {p1} WHERE {where}", claims, (until,), tell=True
    )
    return Renewal(claims=tuple(claims), held=frozenset(held), until=until)


@dataclass(frozen=True, slots=True)
class Renewal:
    """What ``renew`` found: which claims still hold their jobs, leased until ``until``."""

    claims: Sequence[Job]
    held: frozenset[int]
    until: float

    def lost(self) -> list[Job]:
        """The claims whose jobs were taken from them (recovered, maybe claimed again)."""
        return [job for job in self.claims if job.id not in self.held]

    def apply(self) -> None:
        """Move the held claims' ``lease`` on (call once the renewal is committed)."""
        for job in self.claims:
            if job.id in self.held:
                job.lease.until = max(job.lease.until, self.until)


_HELD = (
    (jobs.c.id == bindparam("b_id"))
    & (jobs.c.lease_token == bindparam("b_token"))
    & (jobs.c.status == RUNNING)
)
"""One job, while the claim with lease token ``b_token`` still holds it."""
_UNLEASED: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}


@lru_cache(maxsize=8)
def _retry_statement(with_error: bool, uncount: bool) -> Update:
    values: dict[str, Any] = {"status": QUEUED, "run_at": bindparam("b_run_at"), **_UNLEASED}
    if with_error:
        values["last_error"] = bindparam("b_error")
    if uncount:
        values["attempts"] = jobs.c.attempts - 1
    return update(jobs).where(_HELD).values(**values)


_SETTLE = (
    update(jobs)
    .where(_HELD)
    .values(
        status=bindparam("b_status"),
        run_at=bindparam("b_run_at"),
        last_error=bindparam("b_error"),
        **_UNLEASED,
    )
)


async def retry(
    conn: AsyncConnection, job: Job, *, run_at: float, error: str | None, uncount: bool = False
) -> None:
    """Back to the queue at ``run_at``. ``uncount`` gives the attempt back (not a failure).

    Only while ``job``'s claim still holds it: a worker that stalled past its lease, and
    whose job was recovered (and maybe claimed again) since, changes nothing.
    """
    params: dict[str, Any] = {"b_id": job.id, "b_token": job.token, "b_run_at": run_at}
    if error is not None:
        params["b_error"] = error
    await conn.execute(_retry_statement(error is not None, uncount), params)


async def retry_or_fail(
    conn: AsyncConnection, settled: Sequence[tuple[Job, float | None]], error: str
) -> None:
    """Each job back to the queue at its ``run_at``, or failed where that is None, with
    ``error`` as its last error: one statement for all of them,
    changing only the jobs the claims still hold."""
    if settled:
        await conn.execute(
            _SETTLE,
            [
                {
                    "b_id": job.id,
                    "b_token": job.token,
                    "b_status": FAILED if run_at is None else QUEUED,
                    # A failed job keeps its run_at (a claim leaves it as it was).
                    "b_run_at": job.run_at if run_at is None else run_at,
                    "b_error": error,
                }
                for job, run_at in settled
            ],
        )


async def release_many(
    conn: AsyncConnection, claims: Sequence[Job], *, run_at: float, spacing: float = 0.0
) -> None:
    """Give claimed jobs back untouched (their attempt is not counted), those the claims
    still hold.

    The first is due at ``run_at`` and each next one ``spacing`` seconds later, so that a
    paced backlog comes back a few at a time instead of all at once.
    """
    if not claims:
        return
    await conn.execute(
        _retry_statement(with_error=False, uncount=True),
        [
            {"b_id": job.id, "b_token": job.token, "b_run_at": run_at + i * spacing}
            for i, job in enumerate(claims)
        ],
    )


async def release_owned(conn: AsyncConnection, owner: str, now: float | None = None) -> int:
    """Give back every job ``owner`` still holds, due ``now`` (a worker shutting down):
    lease cleared, attempt not counted. A job another worker took since has their owner."""
    now = time.time() if now is None else now
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
        .values(
            status=QUEUED,
            run_at=now,
            lease_owner=None,
            lease_expires_at=None,
            attempts=jobs.c.attempts - 1,
        )
    )
    return int(result.rowcount or 0)


async def recover_stalled(conn: AsyncConnection, now: float | None = None) -> int:
    """Return jobs whose lease ran out (their worker died or hung) to the queue, due now."""
    now = time.time() if now is None else now
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.status == RUNNING, jobs.c.lease_expires_at < now)
        .values(status=QUEUED, run_at=now, lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount or 0)


async def cancel_by_ref(conn: AsyncConnection, kind: str, ref: str) -> int:
    """Delete queued jobs of ``kind`` for ``ref``; running ones are left to finish."""
    result = await conn.execute(
        delete(jobs).where(jobs.c.kind == kind, jobs.c.ref == ref, jobs.c.status == QUEUED)
    )
    return int(result.rowcount or 0)


async def cancel_by_payload(conn: AsyncConnection, kind: str, key: str, value: str) -> int:
    """Delete queued jobs of ``kind`` whose payload has ``key`` = ``value``; running ones
    are left to finish. It reads every queued job's kind: for rare operations only."""
    result = await conn.execute(
        delete(jobs).where(
            jobs.c.kind == kind,
            jobs.c.status == QUEUED,
            jobs.c.payload[key].as_string() == value,
        )
    )
    return int(result.rowcount or 0)


async def vacuum(conn: AsyncConnection) -> None:
    """PostgreSQL: reclaim the dead row versions of the jobs table now, and refresh its
    statistics (on an autocommit connection: ``Database.write_statement``).

    Every job is inserted, updated by its claim and deleted within seconds, so the table
    holds a few hundred live rows among tens of thousands of dead ones a minute later, and
    each claim's scan of the due-jobs index reads their entries too (a claim took 20 ms
    where it takes 0.2 ms after a vacuum). Autovacuum visits a database once a minute at
    best. A vacuum running already (another worker's, autovacuum's) is not waited for.
    """
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("VACUUM (SKIP_LOCKED, ANALYZE) jobs")


async def depth(conn: AsyncConnection) -> dict[str, int]:
    """Queued and running jobs per kind, for metrics."""
    query = (
        select(jobs.c.kind, jobs.c.status, func.count())
        .where(jobs.c.status.in_([QUEUED, RUNNING]))
        .group_by(jobs.c.kind, jobs.c.status)
    )
    return {f"{kind}:{status}": int(n) for kind, status, n in (await conn.execute(query)).all()}
