"""Dispatch throughput: queued messages through the simulator carrier to ``delivered``.

Pacing is effectively off (the sender number allows 1,000,000 messages/s) and the
simulator reports delivery at once (``AGENTSMS_SIMULATOR_DELIVERY_DELAY_SECONDS=0``).
For each configuration (backend and number of ``agentsms worker`` processes):

1. a database is filled with ``--messages`` queued messages (in-process, through
   ``Outbox.send_batch``), once per backend, then copied for every run;
2. ceiling: the same writes the dispatcher makes for each claimed batch, in the same
   statement shapes and transactions (claim; read the messages + pacing row; renew the
   claims' leases by their lease token + mark ``sending`` + events; simulator log check +
   insert + report job; mark ``sent`` from a list of values + events + delete jobs (by
   token); claim the report, match its receipts to the messages, mark ``delivered``
   returning the rows + events + delete job;
   on PostgreSQL id lists as one array and many-row
   inserts from arrays, as agentsms sends them), issued by raw drivers (stdlib
   ``sqlite3`` / ``asyncpg``) from as many processes and connections as the agentsms run
   uses, with the same claim batch size: no ORM, no framework (and none of agentsms's
   small reads: opt-outs, quiet hours, webhook endpoints);
3. agentsms: ``K`` worker processes are started on held jobs; once every one of them is
   running, the jobs are made due and the clock starts. The script polls message counts
   until none is queued or sending (sent/s) and until all are ``delivered`` (delivered/s).
   (The rows' own ``sent_at``/``delivered_at`` are stamped when a transaction *starts*,
   so they flatter a slow transaction; polling does not.)

PostgreSQL: ``AGENTSMS_BENCH_POSTGRES_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/bench``). That database, and a ``<name>_seed``
copy, are DROPPED and recreated by this script; use a scratch name. Skipped with a note if
the server is not reachable.

    .venv/bin/python benchmarks/bench_dispatch.py [--messages 20000] \\
        [--runs sqlite:1,postgres:1,postgres:2,postgres:4] [--py-spy DIR]

Targets (issue 2): >= 10,000 messages/s on SQLite, >= 10,000 on PostgreSQL with 4 workers,
rising with workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from _common import (
    AGENTSMS,
    DEFAULT_PG_URL,
    PYTHON,
    BenchProject,
    Process,
    Table,
    bench_env,
    drop_postgres_database,
    log,
    machine_note,
    make_project,
    postgres_admin_dsn,
    recipient,
    recreate_postgres_database,
    sqlite_url,
    temp_dir,
)
from sqlalchemy import update

SELF = str(Path(__file__).resolve())
SENDER = "+14155550100"
BODY = "Your package is out for delivery today between 2 and 4 pm."
HELD = 1e12  # a run_at far in the future: jobs wait until release_jobs()
CLAIM_BATCH = 500  # agentsms Settings.worker_claim_batch default
POLL = 0.2
FINAL = ("delivered", "undelivered", "failed", "canceled", "expired")


# --------------------------------------------------------------------------- preload


async def preload(url: str, count: int) -> BenchProject:
    """A migrated database with one project and ``count`` queued messages."""
    from agentsms.config import Settings
    from agentsms.core.sending import BatchSpec, OutboundSpec, Outbox, SendPolicy
    from agentsms.store.db import Database
    from agentsms.store.tables import jobs

    project = await make_project(url, {SENDER: 1_000_000.0})
    db = Database(url)
    outbox = Outbox(SendPolicy.from_settings(Settings(database_url=url)))
    try:
        for start in range(0, count, 5000):
            items = [
                OutboundSpec(to=recipient(i), body=BODY)
                for i in range(start, min(count, start + 5000))
            ]
            async with db.write() as conn:
                await outbox.send_batch(conn, project.project_id, BatchSpec(items=items))
        # Hold every job until the workers are up, so they all start at the same moment.
        async with db.write() as conn:
            await conn.execute(update(jobs).values(run_at=HELD))
    finally:
        await db.dispose()
    return project


async def release_jobs(url: str) -> None:
    """Make every held job due now."""
    from agentsms.store.db import Database
    from agentsms.store.tables import jobs

    db = Database(url, pool_size=1)
    try:
        async with db.write() as conn:
            await conn.execute(update(jobs).values(run_at=time.time()))
    finally:
        await db.dispose()


class Backend:
    """Where runs happen: a seed database filled once, and a fresh copy per run."""

    name: str

    async def seed(self, count: int) -> None:
        raise NotImplementedError

    async def fresh_copy(self) -> str:
        """A URL of a new copy of the seed database."""
        raise NotImplementedError

    async def cleanup(self) -> None:
        raise NotImplementedError


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.seed_path = workdir / "seed.db"
        self.copies = 0

    async def seed(self, count: int) -> None:
        await preload(sqlite_url(self.seed_path), count)
        conn = sqlite3.connect(self.seed_path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    async def fresh_copy(self) -> str:
        self.copies += 1
        target = self.workdir / f"run{self.copies}.db"
        shutil.copyfile(self.seed_path, target)
        return sqlite_url(target)

    async def cleanup(self) -> None:
        """The temporary directory goes away with everything in it."""


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, url: str, *, analyze: bool = True) -> None:
        self.url = url
        base, _, name = url.rpartition("/")
        self.seed_url = f"{base}/{name}_seed"
        self.analyze = analyze

    async def seed(self, count: int) -> None:
        import asyncpg

        await recreate_postgres_database(self.seed_url)
        await preload(self.seed_url, count)
        if self.analyze:
            # Planner statistics as autovacuum would leave them a minute later; without
            # them the first plans depend on when autovacuum happens to run mid-benchmark.
            conn = await asyncpg.connect(self.seed_url.replace("postgresql+asyncpg", "postgresql"))
            try:
                await conn.execute("ANALYZE")
            finally:
                await conn.close()

    async def fresh_copy(self) -> str:
        import asyncpg

        admin, name = postgres_admin_dsn(self.url)
        _, seed = postgres_admin_dsn(self.seed_url)
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{seed}"')
        finally:
            await conn.close()
        return self.url

    async def cleanup(self) -> None:
        await drop_postgres_database(self.url)
        await drop_postgres_database(self.seed_url)


async def postgres_reachable(url: str) -> str | None:
    """``None`` when we can connect to the server, else the reason."""
    import asyncpg

    admin, _ = postgres_admin_dsn(url)
    try:
        conn = await asyncio.wait_for(asyncpg.connect(admin), 5)
    except Exception as error:  # any failure means "skip"
        return f"{type(error).__name__}: {error}"
    await conn.close()
    return None


# --------------------------------------------------------------------------- measuring


@dataclass
class Outcome:
    """One run, timed by polling from the moment the jobs were made due."""

    label: str
    messages: int
    done: int
    all_sent_seconds: float  # until no message was queued or sending
    all_final_seconds: float  # until every message was delivered (or otherwise final)
    note: str = ""

    @property
    def sent_per_s(self) -> float:
        return self.messages / self.all_sent_seconds if self.done >= self.messages else nan

    @property
    def delivered_per_s(self) -> float:
        return self.messages / self.all_final_seconds if self.done >= self.messages else nan


nan = float("nan")


class Monitor:
    """Polls a run's database every ``POLL`` seconds through one small connection pool."""

    def __init__(self, url: str) -> None:
        from agentsms.store.db import Database

        self.db = Database(url, pool_size=1)

    async def close(self) -> None:
        await self.db.dispose()

    async def status_counts(self) -> dict[str, int]:
        from sqlalchemy import func, select

        from agentsms.store.tables import messages

        async with self.db.read() as conn:
            query = select(messages.c.status, func.count()).group_by(messages.c.status)
            rows = (await conn.execute(query)).all()
        return {str(status): int(n) for status, n in rows}

    async def watch(
        self,
        label: str,
        count: int,
        *,
        started: float,
        limit_seconds: float,
        alive: Callable[[], None],
    ) -> Outcome:
        """Poll until every message is final (or time is up)."""
        all_sent = nan
        note = ""
        while True:
            await asyncio.sleep(POLL)
            counts = await self.status_counts()
            elapsed = time.time() - started
            done = sum(counts.get(s, 0) for s in FINAL)
            if all_sent != all_sent and done + counts.get("sent", 0) >= count:
                all_sent = elapsed
            if done >= count:
                break
            alive()
            if elapsed > limit_seconds:
                note = f"stopped after {limit_seconds:g} s: {counts}"
                break
        return Outcome(label, count, done, all_sent, elapsed, note)


def py_spy_command() -> str | None:
    """py-spy on PATH or next to this Python (the venv's bin/)."""
    beside = Path(PYTHON).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def start_py_spy(
    procs: Sequence[Process], out_dir: Path, label: str
) -> list[subprocess.Popen[bytes]]:
    """Sample each worker with py-spy (raw collapsed stacks, one file per process)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spies = []
    for proc in procs:
        out = out_dir / f"{label.replace(' ', '_')}-pid{proc.pid}.txt"
        args = [str(py_spy_command()), "record", "--pid", str(proc.pid), "--format", "raw"]
        args += ["--rate", "250", "--nonblocking", "-o", str(out)]
        spies.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


def stop_py_spy(spies: Sequence[subprocess.Popen[bytes]]) -> None:
    """py-spy writes its file when the process it samples exits."""
    for spy in spies:
        try:
            spy.wait(15)
        except subprocess.TimeoutExpired:
            spy.terminate()
            spy.wait(5)


def check_alive(procs: Sequence[Process]) -> None:
    dead = [p for p in procs if not p.running()]
    if dead:
        raise RuntimeError(f"a worker exited:\n{dead[0].log_tail()}")


async def wait_started(procs: Sequence[Process], limit_seconds: float = 60.0) -> None:
    """Until every worker has logged ``worker.started`` (its claim loops are running)."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        check_alive(procs)
        if all("worker.started" in p.log_tail(200) for p in procs):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"workers not started after {limit_seconds} s:\n{procs[0].log_tail()}")


async def run_agentsms(
    url: str,
    label: str,
    workers: int,
    count: int,
    *,
    loops: int,
    limit_seconds: float,
    workdir: Path,
    py_spy: Path | None,
) -> Outcome:
    """``workers`` x ``agentsms worker`` on the database at ``url``, timed by polling."""
    env = bench_env(
        AGENTSMS_DATABASE_URL=url,
        AGENTSMS_SIMULATOR_DELIVERY_DELAY_SECONDS="0",
        AGENTSMS_LOG_LEVEL="INFO",  # only start/stop lines; we wait for "worker.started"
    )
    slug = label.replace(" ", "_")
    procs = [
        Process(
            [*AGENTSMS, "worker", "--concurrency", str(loops)],
            env=env,
            log_path=workdir / f"{slug}-{workers}w-{i}.log",
            cwd=workdir,
        )
        for i in range(workers)
    ]
    spies: list[subprocess.Popen[bytes]] = []
    monitor = Monitor(url)
    try:
        await wait_started(procs)
        if py_spy is not None:  # attached now, so start-up (imports) stays out of the profile
            spies = start_py_spy(procs, py_spy, label)
            await asyncio.sleep(0.5)
        started = time.time()
        await release_jobs(url)
        return await monitor.watch(
            label,
            count,
            started=started,
            limit_seconds=limit_seconds,
            alive=lambda: check_alive(procs),
        )
    finally:
        for proc in procs:
            proc.stop()
        stop_py_spy(spies)
        await monitor.close()


# --------------------------------------------------------------------------- raw ceiling


class RawConn(Protocol):
    dialect: str

    async def begin(self) -> None: ...
    async def commit(self) -> None: ...
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def ts(self, epoch: float) -> Any: ...
    def flag(self, value: bool) -> Any: ...
    def json(self, value: Any) -> Any: ...
    async def close(self) -> None: ...


class SQLiteRaw:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
        ):
            self.conn.execute(f"PRAGMA {pragma}")

    async def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    async def commit(self) -> None:
        self.conn.execute("COMMIT")

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, tuple(params))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def ts(self, epoch: float) -> Any:
        return (
            datetime.fromtimestamp(epoch, UTC)
            .replace(tzinfo=None)
            .isoformat(sep=" ", timespec="microseconds")
        )

    def flag(self, value: bool) -> Any:
        return int(value)

    def json(self, value: Any) -> Any:
        return json.dumps(value)

    async def close(self) -> None:
        self.conn.close()


class PostgresRaw:
    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> PostgresRaw:
        import asyncpg

        return cls(await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://")))

    @staticmethod
    def _sql(sql: str) -> str:
        parts = sql.split("?")
        out = [parts[0]]
        for i, part in enumerate(parts[1:], start=1):
            out.append(f"${i}{part}")
        return "".join(out)

    async def begin(self) -> None:
        await self.conn.execute("BEGIN")

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self.conn.fetch(self._sql(sql), *params)]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.conn.execute(self._sql(sql), *params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(self._sql(sql), rows)

    def ts(self, epoch: float) -> Any:
        return datetime.fromtimestamp(epoch, UTC)

    def flag(self, value: bool) -> Any:
        return value

    def json(self, value: Any) -> Any:
        return json.dumps(value)

    async def close(self) -> None:
        await self.conn.close()


def _marks(n: int) -> str:
    return ", ".join(["?"] * n)


CLAIM = """
    UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires_at = ?,
           attempts = attempts + 1, lease_token = lease_token + 1
    WHERE id IN (
        SELECT id FROM jobs WHERE status = 'queued' AND run_at <= ?
          AND kind IN ('message.send', 'simulator.report')
        ORDER BY run_at LIMIT ? {lock})
    RETURNING id, kind, ref, payload, run_at, attempts, max_attempts, lease_token
"""
# Every later statement about the claimed jobs holds only while their claim does (a batch's
# first claims share lease token 1).
FENCE = "AND lease_token = ? AND status = 'running'"
DISPATCH_COLUMNS = (
    "id, project_id, conversation_id, status, expires_at, in_flight, purpose, to_number, "
    "from_number, number_id, body, channel, media_urls, provider"
)
EVENT_COLUMNS = "id, project_id, message_id, type, status, data, created_at"
INSERT_EVENT = f"INSERT INTO message_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_EVENT_PG = (
    f"INSERT INTO message_events ({EVENT_COLUMNS}) SELECT c0, c1, c2, c3, c4, c5::jsonb, c6 "
    "FROM unnest($1::VARCHAR(40)[], $2::VARCHAR(40)[], $3::VARCHAR(40)[], $4::VARCHAR(40)[], "
    "$5::VARCHAR(12)[], $6::text[], $7::TIMESTAMP WITH TIME ZONE[]) "
    "AS u(c0, c1, c2, c3, c4, c5, c6)"
)
SEND_COLUMNS = (
    "reference, provider_message_id, from_number, to_number, channel, body, media_urls, "
    "outcome, error_code, repeat_count, created_at"
)
INSERT_SEND = (
    f"INSERT INTO simulator_sends ({SEND_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_SEND_PG = (
    f"INSERT INTO simulator_sends ({SEND_COLUMNS}) "
    "SELECT c0, c1, c2, c3, c4, c5, c6::jsonb, c7, c8, c9, c10 "
    "FROM unnest($1::VARCHAR(60)[], $2::VARCHAR(60)[], $3::VARCHAR(20)[], $4::VARCHAR(20)[], "
    "$5::VARCHAR(10)[], $6::TEXT[], $7::text[], $8::VARCHAR(12)[], $9::VARCHAR(40)[], "
    "$10::INTEGER[], $11::FLOAT[]) AS u(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10)"
)
INSERT_JOB = (
    "INSERT INTO jobs (kind, ref, payload, status, run_at, attempts, max_attempts, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
MARK_SENT_SET = (
    "provider_message_id = u.pmid, price = u.price, attempts = u.attempts, sent_at = {now}, "
    "updated_at = {now}, in_flight = {false}, status = CASE WHEN messages.status IN "
    "('scheduled', 'queued', 'sending') THEN 'sent' ELSE messages.status END"
)


def _ids(conn: RawConn, ids: Sequence[Any], array: str = "varchar") -> tuple[str, list[Any]]:
    """``IN (?, ...)`` on SQLite, ``= ANY(?::varchar[])`` on PostgreSQL, as agentsms does."""
    if conn.dialect == "sqlite":
        return f"IN ({_marks(len(ids))})", list(ids)
    return f"= ANY(?::{array}[])", [list(ids)]


async def insert_events(conn: RawConn, rows: list[tuple[Any, ...]]) -> None:
    """One executemany on SQLite; one INSERT ... SELECT FROM unnest on PostgreSQL."""
    if conn.dialect == "sqlite":
        await conn.executemany(INSERT_EVENT, rows)
    else:
        await conn.execute(INSERT_EVENT_PG, [list(column) for column in zip(*rows, strict=True)])


async def raw_send(conn: RawConn, jobs: list[tuple[Any, ...]], new_ids: Any) -> None:
    """The dispatcher's transactions for a batch of ``message.send`` jobs."""
    now = time.time()
    stamp = conn.ts(now)
    ids = [j[2] for j in jobs]
    # Read the messages and take pacing slots.
    await conn.begin()
    where, params = _ids(conn, ids)
    rows = await conn.fetch(f"SELECT {DISPATCH_COLUMNS} FROM messages WHERE id {where}", params)
    number_ids = sorted({r[9] for r in rows})
    where, params = _ids(conn, number_ids)
    await conn.fetch(f"SELECT * FROM numbers WHERE id {where}", params)
    for number_id in number_ids:
        await conn.execute(
            "INSERT INTO sender_pacing (number_id, next_slot_at) VALUES (?, ?) "
            "ON CONFLICT (number_id) DO NOTHING",
            (number_id, now),
        )
        lock = "" if conn.dialect == "sqlite" else " FOR UPDATE"
        slot = await conn.fetch(
            f"SELECT next_slot_at FROM sender_pacing WHERE number_id = ?{lock}", (number_id,)
        )
        await conn.execute(
            "UPDATE sender_pacing SET next_slot_at = ? WHERE number_id = ?",
            (max(slot[0][0], now) + len(ids) / 1e6, number_id),
        )
    await conn.commit()
    # Renew the claims' leases (the fence), then mark them sending.
    await conn.begin()
    where, params = _ids(conn, [j[0] for j in jobs], "bigint")
    await conn.execute(
        f"UPDATE jobs SET lease_expires_at = ? WHERE id {where} {FENCE}", (now + 30, *params, 1)
    )
    where, params = _ids(conn, ids)
    await conn.fetch(
        "UPDATE messages SET status = ?, in_flight = ?, updated_at = ? "
        f"WHERE id {where} AND status IN ('scheduled', 'queued', 'sending') RETURNING id",
        ("sending", conn.flag(True), stamp, *params),
    )
    event_ids = new_ids("evt", len(rows))
    await insert_events(
        conn,
        [
            (e, r[1], r[0], "message.sending", "sending", conn.json({}), stamp)
            for e, r in zip(event_ids, rows, strict=True)
        ],
    )
    await conn.commit()
    # The simulator's send_many.
    await conn.begin()
    where, params = _ids(conn, ids)
    await conn.fetch(
        f"SELECT reference, provider_message_id FROM simulator_sends WHERE reference {where}",
        params,
    )
    sends = []
    receipts = []
    for r in rows:
        provider_id = "SIM" + r[0].removeprefix("msg_")
        sends.append(
            (r[0], provider_id, r[8], r[7], r[11], r[10], conn.json([]), "delivered", None, 0, now)
        )
        receipts.append(
            {
                "reference": r[0],
                "provider_message_id": provider_id,
                "status": "delivered",
                "error_code": None,
            }
        )
    if conn.dialect == "sqlite":
        await conn.executemany(INSERT_SEND, sends)
    else:
        await conn.execute(INSERT_SEND_PG, [list(column) for column in zip(*sends, strict=True)])
    await conn.execute(
        INSERT_JOB,
        ("simulator.report", None, conn.json({"receipts": receipts}), "queued", now, 0, 8, now),
    )
    await conn.commit()
    # Recording the answers.
    now = time.time()
    stamp = conn.ts(now)
    await conn.begin()
    sent = [(r[0], "SIM" + r[0].removeprefix("msg_"), None, 1) for r in rows]
    if conn.dialect == "sqlite":
        values = ", ".join(["(?, ?, ?, ?)"] * len(sent))
        await conn.fetch(
            f"WITH u(id, pmid, price, attempts) AS (VALUES {values}) "
            f"UPDATE messages SET {MARK_SENT_SET.format(now='?', false='0')} "
            "FROM u WHERE messages.id = u.id RETURNING messages.id, messages.status",
            [*(value for row in sent for value in row), stamp, stamp],
        )
    else:
        await conn.fetch(
            f"UPDATE messages SET {MARK_SENT_SET.format(now='$5', false='false')} "
            "FROM unnest($1::varchar[], $2::varchar[], $3::numeric[], $4::int[]) "
            "AS u(id, pmid, price, attempts) WHERE messages.id = u.id AND messages.id = ANY($1) "
            "RETURNING messages.id, messages.status",
            [*(list(column) for column in zip(*sent, strict=True)), stamp],
        )
    event_ids = new_ids("evt", len(rows))
    await insert_events(
        conn,
        [
            (e, r[1], r[0], "message.sent", "sent", conn.json({}), stamp)
            for e, r in zip(event_ids, rows, strict=True)
        ],
    )
    where, params = _ids(conn, [j[0] for j in jobs], "bigint")
    await conn.execute(f"DELETE FROM jobs WHERE id {where} {FENCE}", (*params, 1))
    await conn.commit()


async def raw_report(conn: RawConn, jobs: list[tuple[Any, ...]], new_ids: Any) -> None:
    """The receipt handler's transaction for a batch of ``simulator.report`` jobs."""
    now = time.time()
    stamp = conn.ts(now)
    receipts = [
        item
        for job in jobs
        for item in (json.loads(job[3]) if isinstance(job[3], str) else job[3])["receipts"]
    ]
    await conn.begin()
    for start in range(0, len(receipts), 500):
        where, params = _ids(conn, [item["reference"] for item in receipts[start : start + 500]])
        # The receipts matched to our messages, as every carrier's are.
        await conn.fetch(
            "SELECT id, provider_message_id, project_id, provider FROM messages "
            f"WHERE id {where} AND direction = 'outbound'",
            params,
        )
        moved = await conn.fetch(
            "UPDATE messages SET status = ?, updated_at = ?, in_flight = ?, delivered_at = ? "
            f"WHERE id {where} AND status IN ('scheduled', 'queued', 'sending', 'sent') "
            "RETURNING id, project_id, conversation_id, provider_message_id, sent_at",
            ("delivered", stamp, conn.flag(False), stamp, *params),
        )
        event_ids = new_ids("evt", len(moved))
        await insert_events(
            conn,
            [
                (e, m[1], m[0], "message.delivered", "delivered", conn.json({}), stamp)
                for e, m in zip(event_ids, moved, strict=True)
            ],
        )
    where, params = _ids(conn, [j[0] for j in jobs], "bigint")
    await conn.execute(f"DELETE FROM jobs WHERE id {where} {FENCE}", (*params, 1))
    await conn.commit()


async def raw_loop(conn: RawConn, owner: str) -> None:
    """Claim and process batches until the jobs table is empty."""
    from agentsms.ids import new_ids

    lock = "FOR UPDATE SKIP LOCKED" if conn.dialect == "postgresql" else ""
    claim = CLAIM.format(lock=lock)
    while True:
        now = time.time()
        await conn.begin()
        jobs = await conn.fetch(claim, (owner, now + 30, now, CLAIM_BATCH))
        await conn.commit()
        if not jobs:
            left = await conn.fetch("SELECT count(*) FROM jobs")
            if left[0][0] == 0:
                return
            await asyncio.sleep(0.005)
            continue
        sends = [j for j in jobs if j[1] == "message.send"]
        reports = [j for j in jobs if j[1] == "simulator.report"]
        if sends:
            await raw_send(conn, sends, new_ids)
        if reports:
            await raw_report(conn, reports, new_ids)


async def raw_child(url: str, connections: int, tag: str) -> None:
    """One raw "worker process": ``connections`` loops; says ``ready`` once connected."""
    conns: list[RawConn] = []
    for _ in range(connections):
        if url.startswith("sqlite"):
            conns.append(SQLiteRaw(url.removeprefix("sqlite+aiosqlite:///")))
        else:
            conns.append(await PostgresRaw.connect(url))
    print("ready", flush=True)
    try:
        await asyncio.gather(*(raw_loop(c, f"raw:{tag}:{i}") for i, c in enumerate(conns)))
    finally:
        for c in conns:
            await c.close()


async def run_raw(url: str, label: str, processes: int, loops: int, count: int) -> Outcome:
    """The raw SQL pipeline in ``processes`` processes with ``loops`` connections each."""
    children = [
        await asyncio.create_subprocess_exec(
            *[PYTHON, SELF, "--raw-child", url, "--loops", str(loops), "--raw-tag", str(i)],
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(processes)
    ]
    monitor = Monitor(url)

    def alive() -> None:
        codes = [c.returncode for c in children if c.returncode]
        if codes:
            raise RuntimeError(f"raw child exited with {codes}")

    try:
        for child in children:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"raw child failed to start: {line!r}")
        started = time.time()
        await release_jobs(url)
        outcome = await monitor.watch(label, count, started=started, limit_seconds=300, alive=alive)
        await asyncio.gather(*(child.wait() for child in children))
        return outcome
    finally:
        for child in children:
            if child.returncode is None:
                child.terminate()
                await child.wait()
        await monitor.close()


# --------------------------------------------------------------------------- main


def parse_runs(text: str) -> list[tuple[str, int]]:
    runs = []
    for part in text.split(","):
        backend, _, workers = part.strip().partition(":")
        if backend not in ("sqlite", "postgres") or not workers.isdigit():
            raise SystemExit(f"bad --runs item {part!r}; use e.g. sqlite:1,postgres:4")
        runs.append((backend, int(workers)))
    return runs


async def amain(args: argparse.Namespace) -> None:
    runs = parse_runs(args.runs)
    table = Table(
        f"dispatch, {args.messages:,} queued messages, simulator with zero delay, pacing off",
        [
            "run",
            "processes",
            "done",
            "sent/s",
            "delivered/s",
            "all sent s",
            "all final s",
            "agentsms % of raw",
        ],
    )
    notes: list[str] = []
    pg_url = os.environ.get("AGENTSMS_BENCH_POSTGRES_URL", DEFAULT_PG_URL)
    with temp_dir() as workdir:
        backends: dict[str, Backend] = {}
        if any(b == "sqlite" for b, _ in runs):
            backends["sqlite"] = SQLiteBackend(workdir)
        if any(b == "postgres" for b, _ in runs):
            reason = await postgres_reachable(pg_url)
            if reason is None:
                backends["postgres"] = PostgresBackend(pg_url, analyze=not args.no_analyze)
            else:
                notes.append(f"PostgreSQL runs skipped ({pg_url} not reachable: {reason})")
        try:
            for name, backend in backends.items():
                log(f"{name}: preloading {args.messages:,} queued messages")
                await backend.seed(args.messages)
                raw_done: dict[int, Outcome] = {}
                for run_backend, workers in runs:
                    if run_backend != name:
                        continue
                    if not args.no_raw and workers not in raw_done:
                        log(f"{name}: raw SQL ceiling, {workers} process(es)")
                        url = await backend.fresh_copy()
                        raw = await run_raw(
                            url, f"{name} raw SQL", workers, args.loops, args.messages
                        )
                        raw_done[workers] = raw
                        table.add(
                            raw.label,
                            f"{workers} process",
                            raw.done,
                            raw.sent_per_s,
                            raw.delivered_per_s,
                            raw.all_sent_seconds,
                            raw.all_final_seconds,
                            "",
                        )
                    log(f"{name}: agentsms, {workers} worker process(es)")
                    url = await backend.fresh_copy()
                    outcome = await run_agentsms(
                        url,
                        f"{name} agentsms",
                        workers,
                        args.messages,
                        loops=args.loops,
                        limit_seconds=args.timeout,
                        workdir=workdir,
                        py_spy=(args.py_spy / f"{name}-{workers}w") if args.py_spy else None,
                    )
                    ratio = ""
                    if workers in raw_done:
                        ratio = f"{outcome.delivered_per_s / raw_done[workers].delivered_per_s:.1%}"
                    table.add(
                        outcome.label,
                        f"{workers} worker",
                        outcome.done,
                        outcome.sent_per_s,
                        outcome.delivered_per_s,
                        outcome.all_sent_seconds,
                        outcome.all_final_seconds,
                        ratio,
                    )
                    if outcome.note:
                        notes.append(f"{name} {workers} worker(s): {outcome.note}")
        finally:
            for backend in backends.values():
                await backend.cleanup()
    table.print()
    print(
        "\nclock: starts when the jobs are made due (every worker already running); 'all sent'"
        f" and 'all final' are the first polls (every {POLL:g} s) that saw no message queued or"
        " sending, and every message delivered. sent/s and delivered/s = messages / those."
        f"\nagentsms workers run `agentsms worker --concurrency {args.loops}`; the raw ceiling"
        f" runs the same SQL in as many processes with {args.loops} connections each"
        " (stdlib sqlite3 / asyncpg, no ORM)."
        "\ntargets: >= 10,000 msg/s on SQLite and on PostgreSQL with 4 workers."
    )
    for note in notes:
        print("note:", note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument(
        "--runs",
        default="sqlite:1,postgres:1,postgres:2,postgres:4",
        help="comma-separated backend:worker_processes",
    )
    parser.add_argument("--loops", type=int, default=2, help="--concurrency of each worker")
    parser.add_argument("--timeout", type=float, default=30.0, help="cap per agentsms run (s)")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw SQL ceiling")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="PostgreSQL: skip ANALYZE after the preload (a fresh burst, planner stats stale)",
    )
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="record py-spy raw profiles of workers here"
    )
    parser.add_argument("--raw-child", help=argparse.SUPPRESS)
    parser.add_argument("--raw-tag", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_child:
        asyncio.run(raw_child(args.raw_child, args.loops, args.raw_tag))
        return
    if args.py_spy is not None and py_spy_command() is None:
        raise SystemExit("--py-spy needs py-spy (.venv/bin/pip install py-spy)")
    print(machine_note(), f"(host {socket.gethostname()})")
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
