"""Single-send intake on a database of 5,000, 50,000 and 500,000 messages: does it slow?

First a short real session makes the template rows: ``agentsms serve`` (with its worker and
the simulator carrier) accepts a few dozen single sends with ``Idempotency-Key`` and
delivers them; the rows it wrote (message, its events, its idempotency record, the
simulator's send log) are read back. Each size's database is then filled from those
templates with direct bulk inserts (``executemany`` in stdlib ``sqlite3``; ``COPY`` through
asyncpg on PostgreSQL), not through the API: fresh ids, recipients from a pool of
``--contacts`` people, creation times spread over the last ``--days`` days (the ids are
time-ordered as agentsms makes them), idempotency records for the last 24 hours only (older
ones are purged), and a few failed and scheduled jobs. Jobs that finished are deleted by
agentsms, so there are no others.

Each measurement starts from a fresh copy of a size's database (a file copy; on PostgreSQL
``CREATE DATABASE ... TEMPLATE``), runs ``agentsms serve --no-worker`` (one API process) on
it and drives ``POST /v1/messages`` closed-loop over ``--connections`` keep-alive
connections for ``--seconds`` (wrk when installed, each request to one of the same pool of
recipients with a fresh ``Idempotency-Key``; otherwise the httpx generator of
``_common.py`` with one recipient). Rounds interleave the sizes so the machine's drift
falls on all of them alike; the table gives medians and the ratio of each size's rate to
the smallest size's.

    .venv/bin/python benchmarks/bench_intake_growth.py [--backend sqlite|postgres]
        [--sizes 5000,50000,500000] [--rounds 3] [--seconds 10] [--connections 32]

PostgreSQL: the databases ``<name>_seed``, ``<name>_<size>`` and ``<name>_run`` next to
``AGENTSMS_BENCH_POSTGRES_URL`` (default ``.../bench``; the name is ``bench_growth``
unless ``--pg-name``) are dropped and recreated: point it at a scratch server.

Target (issue 18): 5,000 -> 500,000 messages move the single-send rate by less than 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from _common import (
    DEFAULT_PG_URL,
    LoadResult,
    LoadSpec,
    Server,
    Table,
    agentsms_serve,
    bench_env,
    free_port,
    have_wrk,
    log,
    machine_note,
    median,
    recipient,
    run_load,
    sqlite_url,
    temp_dir,
)

API_KEY = "ask_growth_benchmark_key_0123456789abcdef"
TEXT = "Your code is 482913. It expires in 10 minutes."
TEMPLATE_SENDS = 40
SENDER_NUMBERS = 3
SEND_JOB = "message.send"
READY_SECONDS = 180.0
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# --------------------------------------------------------------------------- backends


class Backend:
    """Where the databases live: creating, filling, copying them and the URL to serve."""

    name: str

    def url(self, db: str) -> str:
        raise NotImplementedError

    def fresh(self, db: str) -> None:
        raise NotImplementedError

    def copy(self, source: str, target: str) -> None:
        raise NotImplementedError

    def drop(self, db: str) -> None:
        raise NotImplementedError

    def fetch(self, db: str, query: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def insert(
        self, db: str, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        raise NotImplementedError

    def finish_fill(self, db: str) -> None:
        """Make the filled database ready to copy (checkpoint, statistics)."""

    def has_table(self, db: str, table: str) -> bool:
        raise NotImplementedError

    def timestamp(self, value: datetime) -> Any:
        raise NotImplementedError


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def path(self, db: str) -> Path:
        return self.workdir / f"{db}.db"

    def url(self, db: str) -> str:
        return sqlite_url(self.path(db))

    def fresh(self, db: str) -> None:
        self.drop(db)

    def copy(self, source: str, target: str) -> None:
        self.drop(target)
        shutil.copyfile(self.path(source), self.path(target))

    def drop(self, db: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path(db)}{suffix}").unlink(missing_ok=True)

    def _connect(self, db: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path(db), isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    def fetch(self, db: str, query: str) -> list[dict[str, Any]]:
        with self._connect(db) as conn:
            return [dict(row) for row in conn.execute(query)]

    def insert(
        self, db: str, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        conn = self._connect(db)
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN")
            marks = ", ".join("?" for _ in columns)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                [tuple(_sqlite_value(v) for v in row) for row in rows],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def has_table(self, db: str, table: str) -> bool:
        query = f"SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
        return bool(self.fetch(db, query))

    def finish_fill(self, db: str) -> None:
        conn = self._connect(db)
        try:
            # No ANALYZE: agentsms never runs one, so its queries are planned without
            # statistics, as here.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def timestamp(self, value: datetime) -> Any:
        # As SQLAlchemy stores a UTC column on SQLite (see store.types): naive, microseconds.
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, base_url: str, prefix: str) -> None:
        self.server = base_url.rsplit("/", 1)[0]
        self.prefix = prefix

    def _dsn(self, db: str) -> str:
        return f"{self.server}/{db}".replace("postgresql+asyncpg://", "postgresql://", 1)

    def url(self, db: str) -> str:
        return f"{self.server}/{self.prefix}_{db}"

    def _admin(self, *statements: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self._dsn("postgres"))
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())

    def fresh(self, db: str) -> None:
        name = f"{self.prefix}_{db}"
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')

    def copy(self, source: str, target: str) -> None:
        self._admin(
            f'DROP DATABASE IF EXISTS "{self.prefix}_{target}" WITH (FORCE)',
            f'CREATE DATABASE "{self.prefix}_{target}" TEMPLATE "{self.prefix}_{source}"',
        )

    def drop(self, db: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.prefix}_{db}" WITH (FORCE)')

    def fetch(self, db: str, query: str) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self._dsn(f"{self.prefix}_{db}"))
            try:
                return [dict(row) for row in await conn.fetch(query)]
            finally:
                await conn.close()

        return asyncio.run(run())

    def insert(
        self, db: str, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self._dsn(f"{self.prefix}_{db}"))
            try:
                await conn.copy_records_to_table(table, records=rows, columns=list(columns))
            finally:
                await conn.close()

        asyncio.run(run())

    def has_table(self, db: str, table: str) -> bool:
        return bool(self.fetch(db, f"SELECT tablename FROM pg_tables WHERE tablename = '{table}'"))

    def finish_fill(self, db: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self._dsn(f"{self.prefix}_{db}"))
            try:
                await conn.execute("VACUUM ANALYZE")
            finally:
                await conn.close()

        asyncio.run(run())

    def timestamp(self, value: datetime) -> Any:
        return value


# --------------------------------------------------------------------------- the template


SERVER_ENV: dict[str, str] = {}
"""Extra settings of the measured server (``--cache-mib``)."""


def serve_env(url: str) -> dict[str, str]:
    return bench_env(
        **SERVER_ENV,
        AGENTSMS_DATABASE_URL=url,
        AGENTSMS_BOOTSTRAP_API_KEY=API_KEY,
        AGENTSMS_DEFAULT_RATE_LIMIT_PER_SECOND="1000000",
        AGENTSMS_SIMULATOR_DELIVERY_DELAY_SECONDS="0.05",
    )


def make_template(backend: Backend, workdir: Path) -> dict[str, list[dict[str, Any]]]:
    """A real session's rows: a few delivered single sends with idempotency keys."""
    backend.fresh("seed")
    if backend.name == "postgres":
        migrate = subprocess.run(
            [*agentsms_serve(0)[:3], "migrate"],
            env=serve_env(backend.url("seed")),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if migrate.returncode:
            raise RuntimeError(f"migrate failed:\n{migrate.stderr[-3000:]}")
    with serving(backend.url("seed"), workdir, "template", "--processes", "1") as server:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            # Several sender numbers: each send then looks up the number its recipient
            # last talked to (sticky sender), a query over the message history.
            for i in range(SENDER_NUMBERS):
                client.post(
                    "/v1/numbers",
                    json={"number": f"+1628555{i:04d}", "provider": "simulator"},
                ).raise_for_status()
            ids = []
            for n in range(TEMPLATE_SENDS):
                answer = client.post(
                    "/v1/messages",
                    headers={"Idempotency-Key": f"template-{n}"},
                    json={"to": recipient(n), "body": TEXT, "metadata": {"n": str(n)}},
                )
                answer.raise_for_status()
                ids.append(answer.json()["id"])
            deadline = time.monotonic() + 300
            while True:
                pending = [
                    i
                    for i in ids
                    if client.get(f"/v1/messages/{i}").json()["status"]
                    not in ("delivered", "failed", "undelivered")
                ]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(pending)} template sends never became final")
                time.sleep(0.5)
    return {
        "messages": backend.fetch("seed", "SELECT * FROM messages ORDER BY id"),
        "message_events": backend.fetch("seed", "SELECT * FROM message_events ORDER BY seq"),
        "idempotency_keys": backend.fetch("seed", "SELECT * FROM idempotency_keys"),
        "simulator_sends": backend.fetch("seed", "SELECT * FROM simulator_sends ORDER BY id"),
        "conversations": backend.fetch("seed", "SELECT * FROM conversations ORDER BY id"),
    }


def ulid_at(prefix: str, moment: datetime, rng: random.Random) -> str:
    """A ``<prefix>_<ULID>`` made at ``moment``, as ``agentsms.ids`` makes them."""
    value = (int(moment.timestamp() * 1000) << 80) | rng.getrandbits(80)
    return prefix + "_" + "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _shift(value: Any, delta: timedelta) -> Any:
    return value + delta if isinstance(value, datetime) else value


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def fill(
    backend: Backend,
    db: str,
    size: int,
    template: dict[str, list[dict[str, Any]]],
    args: argparse.Namespace,
) -> None:
    """Copy the seed database and add ``size`` messages (minus the seed's) cloned from it."""
    started = time.monotonic()
    backend.copy("seed", db)
    rng = random.Random(size)
    now = datetime.now(UTC)
    messages = template["messages"]
    events_of: dict[str, list[dict[str, Any]]] = {}
    for event in template["message_events"]:
        events_of.setdefault(event["message_id"], []).append(event)
    key_of = {json.loads(k["response_body"])["id"]: k for k in template["idempotency_keys"]}
    sends_of = {s["reference"]: s for s in template["simulator_sends"]}
    # Every thread (sender number, recipient, channel) has its active conversation.
    conversation = template["conversations"][0]
    threads: dict[tuple[str, str], str] = {
        (c["agent_number"], c["user_number"]): c["id"] for c in template["conversations"]
    }
    span = timedelta(days=args.days).total_seconds()
    moments = sorted(
        now - timedelta(seconds=60 + rng.random() * span) for _ in range(size - len(messages))
    )
    columns = {
        name: [
            c
            for c in rows[0]
            if c not in ("seq",) and not (name == "simulator_sends" and c == "id")
        ]
        for name, rows in template.items()
    }
    tables: dict[str, list[tuple[Any, ...]]] = {name: [] for name in template}
    jobs: list[tuple[Any, ...]] = []
    # Each person's newest message and its sender (the schema's sticky_senders, if it has one).
    newest: dict[tuple[str, str], tuple[str, str | None]] = {}
    job_columns = [
        "kind",
        "ref",
        "payload",
        "status",
        "run_at",
        "attempts",
        "max_attempts",
        "lease_token",
        "last_error",
        "created_at",
    ]

    def flush() -> None:
        for name, rows in tables.items():
            if rows:
                backend.insert(db, name, columns[name], rows)
                rows.clear()
        if jobs:
            backend.insert(db, "jobs", job_columns, jobs)
            jobs.clear()

    ts = backend.timestamp
    for n, moment in enumerate(moments):
        source = messages[n % len(messages)]
        origin = _as_datetime(source["created_at"])
        delta = moment - origin
        message_id = ulid_at("msg", moment, rng)
        contact = recipient(rng.randrange(args.contacts))
        row = dict(source)
        for column in ("created_at", "updated_at", "sent_at", "delivered_at"):
            if row.get(column) is not None:
                row[column] = ts(_as_datetime(row[column]) + delta)
        row.update(id=message_id, to_number=contact, contact=contact)
        thread = (row["from_number"], contact)
        if thread not in threads:
            threads[thread] = ulid_at("conv", moment, rng)
            copy = dict(conversation)
            copy.update(
                id=threads[thread],
                number_id=row["number_id"],
                agent_number=row["from_number"],
                user_number=contact,
                thread_key="|".join([row["project_id"], *thread, row["channel"]]),
                created_at=ts(moment),
                updated_at=ts(moment),
            )
            tables["conversations"].append(tuple(copy[c] for c in columns["conversations"]))
        row["conversation_id"] = threads[thread]
        if row.get("provider_message_id"):
            row["provider_message_id"] = "sim_" + secrets.token_hex(8)
        tables["messages"].append(tuple(row[c] for c in columns["messages"]))
        newest[(row["project_id"], contact)] = (message_id, row["number_id"])
        for event in events_of.get(source["id"], []):
            copy = dict(event)
            at = _as_datetime(event["created_at"]) + delta
            copy.update(id=ulid_at("evt", at, rng), message_id=message_id, created_at=ts(at))
            tables["message_events"].append(tuple(copy[c] for c in columns["message_events"]))
        key = key_of.get(source["id"])
        if key is not None and now - moment < timedelta(hours=24):
            copy = dict(key)
            copy.update(
                key=secrets.token_hex(12),
                response_body=key["response_body"].replace(source["id"], message_id),
                created_at=ts(_as_datetime(key["created_at"]) + delta),
                expires_at=ts(_as_datetime(key["expires_at"]) + delta),
            )
            tables["idempotency_keys"].append(tuple(copy[c] for c in columns["idempotency_keys"]))
        send = sends_of.get(source["id"])
        if send is not None:
            copy = dict(send)
            copy.update(
                reference=message_id,
                provider_message_id=row.get("provider_message_id") or secrets.token_hex(8),
                to_number=contact,
                created_at=float(send["created_at"]) + delta.total_seconds(),
            )
            tables["simulator_sends"].append(tuple(copy[c] for c in columns["simulator_sends"]))
        if n % 200 == 0:  # a failed send kept for inspection, and a send scheduled for later
            payload = "{}"
            created = moment.timestamp()
            jobs.append(
                (
                    SEND_JOB,
                    message_id,
                    payload,
                    "failed",
                    created,
                    8,
                    8,
                    8,
                    "provider error",
                    created,
                )
            )
            later = now.timestamp() + rng.random() * 86_400
            jobs.append(
                (
                    SEND_JOB,
                    ulid_at("msg", moment, rng),
                    payload,
                    "queued",
                    later,
                    0,
                    8,
                    0,
                    None,
                    created,
                )
            )
        if len(tables["messages"]) >= 20_000:
            flush()
    flush()
    if backend.has_table(db, "sticky_senders"):
        # The seed's own rows are for its newer messages: they stay.
        seeded = {
            (row["project_id"], row["contact"])
            for row in backend.fetch(db, "SELECT project_id, contact FROM sticky_senders")
        }
        backend.insert(
            db,
            "sticky_senders",
            ["project_id", "contact", "message_id", "number_id"],
            [(*key, *value) for key, value in newest.items() if key not in seeded],
        )
    backend.finish_fill(db)
    log(f"filled {db}: {size:,} messages in {time.monotonic() - started:.0f} s")


# --------------------------------------------------------------------------- load


_WRK_LUA = """
local prefix = "%(prefix)s"
local contacts = %(contacts)d
local counter = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("tid", math.random(1, 1000000))
end

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. "-" .. tostring(tid) .. "-" .. counter
  local to = "+1415" .. tostring(2000000 + (counter * 7919) %% contacts)
  wrk.body = '{"to":"' .. to .. '","body":"%(text)s","metadata":{"user_id":"u_1234"}}'
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"errors\\": %%d, " ..
    "\\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_load(base_url: str, seconds: float, args: argparse.Namespace, workdir: Path) -> LoadResult:
    script = workdir / "growth.lua"
    script.write_text(
        _WRK_LUA
        % {
            "prefix": secrets.token_hex(6),
            "contacts": args.contacts,
            "key": API_KEY,
            "text": TEXT,
        }
    )
    completed = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            f"{base_url}/v1/messages",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 90,
        check=False,
    )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    duration = data["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        connections=args.connections,
        seconds=duration,
        requests=data["requests"],
        errors=data["errors"],
        rps=(data["requests"] - data["errors"]) / duration,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


@contextmanager
def serving(
    url: str, workdir: Path, name: str, *args: str, checkout: Path | None = None
) -> Iterator[Server]:
    """``agentsms serve`` on ``url``, given up to 3 minutes to start (a loaded machine);
    with ``checkout``, that checkout's ``src`` comes first on the server's ``PYTHONPATH``."""
    port = free_port()
    env = serve_env(url)
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(checkout / "src"), env.get("PYTHONPATH")])
        )
    server = Server(
        agentsms_serve(port, *args),
        port=port,
        env=env,
        log_path=workdir / f"{name}.log",
        cwd=workdir,
    )
    try:
        server.wait_ready(timeout=READY_SECONDS)
        yield server
    finally:
        server.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def io_counts(pid: int) -> dict[str, int]:
    """The process's I/O counters so far (``/proc/<pid>/io``): read/write calls and bytes."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {name: int(value) for name, value in fields.items()}


def rss_mb(pid: int) -> float:
    """The process's resident set size in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Measured:
    """One run: the load generator's figures, the server's CPU and read calls (SQLite's
    page reads, plus the requests' socket reads) per accepted send, and its RSS at the end."""

    load: LoadResult
    cpu_ms: float
    reads: float = float("nan")
    rss_mb: float = float("nan")


def measure(
    backend: Backend,
    db: str,
    args: argparse.Namespace,
    workdir: Path,
    checkout: Path | None = None,
) -> Measured:
    backend.copy(db, "run")
    try:
        with serving(
            backend.url("run"),
            workdir,
            f"serve-{db}",
            "--no-worker",
            "--no-access-log",
            checkout=checkout,
        ) as server:
            if have_wrk() and args.loadgen != "python":
                wrk_load(server.base_url, args.warmup, args, workdir)
                cpu = cpu_seconds(server.pid)
                io = io_counts(server.pid)
                result = wrk_load(server.base_url, args.seconds, args, workdir)
            else:
                spec = LoadSpec(
                    url=f"{server.base_url}/v1/messages",
                    body=json.dumps({"to": recipient(1), "body": TEXT}),
                    headers={
                        "Authorization": f"Bearer {API_KEY}",
                        "Content-Type": "application/json",
                    },
                    connections=args.connections,
                    seconds=args.warmup,
                    warmup=0,
                )
                run_load(spec, tool="python", workdir=workdir)
                cpu = cpu_seconds(server.pid)
                io = io_counts(server.pid)
                result = run_load(
                    replace(spec, seconds=args.seconds), tool="python", workdir=workdir
                )
            used = cpu_seconds(server.pid) - cpu
            reads = io_counts(server.pid)["syscr"] - io["syscr"]
            accepted = result.requests - result.errors
            if not accepted:
                return Measured(result, float("nan"), rss_mb=rss_mb(server.pid))
            return Measured(result, used * 1000 / accepted, reads / accepted, rss_mb(server.pid))
    finally:
        backend.drop("run")


def sizes_of(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def checkouts_of(text: str | None) -> dict[str, Path | None]:
    """``--checkouts label=path,...`` as labels to checkout roots; none: this checkout."""
    if not text:
        return {"this": None}
    found: dict[str, Path | None] = {}
    for part in text.split(","):
        label, _, path = part.partition("=")
        root = Path(path or label).resolve()
        if not (root / "src" / "agentsms").is_dir():
            raise SystemExit(f"--checkouts: {root} has no src/agentsms")
        found[label if path else root.name] = root
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="5000,50000,500000", help="messages per database")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured time per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--contacts", type=int, default=20_000, help="distinct recipients")
    parser.add_argument("--days", type=float, default=7.0, help="the messages' time span")
    parser.add_argument("--loadgen", choices=["auto", "python"], default="auto")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("AGENTSMS_BENCH_POSTGRES_URL", DEFAULT_PG_URL),
        help="a scratch server: <name>_seed, <name>_<size>, <name>_run are recreated",
    )
    parser.add_argument("--pg-name", default="bench_growth")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="sqlite: keep the filled databases here and reuse them on later runs",
    )
    parser.add_argument("--cache-mib", type=int, help="the server's AGENTSMS_SQLITE_CACHE_MIB")
    parser.add_argument(
        "--checkouts",
        help="label=path,...: serve each checkout's src in turn (interleaved in every round,"
        " on the same databases), e.g. before=../main,after=. (the databases are filled by"
        " this checkout; a newer checkout migrates its copy when it starts)",
    )
    args = parser.parse_args()
    if args.cache_mib is not None:
        SERVER_ENV["AGENTSMS_SQLITE_CACHE_MIB"] = str(args.cache_mib)
    sizes = sizes_of(args.sizes)
    checkouts = checkouts_of(args.checkouts)
    print(machine_note())
    for label, root in checkouts.items():
        if root is not None:
            print(f"checkout {label}: {root} ({_commit_of(root)})")

    with temp_dir("agentsms-bench-growth-") as workdir:
        backend: Backend = (
            SqliteBackend(args.data_dir or workdir)
            if args.backend == "sqlite"
            else PostgresBackend(args.postgres_url, args.pg_name)
        )
        names = [f"m{size}" for size in sizes]
        kept = isinstance(backend, SqliteBackend) and args.data_dir is not None
        if kept:
            args.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            missing = [
                (size, name)
                for size, name in zip(sizes, names, strict=True)
                if not (kept and isinstance(backend, SqliteBackend) and backend.path(name).exists())
            ]
            if missing:
                log("template: a real session of single sends, delivered")
                template = make_template(backend, workdir)
                for size, name in missing:
                    fill(backend, name, size, template, args)
            results: dict[tuple[str, int], list[Measured]] = {
                (label, size): [] for label in checkouts for size in sizes
            }
            runs = Table(
                f"single sends on {args.backend}, {args.connections} connections,"
                f" {args.seconds:g} s per run",
                [
                    "round",
                    "checkout",
                    "messages",
                    "generator",
                    "requests",
                    "errors",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "server CPU ms/send",
                    "reads/send",
                    "RSS MB",
                ],
            )
            for round_no in range(1, args.rounds + 1):
                order = [
                    (label, size, name)
                    for size, name in zip(sizes, names, strict=True)
                    for label in checkouts
                ]
                if round_no % 2 == 0:
                    order.reverse()  # no size always runs first (or last) in a round
                for label, size, name in order:
                    log(f"round {round_no}: {label}, {size:,} messages")
                    measured = measure(backend, name, args, workdir, checkouts[label])
                    results[label, size].append(measured)
                    load = measured.load
                    runs.add(
                        round_no,
                        label,
                        size,
                        load.tool,
                        load.requests,
                        load.errors,
                        load.rps,
                        load.p50_ms,
                        load.p99_ms,
                        measured.cpu_ms,
                        measured.reads,
                        measured.rss_mb,
                    )
            runs.print()
        finally:
            if isinstance(backend, PostgresBackend):
                for name in ["seed", *names, "run"]:
                    backend.drop(name)
    for label in checkouts:
        report(args, sizes, {size: results[label, size] for size in sizes}, label)


def _commit_of(root: Path) -> str:
    completed = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or "unknown commit"


def same_round_ratio(mine: list[float], first: list[float]) -> float:
    """The median over rounds of one round's figure over the same round's first size's."""
    return median([m / f for m, f in zip(mine, first, strict=True) if f])


def report(
    args: argparse.Namespace,
    sizes: list[int],
    results: dict[int, list[Measured]],
    label: str = "this",
) -> None:
    def rates(size: int) -> list[float]:
        return [m.load.rps for m in results[size]]

    def cpu(size: int) -> list[float]:
        return [m.cpu_ms for m in results[size]]

    named = "" if label == "this" else f" ({label})"
    summary = Table(
        f"summary{named} (medians over rounds; ratios: each round's figure over the same"
        f" round's at {sizes[0]:,} messages, median over rounds)",
        [
            "messages",
            "req/s",
            "p50 ms",
            "p99 ms",
            "CPU ms/send",
            "reads/send",
            "RSS MB",
            "rate ratio",
            "CPU ratio",
            "verdict (within 10 %)",
        ],
    )
    for size in sizes:
        rate_ratio = same_round_ratio(rates(size), rates(sizes[0]))
        cpu_ratio = same_round_ratio(cpu(size), cpu(sizes[0]))
        summary.add(
            size,
            median(rates(size)),
            median([m.load.p50_ms for m in results[size]]),
            median([m.load.p99_ms for m in results[size]]),
            median(cpu(size)),
            median([m.reads for m in results[size]]),
            median([m.rss_mb for m in results[size]]),
            f"{rate_ratio:.3f}",
            f"{cpu_ratio:.3f}",
            "ok" if abs(rate_ratio - 1) < 0.1 else "moved by 10 % or more",
        )
    summary.print()
    print(
        "\nThe server's CPU per accepted send (user + system time of the `serve` process over"
        " the measured seconds) is the steadier figure on a shared machine: the rate moves"
        " with whatever else runs, the work per send does not. Reads per send are the"
        " server's read calls (SQLite's page cache misses, plus the requests' socket reads)."
    )
    first, last = sizes[0], sizes[-1]
    print(
        f"intake growth {args.backend}{named}: {first:,} -> {last:,} messages, rate"
        f" {median(rates(first)):,.0f} -> {median(rates(last)):,.0f} req/s (same-round ratio"
        f" {same_round_ratio(rates(last), rates(first)):.3f}), CPU per send"
        f" {median(cpu(first)):.2f} -> {median(cpu(last)):.2f} ms (ratio"
        f" {same_round_ratio(cpu(last), cpu(first)):.3f})"
    )


if __name__ == "__main__":
    main()
