"""Batch intake through ``POST /v1/batches`` beside a raw ``executemany`` of the same rows.

agentsms: one ``agentsms serve --no-worker`` process on a fresh SQLite file. Each request
carries 1,000 distinct recipients sharing one body; it is validated (E.164, segments,
sender choice), stored (batch + conversations + messages + send jobs, one transaction) and
answered ``202``. Measured sequentially, sequentially with an ``Idempotency-Key`` on each
request, and with 2 requests in flight.

The paths are interleaved: each step of a round inserts raw batches and then sends one
request (a pair, for 2 in flight) down each agentsms path, so that this machine's drift,
which moves a whole measurement by a third from minute to minute, falls on all paths alike.
The raw side inserts as many batches per step as agentsms receives (four), so both
databases grow at the same pace.

Ceiling: the same rows (one ``batches`` row, then ``messages`` and ``jobs`` rows as
``core/sending/storage.py::store`` writes them, plus one open ``conversations`` row per recipient
and ``message_events`` rows when agentsms wrote those for the warm-up batch) inserted
with the stdlib ``sqlite3`` ``executemany`` into a fresh database migrated with
``agentsms.store.migrate``, with agentsms's pragmas, one ``BEGIN IMMEDIATE`` transaction per
1,000 recipients. Rows are built before the clock
starts (a strict ceiling); the rate including building them in Python is shown too.

    .venv/bin/python benchmarks/bench_batch_intake.py [--requests 20] [--rounds 3]

Target (issue 2): agentsms >= 50 % of the raw rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _common import (
    Table,
    agentsms_serve,
    bench_env,
    free_port,
    log,
    machine_note,
    median,
    recipient,
    running_server,
    sqlite_url,
    temp_dir,
)

from agentsms.store.checkpointer import SAFETY_AUTOCHECKPOINT_PAGES, WalCheckpointer

BODY_TEXT = "Hi! Your order has shipped and will arrive tomorrow. Reply STOP to opt out."
SENDER = "+14155550100"
RAW = "raw sqlite3 executemany (rows prebuilt)"
RAW_BUILT = "raw: build rows in Python + executemany"
RAW_BACKGROUND = "raw executemany, WAL checkpoints on a thread"


class Recipients:
    """Hands out distinct recipient numbers across every request of the run."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> list[str]:
        start, self.next = self.next, self.next + count
        return [recipient(i) for i in range(start, start + count)]


# --------------------------------------------------------------------------- agentsms


def batch_body(numbers: list[str]) -> bytes:
    return json.dumps({"recipients": numbers, "body": BODY_TEXT}).encode()


async def post_together(
    clients: list[httpx.AsyncClient], api_key: str, bodies: list[bytes], *, idempotency_keys: bool
) -> float:
    """POST ``bodies`` at once, one per client; returns the wall time in seconds."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    async def post(client: httpx.AsyncClient, body: bytes) -> None:
        extra = {"Idempotency-Key": secrets.token_hex(12)} if idempotency_keys else {}
        response = await client.post("/v1/batches", content=body, headers=headers | extra)
        if response.status_code != 202:
            raise RuntimeError(f"batch refused: {response.status_code} {response.text[:500]}")

    started = time.perf_counter()
    await asyncio.gather(*(post(c, b) for c, b in zip(clients, bodies, strict=True)))
    return time.perf_counter() - started


# --------------------------------------------------------------------------- raw ceiling


def _ts(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime on SQLite (naive, microseconds)."""
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


# Every column a batch message has a value in; the others are left to default to NULL, as
# agentsms's inserts leave them (binding a NULL costs the sqlite3 driver more than a value).
MESSAGE_COLUMNS = (
    "id, project_id, batch_id, conversation_id, direction, to_number, from_number, number_id, "
    "contact, body, media_urls, channel, status, segments, encoding, price_estimate, "
    "currency, metadata, provider, in_flight, attempts, created_at, updated_at"
)
INSERT_MESSAGE = f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({', '.join(['?'] * 23)})"
INSERT_EVENT = (
    "INSERT INTO message_events (id, project_id, message_id, type, status, data, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_JOB = (
    "INSERT INTO jobs (kind, ref, payload, status, run_at, attempts, max_attempts, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_CONVERSATION = (
    "INSERT INTO conversations (id, project_id, number_id, agent_number, user_number, channel, "
    "status, thread_key, agent_paused, engaged, settings, metadata, state, extracted, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'sms', 'open', ?, 0, 0, '{}', '{}', '{}', "
    "'{}', ?, ?)"
)
INSERT_BATCH = (
    "INSERT INTO batches (id, project_id, total, metadata, created_at) VALUES (?, ?, ?, ?, ?)"
)

RawBatch = tuple[
    tuple[Any, ...],
    list[tuple[Any, ...]],
    list[tuple[Any, ...]],
    list[tuple[Any, ...]],
    list[tuple[Any, ...]],
]


def build_rows(
    project_id: str,
    number_id: str,
    numbers: list[str],
    *,
    with_events: bool = True,
    with_conversations: bool = False,
) -> RawBatch:
    """The rows agentsms writes for one batch of ``numbers`` (time-ordered ULID ids): the
    batch, its messages, send jobs, and (when agentsms writes them) intake events and one
    open conversation per recipient, linked from its message."""
    from agentsms.ids import new_id

    now = datetime.now(UTC)
    stamp = _ts(now)
    epoch = now.timestamp()
    batch_id = new_id("batch")
    messages: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    jobs: list[tuple[Any, ...]] = []
    conversations: list[tuple[Any, ...]] = []
    # Column order of MESSAGE_COLUMNS; the two "to" slots are to_number and contact.
    middle = (SENDER, number_id)
    tail: tuple[Any, ...] = (BODY_TEXT, "[]", "sms", "queued", 1, "GSM-7", 0.0, "USD")
    tail += ("{}", "simulator", 0, 0, stamp, stamp)
    for to in numbers:
        message_id = new_id("msg")
        conversation_id = new_id("conv") if with_conversations else None
        if conversation_id is not None:
            thread = f"{project_id}|{SENDER}|{to}|sms"
            conversations.append(
                (conversation_id, project_id, number_id, SENDER, to, thread, stamp, stamp)
            )
        head = (project_id, batch_id, conversation_id, "outbound")
        messages.append((message_id, *head, to, *middle, to, *tail))
        if with_events:
            events.append(
                (new_id("evt"), project_id, message_id, "message.queued", "queued", "{}", stamp)
            )
        jobs.append(("message.send", message_id, "{}", "queued", epoch, 0, 8, epoch))
    batch = (batch_id, project_id, len(numbers), "{}", stamp)
    return batch, messages, events, jobs, conversations


def raw_database(
    path: Path, *, background_checkpoints: bool = False
) -> tuple[sqlite3.Connection, str, str]:
    """A fresh migrated database with one project; connection set up like agentsms's
    (SQLite's own checkpoints in the committing call, or, with ``background_checkpoints``,
    only as the backstop of a checkpoint thread, as agentsms runs them)."""
    from agentsms.store import migrate

    migrate.upgrade(sqlite_url(path))
    conn = sqlite3.connect(path, isolation_level=None)
    pragmas = ["journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"]
    if background_checkpoints:
        pragmas.append(f"wal_autocheckpoint={SAFETY_AUTOCHECKPOINT_PAGES}")
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    project_id = "proj_" + "0" * 26
    stamp = _ts(datetime.now(UTC))
    conn.execute(
        "INSERT INTO projects (id, name, settings, created_at) VALUES (?, 'raw', '{}', ?)",
        (project_id, stamp),
    )
    return conn, project_id, "num_" + "0" * 26


def raw_insert(
    conn: sqlite3.Connection,
    batches: list[RawBatch],
    *,
    events: bool,
    committed: Callable[[], None] | None = None,
) -> float:
    """Insert each prepared batch in its own transaction (calling ``committed`` after each
    commit); returns seconds taken."""
    started = time.perf_counter()
    for batch, message_rows, event_rows, job_rows, conversation_rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT_BATCH, batch)
        conn.executemany(INSERT_CONVERSATION, conversation_rows)
        conn.executemany(INSERT_MESSAGE, message_rows)
        if events:
            conn.executemany(INSERT_EVENT, event_rows)
        conn.executemany(INSERT_JOB, job_rows)
        conn.execute("COMMIT")
        if committed is not None:
            committed()
    return time.perf_counter() - started


def intake_tables(database: Path) -> dict[str, int]:
    """Row counts agentsms wrote so far (only the warm-up batch when called)."""
    conn = sqlite3.connect(database)
    try:
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in (
                "batches",
                "messages",
                "message_events",
                "jobs",
                "idempotency_keys",
                "conversations",
            )
        }
    finally:
        conn.close()


# --------------------------------------------------------------------------- main

SEQUENTIAL = "POST /v1/batches, sequential"
SEQUENTIAL_KEY = "POST /v1/batches, sequential + Idempotency-Key"
TWO_IN_FLIGHT = "POST /v1/batches, 2 in flight + Idempotency-Key"
RAW_PER_STEP = 4


async def measure(
    base_url: str,
    api_key: str,
    conn: sqlite3.Connection,
    background: tuple[sqlite3.Connection, WalCheckpointer],
    project_id: str,
    number_id: str,
    database: Path,
    recipients: Recipients,
    *,
    size: int,
    count: int,
    rounds: int,
    record: Callable[[int, str, float, int], None],
) -> tuple[bool, bool]:
    """Each round: ``count`` steps, each step one raw batch and then one request (or pair)
    of every agentsms path, so that the machine's drift falls on all paths alike."""
    clients = [httpx.AsyncClient(base_url=base_url, timeout=120.0) for _ in range(2)]
    try:
        # Warm-up: one batch through each path.
        await post_together(
            clients[:1], api_key, [batch_body(recipients.take(size))], idempotency_keys=True
        )
        # Write what agentsms wrote for that batch: intake events only if it made them.
        written = intake_tables(database)
        events = written["message_events"] > 0
        threads = written["conversations"] > 0
        print(f"agentsms wrote for the warm-up batch: {written}")

        def rows_for(numbers: list[str]) -> RawBatch:
            return build_rows(
                project_id, number_id, numbers, with_events=events, with_conversations=threads
            )

        background_conn, checkpointer = background
        warm = [rows_for(recipients.take(size))]
        raw_insert(conn, warm, events=events)
        raw_insert(background_conn, warm, events=events, committed=checkpointer.written)
        for round_no in range(1, rounds + 1):
            log(f"round {round_no}: {count} steps of raw + 3 agentsms paths")
            totals = dict.fromkeys(
                (RAW, RAW_BUILT, RAW_BACKGROUND, SEQUENTIAL, SEQUENTIAL_KEY, TWO_IN_FLIGHT), 0.0
            )
            for _ in range(count):
                # As many raw batches as agentsms gets in the step (1 + 1 + 2), so that both
                # databases grow alike: inserts slow down as the tables grow.
                for _ in range(RAW_PER_STEP):
                    started = time.perf_counter()
                    prepared = rows_for(recipients.take(size))
                    building = time.perf_counter() - started
                    inserting = raw_insert(conn, [prepared], events=events)
                    totals[RAW] += inserting
                    totals[RAW_BUILT] += building + inserting
                    totals[RAW_BACKGROUND] += raw_insert(
                        background_conn, [prepared], events=events, committed=checkpointer.written
                    )
                for name, in_flight, keys in (
                    (SEQUENTIAL, 1, False),
                    (SEQUENTIAL_KEY, 1, True),
                    (TWO_IN_FLIGHT, 2, True),
                ):
                    bodies = [batch_body(recipients.take(size)) for _ in range(in_flight)]
                    totals[name] += await post_together(
                        clients[:in_flight], api_key, bodies, idempotency_keys=keys
                    )
            batches = dict.fromkeys((RAW, RAW_BUILT, RAW_BACKGROUND), RAW_PER_STEP)
            batches[TWO_IN_FLIGHT] = 2
            for name, seconds in totals.items():
                record(round_no, name, seconds, count * batches.get(name, 1))
        return events, threads
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="steps per round")
    parser.add_argument("--size", type=int, default=1000, help="recipients per batch")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(machine_note())

    size, count = args.size, args.requests
    recipients = Recipients()
    results: dict[str, list[float]] = {}
    runs = Table(
        f"batch intake, {count} steps x {size:,} recipients per path and round",
        ["round", "path", "seconds", "recipients/s"],
    )

    def record(round_no: int, name: str, seconds: float, batches: int) -> None:
        rate = batches * size / seconds
        results.setdefault(name, []).append(rate)
        runs.add(round_no, name, seconds, rate)

    with temp_dir() as workdir:
        api_key = "ask_bench_" + secrets.token_urlsafe(16)
        conn, project_id, number_id = raw_database(workdir / "raw.db")
        background_conn, _, _ = raw_database(workdir / "raw-bg.db", background_checkpoints=True)
        checkpointer = WalCheckpointer(str(workdir / "raw-bg.db"))
        port = free_port()
        env = bench_env(
            AGENTSMS_DATABASE_URL=sqlite_url(workdir / "agentsms.db"),
            AGENTSMS_BOOTSTRAP_API_KEY=api_key,
        )
        with running_server(
            agentsms_serve(port, "--no-worker"),
            port=port,
            env=env,
            workdir=workdir,
            name="agentsms",
        ) as server:
            httpx.patch(
                f"{server.base_url}/v1/project",
                headers={"Authorization": f"Bearer {api_key}"},
                json={"settings": {"rate_limit_per_second": 1_000_000}},
            ).raise_for_status()
            events, threads = asyncio.run(
                measure(
                    server.base_url,
                    api_key,
                    conn,
                    (background_conn, checkpointer),
                    project_id,
                    number_id,
                    workdir / "agentsms.db",
                    recipients,
                    size=size,
                    count=count,
                    rounds=args.rounds,
                    record=record,
                )
            )
        conn.close()
        checkpointer.stop()
        background_conn.close()
    runs.print()

    summary = Table(
        "summary (medians over rounds; ratios are each round's own, then their median)",
        [
            "path",
            "recipients/s",
            "% of raw",
            "% of raw+build",
            "% of raw, thread checkpoints",
            "verdict (>= 50 % of raw)",
        ],
    )

    def of(rates: list[float], ceiling: str) -> float:
        """The median of each round's own ratio to ``ceiling``."""
        return median([rate / raw for rate, raw in zip(rates, results[ceiling], strict=True)])

    for name, rates in results.items():
        of_raw = of(rates, RAW)
        verdict = ("ok" if of_raw >= 0.5 else "below target") if name.startswith("POST") else ""
        summary.add(
            name,
            median(rates),
            f"{of_raw:.1%}",
            f"{of(rates, RAW_BUILT):.1%}",
            f"{of(rates, RAW_BACKGROUND):.1%}",
            verdict,
        )
    summary.print()
    print(
        "\nraw = the DB work alone (ceiling); raw+build also pays for making ids, timestamps"
        " and tuples in Python, which any implementation must do. raw writes batches,"
        f" messages, jobs{', message_events' if events else ''}"
        f"{', conversations' if threads else ''} (what agentsms wrote for the"
        " warm-up batch; agentsms also writes an idempotency record when given a key)."
        " SQLite checkpoints its WAL inside the commit that finds it over 1,000 pages; agentsms"
        " runs checkpoints on a thread of their own (store/checkpointer.py), and so does the"
        " 'thread checkpoints' ceiling, which shows how much of the ratio that move makes."
    )


if __name__ == "__main__":
    main()
