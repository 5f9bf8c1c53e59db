"""Sustained real traffic: an open-loop soak of the mix an operator sees, minute by minute.

The mix: ``--rate`` single sends a second (each at its scheduled moment, whether or not
earlier ones were answered: an open loop, so a slow server shows as latency and backlog,
not as a politely slower client), a ``--batch-size`` batch every ``--batch-every``
seconds, one single send in ``--conversation-every`` opening a conversation with the
shipped appointment-reminder pathway whose simulated person answers 4 s later, and a
webhook endpoint subscribed to delivery, inbound, opt-out and conversation-end events.

Backends: ``sqlite`` runs the default ``agentsms serve`` (API and worker in one command);
``postgres`` runs ``agentsms serve --no-worker`` and ``--workers`` ``agentsms worker``
processes on a fresh database.

Each minute prints accepted/s, completed/s (messages that reached a final status, from
their webhooks), backlog (due jobs), intake p50/p99, webhooks/s, the server processes' RSS
and the API's worst event-loop lag (``agentsms_event_loop_lag_seconds``). Then the load
stops, the backlog drains (up to ``--drain`` s) and the verdict is printed against the
targets: backlog under 2 s of work, intake p99 under 250 ms, every message final within
30 s of its 202, no webhook delivered twice, no loop stall over 200 ms, RSS within +-15 %
after the first 2 minutes. The last line:

    sustained <backend>: <completed>/s completed of <offered>/s offered, backlog <jobs>,
    p99 <ms> ms, max loop lag <ms> ms

    .venv/bin/python benchmarks/bench_sustained.py --backend sqlite --rate 500 --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    AGENTSMS,
    CLOCK_TICKS,
    DEFAULT_PG_URL,
    Process,
    Server,
    bench_env,
    children_of,
    free_port,
    percentile,
    process_ticks,
    recreate_postgres_database,
    temp_dir,
)

from agentsms.agents import load_demo_pathway

API_KEY = "ask_sustained_benchmark_key_0123456789"
FINAL = {"message.delivered", "message.undelivered", "message.failed", "message.expired"}
SUBSCRIBED = [
    *sorted(FINAL),
    "message.received",
    "recipient.opted_out",
    "conversation.ended",
]
PERSON_REPLY = "Can we do Thursday at 3pm instead?"
NUMBERS = 10
NUMBER_MPS = 100
LOOP_LAG_METRIC = "agentsms_event_loop_lag_seconds_bucket"


# ------------------------------------------------------------------ a lean HTTP/1.1 client


class Connection:
    """One keep-alive HTTP/1.1 connection: cheaper per request than a general client, so
    the load generator leaves the CPU to the server it measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes, headers: str) -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Idle connections to reuse; a new one when none is idle (an open loop never waits)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Connection] = []
        self.opened = 0

    async def post(self, path: str, body: bytes, headers: str = "") -> tuple[int, bytes]:
        if self.idle:
            connection = self.idle.pop()
            try:
                answer = await connection.post(path, body, headers)
            except (OSError, asyncio.IncompleteReadError):
                connection.close()  # the server closed it while idle: once more, fresh
            else:
                self.idle.append(connection)
                return answer
        connection = await Connection.open(self.port)
        self.opened += 1
        try:
            answer = await connection.post(path, body, headers)
        except (OSError, asyncio.IncompleteReadError):
            connection.close()
            raise
        self.idle.append(connection)
        return answer


# ------------------------------------------------------------------ the webhook receiver


@dataclass
class Receiver:
    """Counts the webhooks agentsms delivers: by id (duplicates), by minute, and when each
    message reached a final status."""

    ids: Counter[str] = field(default_factory=Counter)
    per_second: Counter[int] = field(default_factory=Counter)
    final_at: dict[str, float] = field(default_factory=dict)
    batch_of: dict[str, str] = field(default_factory=dict)
    types: Counter[str] = field(default_factory=Counter)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, webhook_id = 0, ""
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"webhook-id":
                        webhook_id = value.strip().decode()
                body = await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                self.record(webhook_id, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def record(self, webhook_id: str, body: bytes) -> None:
        now = time.time()
        self.ids[webhook_id] += 1
        self.per_second[int(now)] += 1
        event = json.loads(body)
        kind = str(event.get("type", ""))
        self.types[kind] += 1
        message = (event.get("data") or {}).get("message") or {}
        if kind in FINAL and "id" in message:
            self.final_at.setdefault(str(message["id"]), now)
            if message.get("batch_id"):
                self.batch_of[str(message["id"])] = str(message["batch_id"])

    def duplicates(self) -> int:
        return sum(count - 1 for webhook_id, count in self.ids.items() if webhook_id and count > 1)


# ------------------------------------------------------------------ processes and probes


async def single_send(
    client: httpx.AsyncClient, n: int, conversation_every: int, persona_id: str
) -> dict[str, Any]:
    """The body of the mix's ``n``-th single send: a reminder, or every
    ``conversation_every``-th one a new conversation with a scripted person (their answer
    set up first, through ``client``)."""
    if n % conversation_every:
        return {"to": recipient(n), "body": f"Reminder {n}: see you soon"}
    person = f"+1415556{n % 10000:04d}"
    await client.put(
        f"/v1/simulator/people/{person}",
        json={"replies": [PERSON_REPLY], "delay_seconds": 4},
    )
    return {
        "to": person,
        "new_conversation": True,
        "conversation": {
            "persona_id": persona_id,
            "quiet_hours": False,
            "metadata": {"name": "Sam", "time": "on Tuesday at 10 AM"},
        },
    }


def serve_receiver(port: int) -> None:
    """Run a :class:`Receiver` on ``port`` until killed (a child process's target)."""

    async def serve() -> None:
        server = await asyncio.start_server(Receiver().serve, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[int]:
    """A :class:`Receiver` in a child process for the block; yields its port."""
    port = free_port()
    receiver = multiprocessing.get_context("spawn").Process(target=serve_receiver, args=(port,))
    receiver.start()
    try:
        await wait_for_port(port)
        yield port
    finally:
        receiver.terminate()
        receiver.join()


def in_process_client(app: Any) -> httpx.AsyncClient:
    """A client of ``app`` (``create_app``) in this process, with the benchmark's API key."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://bench",
        headers={"Authorization": f"Bearer {API_KEY}"},
    )


def in_process_settings(database_url: str, **overrides: Any) -> Any:
    """Settings for an app run inside a benchmark's own process (``create_app``): the
    benchmark's API key, loopback webhook URLs allowed, no rate limit, WARNING logs."""
    from agentsms import logging as agentsms_logging
    from agentsms.config import Settings

    agentsms_logging.configure("json", "WARNING")
    return Settings.model_validate(
        {
            "database_url": database_url,
            "bootstrap_api_key": API_KEY,
            "allow_insecure_urls": True,
            "default_rate_limit_per_second": 1_000_000,
            "log_level": "WARNING",
            **overrides,
        }
    )


async def wait_for_port(port: int, seconds: float = 60.0) -> None:
    """Wait until something listens on ``port`` of 127.0.0.1."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return


async def database_backends(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving connections to ``database_url``'s database."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(row["pid"]) for row in rows]


def cpu_seconds(
    before: dict[tuple[str, int], int], after: dict[tuple[str, int], int]
) -> dict[str, float]:
    """CPU seconds used by role between two :meth:`Deployment.cpu_ticks` (a process new
    since ``before`` counts from its start)."""
    used: dict[str, float] = {}
    for key, ticks in after.items():
        used[key[0]] = used.get(key[0], 0.0) + (ticks - before.get(key, 0)) / CLOCK_TICKS
    return used


@dataclass
class Deployment:
    backend: str
    api: Server
    workers: list[Process]
    database_url: str

    def pids(self) -> list[int]:
        """The processes started, and the children of a supervising ``serve``."""
        started = [self.api.pid, *(worker.pid for worker in self.workers)]
        return [*started, *(child for pid in started for child in children_of(pid))]

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    async def cpu_ticks(self) -> dict[tuple[str, int], int]:
        """Clock ticks of CPU (user + system) used so far by each server process, by role
        and pid; for PostgreSQL also each backend connected to the benchmark's database (the
        database's work is the server's work; backends that exited meanwhile are lost)."""
        roles = {self.api.pid: "serve", **{worker.pid: "worker" for worker in self.workers}}
        roles.update(self.child_roles())
        pids = [(roles.get(pid, "serve child"), pid) for pid in self.pids()]
        if self.backend == "postgres":
            pids += [("postgres", pid) for pid in await database_backends(self.database_url)]
        return {key: ticks for key in pids if (ticks := process_ticks(key[1])) is not None}

    def child_roles(self) -> dict[int, str]:
        """``serve``'s children by pid: ``api`` or ``worker`` (its ``serve.processes`` line)."""
        roles: dict[int, str] = {}
        for line in self.api.log_path.read_text(errors="replace").splitlines():
            if '"serve.processes"' in line:
                children = json.loads(line).get("children", {})
                roles.update({int(pid): role for pid, role in children.items()})
        return roles

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.api.stop()


def start(args: argparse.Namespace, workdir: Path) -> Deployment:
    port = free_port()
    if args.backend == "sqlite":
        database_url = f"sqlite+aiosqlite:///{workdir / 'agentsms.db'}"
    else:
        # Named after the given database, so that runs given different ones never collide.
        base, name = args.postgres_url.rsplit("/", 1)
        database_url = f"{base}/{name}_sustained"
        asyncio.run(recreate_postgres_database(database_url))
    env = bench_env(
        AGENTSMS_DATABASE_URL=database_url,
        AGENTSMS_BOOTSTRAP_API_KEY=API_KEY,
        AGENTSMS_ALLOW_INSECURE_URLS="1",
        AGENTSMS_DEFAULT_RATE_LIMIT_PER_SECOND="1000000",
        AGENTSMS_LOG_FORMAT="json",
        AGENTSMS_LOG_LEVEL="INFO",
        **dict(setting.split("=", 1) for setting in args.server_env),
    )
    serve_args = [*AGENTSMS, "serve", "--host", "127.0.0.1", "--port", str(port)]
    serve_args += ["--no-access-log", *args.serve_args.split()]
    workers: list[Process] = []
    if args.backend == "postgres":
        Process([*AGENTSMS, "migrate"], env=env, log_path=workdir / "migrate.log", cwd=workdir)
        _wait_for_revision(database_url)
        serve_args.append("--no-worker")
    api = Server(serve_args, port=port, env=env, log_path=workdir / "serve.log", cwd=workdir)
    api.wait_ready(120)
    if args.backend == "postgres":
        workers = [
            Process(
                [*AGENTSMS, "worker", *args.worker_args.split()],
                env=env,
                log_path=workdir / f"worker{i}.log",
                cwd=workdir,
            )
            for i in range(args.workers)
        ]
    return Deployment(args.backend, api, workers, database_url)


def _wait_for_revision(database_url: str, timeout: float = 120.0) -> None:
    async def revision() -> str | None:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return await conn.fetchval("SELECT version_num FROM alembic_version")  # type: ignore[no-any-return]
        except asyncpg.UndefinedTableError:
            return None
        finally:
            await conn.close()

    from agentsms.store.migrate import head_revision

    deadline = time.monotonic() + timeout
    while asyncio.run(revision()) != head_revision():
        if time.monotonic() > deadline:
            raise RuntimeError("migrations did not finish")
        time.sleep(0.5)


class Backlog:
    """Due jobs (queued or running, run_at reached), read straight from the database."""

    QUERY = "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') AND run_at <= {now}"

    def __init__(self, database_url: str) -> None:
        self.url = database_url

    async def count(self) -> int:
        query = self.QUERY.format(now=time.time())
        if self.url.startswith("sqlite"):
            path = self.url.split(":///", 1)[1]
            return await asyncio.to_thread(_sqlite_count, path, query)
        conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return int(await conn.fetchval(query))
        finally:
            await conn.close()


def _sqlite_count(path: str, query: str) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute(query).fetchone()[0])


async def loop_lag_buckets(client: httpx.AsyncClient) -> dict[float, float]:
    """The API's loop-lag histogram: cumulative count per upper bound."""
    text = (await client.get("/metrics")).text
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(LOOP_LAG_METRIC):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def worst_lag(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the highest bucket that gained observations (inf: over the top)."""
    bounds = sorted(after)
    worst = 0.0
    previous_gain = 0.0
    for bound in bounds:
        gain = after.get(bound, 0) - before.get(bound, 0)
        if gain > previous_gain:
            worst = bound
        previous_gain = gain
    return worst


# ------------------------------------------------------------------ the load


@dataclass
class Intake:
    accepted_at: dict[str, float] = field(default_factory=dict)
    batch_accepted_at: dict[str, float] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (second, ms)
    accepted: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


async def prepare(client: httpx.AsyncClient, receiver_port: int) -> tuple[list[str], str]:
    numbers = []
    for i in range(NUMBERS):
        answer = await client.post(
            "/v1/numbers",
            json={
                "number": f"+1628555{i:04d}",
                "provider": "simulator",
                "throughput_mps": NUMBER_MPS,
            },
        )
        answer.raise_for_status()
        numbers.append(answer.json()["number"])
    persona = await client.post(
        "/v1/personas",
        json={
            "name": "Appointment reminder (soak)",
            "agent": {"kind": "flow", "pathway": load_demo_pathway()},
            "publish": True,
        },
    )
    persona.raise_for_status()
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": f"http://127.0.0.1:{receiver_port}/hook", "event_types": SUBSCRIBED},
    )
    endpoint.raise_for_status()
    return numbers, str(persona.json()["id"])


def recipient(n: int) -> str:
    return f"+1415555{2000 + n % 8000:04d}" if n < 8000 else f"+1628555{1000 + n % 8000:04d}"


async def run_load(
    args: argparse.Namespace,
    deployment: Deployment,
    receiver: Receiver,
    client: httpx.AsyncClient,
    persona_id: str,
) -> tuple[Intake, list[dict[str, Any]], float]:
    intake = Intake()
    pool = Pool(deployment.api.port)
    auth = f"Authorization: Bearer {API_KEY}\r\n"
    backlog = Backlog(deployment.database_url)
    tasks: set[asyncio.Task[None]] = set()
    sequence = iter(range(10**9))

    async def single(n: int, due: float) -> None:
        body = await single_send(client, n, args.conversation_every, persona_id)
        try:
            status, answer = await pool.post("/v1/messages", json.dumps(body).encode(), auth)
        except (OSError, asyncio.IncompleteReadError) as error:
            intake.errors[type(error).__name__] += 1
            return
        now = time.time()
        intake.latencies.append((now, (time.monotonic() - due) * 1000))
        if status == 202:
            intake.accepted[int(now)] += 1
            intake.accepted_at[json.loads(answer)["id"]] = now
        else:
            intake.errors[str(status)] += 1

    async def batch(due: float) -> None:
        first = random.randrange(10**6)
        recipients = [{"to": recipient(first + i)} for i in range(args.batch_size)]
        body = json.dumps({"body": "Your order shipped", "recipients": recipients}).encode()
        status, answer = await pool.post("/v1/batches", body, auth)
        now = time.time()
        if status == 202:
            intake.accepted[int(now)] += args.batch_size
            intake.batch_accepted_at[json.loads(answer)["id"]] = now
        else:
            intake.errors[f"batch {status}"] += 1

    def launch(coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    minutes: list[dict[str, Any]] = []
    start = time.monotonic()
    started_wall = time.time()
    lag_before = await loop_lag_buckets(client)
    n = 0
    next_batch = start
    for minute in range(args.minutes):
        minute_end = start + 60 * (minute + 1)
        while (now := time.monotonic()) < minute_end:
            due = start + n / args.rate
            if due > now:
                await asyncio.sleep(min(due - now, minute_end - now))
                continue
            launch(single(next(sequence), due))
            n += 1
            if now >= next_batch:
                launch(batch(now))
                next_batch += args.batch_every
        lag_after = await loop_lag_buckets(client)
        wall_from = started_wall + 60 * minute
        window = range(int(wall_from), int(wall_from + 60))
        in_minute = [ms for second, ms in intake.latencies if int(second) in window]
        minutes.append(
            {
                "minute": minute + 1,
                "accepted/s": sum(intake.accepted[s] for s in window) / 60,
                "completed/s": sum(1 for t in receiver.final_at.values() if int(t) in window) / 60,
                "backlog": await backlog.count(),
                "p50 ms": percentile(in_minute, 50) if in_minute else float("nan"),
                "p99 ms": percentile(in_minute, 99) if in_minute else float("nan"),
                "webhooks/s": sum(receiver.per_second[s] for s in window) / 60,
                "RSS MB": deployment.rss_mb(),
                "loop lag ms": worst_lag(lag_before, lag_after) * 1000,
                "errors": sum(intake.errors.values()),
            }
        )
        lag_before = lag_after
        print_row(minutes[-1])
    await asyncio.gather(*tasks, return_exceptions=True)
    offered = n / (time.monotonic() - start) + args.batch_size / args.batch_every
    return intake, minutes, offered


COLUMNS = [
    "minute",
    "accepted/s",
    "completed/s",
    "backlog",
    "p50 ms",
    "p99 ms",
    "webhooks/s",
    "RSS MB",
    "loop lag ms",
    "errors",
]


def print_row(row: dict[str, Any]) -> None:
    cells = []
    for column in COLUMNS:
        value = row[column]
        cells.append(f"{value:>11.1f}" if isinstance(value, float) else f"{value:>11}")
    print(" ".join(cells), flush=True)


async def soak(args: argparse.Namespace, workdir: Path) -> int:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    receiver_port = server.sockets[0].getsockname()[1]
    deployment = await asyncio.to_thread(start, args, workdir)
    try:
        async with httpx.AsyncClient(
            base_url=deployment.api.base_url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=60,
        ) as client:
            _, persona_id = await prepare(client, receiver_port)
            print(
                f"backend {args.backend}: {args.rate} single sends/s + {args.batch_size} "
                f"recipients every {args.batch_every:g} s, 1 send in {args.conversation_every} "
                f"opens a conversation; {args.minutes} min; processes {deployment.pids()}"
            )
            print(" ".join(f"{c:>11}" for c in COLUMNS))
            cpu_before = await deployment.cpu_ticks()
            intake, minutes, offered = await run_load(
                args, deployment, receiver, client, persona_id
            )
            load_end = time.time()
            backlog = Backlog(deployment.database_url)
            deadline = time.monotonic() + args.drain
            while time.monotonic() < deadline:
                # Every accepted message final (a count would include the conversations'
                # replies, and jobs due later, a paced backlog given back, are not counted).
                batch_final = len(receiver.batch_of)
                if (
                    batch_final >= args.batch_size * len(intake.batch_accepted_at)
                    and all(m in receiver.final_at for m in intake.accepted_at)
                    and await backlog.count() == 0
                ):
                    break
                await asyncio.sleep(1)
            drained_in = time.time() - load_end
            server_cpu = cpu_seconds(cpu_before, await deployment.cpu_ticks())
            backlog_at_end = minutes[-1]["backlog"] if minutes else 0
    finally:
        await asyncio.to_thread(deployment.stop)
        server.close()
    print_capacity(server_cpu, len(receiver.final_at))
    return verdict(args, intake, receiver, minutes, offered, backlog_at_end, drained_in, workdir)


def print_capacity(server_cpu: dict[str, float], final: int) -> None:
    """The server's CPU per message that became final, load and drain together, by role, and
    the rate that work would sustain with every core of this machine to itself: the measure
    of the target rate that a machine shared with the load generator and the receiver can
    show."""
    if not final:
        return
    total = sum(server_cpu.values())
    per_message_ms = total / final * 1000
    cores = os.cpu_count() or 1
    by_cost = sorted(server_cpu.items(), key=lambda item: -item[1])
    roles = ", ".join(f"{role} {seconds / final * 1000:.2f}" for role, seconds in by_cost)
    print(
        f"server CPU: {total:.1f} s for {final} final messages = {per_message_ms:.2f} ms a "
        f"message ({roles}); {cores} cores to itself would sustain "
        f"{cores / per_message_ms * 1000:.0f} msg/s"
    )


def verdict(
    args: argparse.Namespace,
    intake: Intake,
    receiver: Receiver,
    minutes: list[dict[str, Any]],
    offered: float,
    backlog_at_end: int,
    drained_in: float,
    workdir: Path,
) -> int:
    latencies = [ms for _, ms in intake.latencies]
    p99 = percentile(latencies, 99) if latencies else float("nan")
    late, missing = 0, 0
    for message_id, accepted in intake.accepted_at.items():
        final = receiver.final_at.get(message_id)
        if final is None:
            missing += 1
        elif final - accepted > 30:
            late += 1
    for message_id, batch_id in receiver.batch_of.items():
        batch_accepted = intake.batch_accepted_at.get(batch_id)
        if batch_accepted is not None and receiver.final_at[message_id] - batch_accepted > 30:
            late += 1
    batch_final = len(receiver.batch_of)
    batch_missing = args.batch_size * len(intake.batch_accepted_at) - batch_final
    steady = [row["completed/s"] for row in minutes[1:] or minutes] or [0.0]
    completed = sorted(steady)[len(steady) // 2]
    max_lag = max((row["loop lag ms"] for row in minutes), default=0.0)
    rss = [row["RSS MB"] for row in minutes[2:]]
    rss_flat = not rss or (max(rss) <= rss[0] * 1.15 and min(rss) >= rss[0] * 0.85)
    logs = [path.read_text(errors="replace") for path in workdir.glob("*.log")]
    pacing_late = sum(text.count("pacing_late") for text in logs)
    stalls = logged_stalls(logs)
    worst = [seconds for seconds, _ in stalls]
    busy = sum(1 for seconds, cpu in stalls if cpu >= seconds / 2)
    checks = {
        "backlog at the end under 2 s of work": backlog_at_end <= 2 * max(completed, 1),
        "intake p99 under 250 ms": p99 < 250,
        "every message final within 30 s of its 202": late == 0
        and missing == 0
        and batch_missing <= 0,
        "no webhook delivered twice": receiver.duplicates() == 0,
        "no event-loop stall over 200 ms": max_lag <= 200 and not stalls,
        "RSS within +-15 % after minute 2": rss_flat,
        "no intake errors": not intake.errors,
    }
    print()
    print(
        f"messages: {len(intake.accepted_at)} single + {batch_final} of "
        f"{args.batch_size * len(intake.batch_accepted_at)} batch final; {missing} single and "
        f"{max(batch_missing, 0)} batch never final; {late} final later than 30 s; drained "
        f"{drained_in:.0f} s after the load; intake errors {dict(intake.errors)}; webhooks "
        f"{sum(receiver.ids.values())} ({receiver.duplicates()} duplicates), by type "
        f"{dict(receiver.types)}; pacing_late log lines {pacing_late}; event_loop.stall log "
        f"lines {len(stalls)} (any process), worst {max(worst, default=0):.2f} s, {busy} of "
        "them with the process busy for half the stall or more (the rest waited for a core)"
    )
    for name, passed in checks.items():
        print(f"  {'PASS' if passed else 'FAIL'}  {name}")
    print(
        f"sustained {args.backend}: {completed:.0f}/s completed of {offered:.0f}/s offered, "
        f"backlog {backlog_at_end}, p99 {p99:.0f} ms, max loop lag {max_lag:.0f} ms"
    )
    return 0 if all(checks.values()) else 1


def logged_stalls(logs: list[str]) -> list[tuple[float, float]]:
    """The seconds and CPU seconds of every ``event_loop.stall`` the server processes logged
    (API and worker alike: the histogram in ``/metrics`` is the API process's only)."""
    found = []
    for text in logs:
        for line in text.splitlines():
            if '"event_loop.stall"' in line:
                try:
                    entry = json.loads(line)
                    found.append((float(entry["seconds"]), float(entry.get("cpu_seconds", 0))))
                except (ValueError, KeyError):
                    continue
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=float, default=200, help="single sends a second")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-every", type=float, default=30.0)
    parser.add_argument("--conversation-every", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="postgres: worker processes")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait after")
    parser.add_argument("--serve-args", default="", help="extra `agentsms serve` arguments")
    parser.add_argument(
        "--worker-args",
        default="",
        help='postgres: extra `agentsms worker` arguments, e.g. "--concurrency 4"',
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the server processes (repeatable), e.g. "
        "AGENTSMS_MEMORY_TRACE_DIR=/tmp/memtrace (tracemalloc reports, see agentsms.memtrace)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("AGENTSMS_BENCH_POSTGRES_URL", DEFAULT_PG_URL),
        help="a database URL on the server to use (a database <its name>_sustained is made)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args()
    with temp_dir("agentsms-sustained-") as workdir:
        try:
            code = asyncio.run(soak(args, workdir))
        finally:
            if args.keep:  # also when the run failed: its logs say why
                kept = Path.cwd() / "artifacts" / f"sustained-{int(time.time())}"
                kept.parent.mkdir(exist_ok=True)
                os.rename(workdir, kept)
                workdir.mkdir()
                print(f"logs kept in {kept}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
