"""Where the dispatch worker's time goes: worker CPU per message under the soak's mix.

In one process (so nothing else on a shared machine is counted): the app on a fresh
SQLite file (or, with ``--postgres-url``, a fresh PostgreSQL database, whose server
processes' CPU is then counted too), the numbers, persona and webhook endpoint of
``bench_sustained`` (its receiver runs in a child process), then ``--sends`` single sends (one in
``--conversation-every`` opening a conversation whose person replies 4 s later) and one
``--batch-size`` batch are accepted through the API with no worker running. Then the
worker runs until every message is final and no job is due, and the script prints the
worker's CPU seconds per 1,000 messages (``time.process_time``: robust to a busy machine,
unlike wall time) and, with ``--profile``, the functions with the most cumulative time.

With ``--rate R`` the sends come due as in the soak instead of all at once: the accepted
``message.send`` jobs are spread (in the file, before the worker starts) at ``R`` a second
from the worker's start, the batch's half-way through, and the simulator reports after its
default delay, so that the worker claims a trickle of small groups, as under open-loop
load, rather than draining one backlog in big ones.

    .venv/bin/python benchmarks/profile_dispatch.py [--sends 3000] [--profile]

Run it against another checkout with ``PYTHONPATH=<checkout>/src`` to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CLOCK_TICKS, process_ticks, recreate_postgres_database, temp_dir
from bench_sustained import (
    database_backends,
    in_process_client,
    in_process_settings,
    prepare,
    recipient,
    single_send,
    webhook_receiver,
)

from agentsms.app import create_app
from agentsms.runtime import build_worker
from agentsms.store import migrate

OPEN = ("queued", "scheduled", "sending", "accepted", "sent")


async def _accept(client: httpx.AsyncClient, args: argparse.Namespace, persona: str) -> int:
    for n in range(args.sends):
        body = await single_send(client, n, args.conversation_every, persona)
        (await client.post("/v1/messages", json=body)).raise_for_status()
    recipients = [{"to": recipient(10_000 + i)} for i in range(args.batch_size)]
    batch = await client.post("/v1/batches", json={"body": "Shipped", "recipients": recipients})
    batch.raise_for_status()
    return args.sends + args.batch_size


_SINGLE_SENDS = (
    "SELECT jobs.id FROM jobs JOIN messages ON messages.id = jobs.ref"
    " WHERE jobs.kind = 'message.send' AND messages.batch_id IS NULL ORDER BY jobs.id"
)
_BATCH_SENDS = (
    "UPDATE jobs SET run_at = {mark} WHERE kind = 'message.send' AND ref IN"
    " (SELECT id FROM messages WHERE batch_id IS NOT NULL)"
)


async def _spread_postgres(url: str, args: argparse.Namespace, start: float) -> None:
    """``_spread`` on a PostgreSQL database."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        ids = [row[0] for row in await conn.fetch(_SINGLE_SENDS)]
        await conn.executemany(
            "UPDATE jobs SET run_at = $1 WHERE id = $2",
            [(start + i / args.rate, job_id) for i, job_id in enumerate(ids)],
        )
        await conn.execute(_BATCH_SENDS.format(mark="$1"), start + len(ids) / args.rate / 2)
    finally:
        await conn.close()


async def _settled_postgres(url: str) -> tuple[int, int]:
    """``_settled`` on a PostgreSQL database."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        open_messages = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE status = ANY($1::text[])", list(OPEN)
        )
        due = await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') AND run_at <= $1",
            time.time() + 10,
        )
    finally:
        await conn.close()
    return int(open_messages), int(due)


def _spread(path: Path, args: argparse.Namespace, start: float) -> None:
    """The single sends' jobs due at ``args.rate`` a second from ``start``, in the order
    they were accepted, and the batch's all at the moment half of them are."""
    with sqlite3.connect(path) as conn:
        ids = [row[0] for row in conn.execute(_SINGLE_SENDS)]
        conn.executemany(
            "UPDATE jobs SET run_at = ? WHERE id = ?",
            [(start + i / args.rate, job_id) for i, job_id in enumerate(ids)],
        )
        conn.execute(_BATCH_SENDS.format(mark="?"), (start + len(ids) / args.rate / 2,))


def _settled(path: Path) -> tuple[int, int]:
    """(messages not final, jobs due within 10 s) read straight from the file."""
    with sqlite3.connect(path) as conn:
        open_messages = conn.execute(
            f"SELECT count(*) FROM messages WHERE status IN ({','.join('?' * len(OPEN))})", OPEN
        ).fetchone()[0]
        due = conn.execute(
            "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') AND run_at <= ?",
            (time.time() + 10,),
        ).fetchone()[0]
    return int(open_messages), int(due)


async def run(args: argparse.Namespace, workdir: Path) -> None:
    path = workdir / "agentsms.db"
    database_url = f"sqlite+aiosqlite:///{path}"
    if args.postgres_url:
        # Named after the given database, so that runs given different ones never collide.
        database_url = f"{args.postgres_url}_profile"
        await recreate_postgres_database(database_url)
        await migrate.upgrade_async(database_url)

    async def settled() -> tuple[int, int]:
        if args.postgres_url:
            return await _settled_postgres(database_url)
        return _settled(path)

    # Reports at once when draining a backlog; after the default delay in a trickle.
    settings = in_process_settings(
        database_url, **({} if args.rate else {"simulator_delivery_delay_seconds": 0.0})
    )
    app = create_app(settings)
    async with webhook_receiver() as port, app.router.lifespan_context(app):
        state = app.state.agentsms
        async with in_process_client(app) as client:
            _, persona = await prepare(client, port)
            if args.no_webhooks:
                endpoints = (await client.get("/v1/webhook-endpoints")).json()["data"]
                for endpoint in endpoints:
                    gone = await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}")
                    gone.raise_for_status()
            messages = await _accept(client, args, persona)
        worker = build_worker(
            state.db, state.providers, settings, args.concurrency, outbox=state.outbox
        )
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        spy = _start_spy(workdir / "spy.txt") if args.spy else None
        if args.rate and args.postgres_url:
            await _spread_postgres(database_url, args, time.time() + 0.5)
        elif args.rate:
            _spread(path, args, time.time() + 0.5)
        backends = await _backend_ticks(database_url) if args.postgres_url else {}
        cpu, wall = time.process_time(), time.monotonic()
        if profiler is not None:
            profiler.enable()
        task = asyncio.create_task(worker.run())
        calm = 0
        while calm < 3 and time.monotonic() - wall < args.timeout:
            await asyncio.sleep(0.5)
            calm = calm + 1 if await settled() == (0, 0) else 0
        worker.stop()
        await task
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        server = 0.0
        if args.postgres_url:
            after = await _backend_ticks(database_url)
            server = sum(t - backends.get(pid, 0) for pid, t in after.items()) / CLOCK_TICKS
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
    left = await settled()
    print(
        f"worker: {messages} messages, {cpu:.2f} CPU s ({cpu / messages * 1000:.2f} per 1,000),"
        f" {wall:.1f} s wall, left (open messages, due jobs) {left}"
    )
    if args.postgres_url:
        print(
            f"postgres: {server:.2f} CPU s ({server / messages * 1000:.2f} per 1,000) in the"
            " server processes of the worker's connections"
        )
    else:
        with sqlite3.connect(path) as conn:
            attempts = conn.execute(
                "SELECT status, coalesce(error, ''), count(*) FROM webhook_deliveries GROUP BY 1, 2"
            ).fetchall()
        print("webhook attempts (status, error, count):", attempts)
    if args.spy:
        print_spy(workdir / "spy.txt", cpu, messages, args.top)
        if args.keep_spy is not None:
            args.keep_spy.write_bytes((workdir / "spy.txt").read_bytes())
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        print_areas(stats, cpu, messages)
        stats.sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())


async def _backend_ticks(database_url: str) -> dict[int, int]:
    """CPU clock ticks so far of each PostgreSQL server process serving the database (a
    connection opened later counts from its start; one closed meanwhile is lost)."""
    pids = await database_backends(database_url)
    return {pid: ticks for pid in pids if (ticks := process_ticks(pid)) is not None}


def _start_spy(out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling this process (CPU only, no idle frames) into ``out``, collapsed."""
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "-p", str(os.getpid()), "-r", "250", "-f", "raw"]
    process = subprocess.Popen([*command, "-o", str(out)], stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the worker starts
    return process


def print_spy(path: Path, cpu: float, messages: int, top: int) -> None:
    """CPU samples by area (own, the sampled frame's) and by agentsms function (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if "(" in f]
        if not frames or "threading.py" in frames[0]:
            continue  # helper threads (mostly idle waits py-spy counts): the loop only
        total += count
        leaf = frames[-1]
        own[area(leaf.rsplit("(", 1)[1].rsplit(":", 1)[0])] += count
        seen = set()
        for frame in frames:
            name, _, where = frame.partition(" (")
            if "agentsms/" in where:
                key = f"{area(where.rsplit(':', 1)[0])}.{name}"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
    per = cpu / messages * 1e6
    print(f"py-spy: {total} CPU samples of the event loop's thread; {per:.0f} us CPU per message")
    print("own CPU by area (share; us per message):")
    for name, count in own.most_common(top):
        print(f"  {count / total:6.1%}  {count / total * per:7.0f}  {name}")
    print("inclusive CPU by agentsms function (share; us per message):")
    for name, count in inclusive.most_common(top):
        print(f"  {count / total:6.1%}  {count / total * per:7.0f}  {name}")


def area(filename: str) -> str:
    """The area a profiled function belongs to: an agentsms module, or a package."""
    path = filename.replace("\\", "/")
    if path.startswith(("~", "<")):
        return "builtins (C)"
    if "agentsms/" in path:
        module = path.rsplit("agentsms/", 1)[1].removesuffix(".py")
        return "agentsms." + module.replace("/", ".")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith("/"):
        path = "/".join(path.split("/")[-2:])  # the standard library's package/module
    return path.split("/", 1)[0].removesuffix(".py")


def print_areas(stats: pstats.Stats, cpu: float, messages: int, top: int = 25) -> None:
    """Own (not cumulative) CPU per area, as a share of the total and per message."""
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, _), (_, _, own, _, _) in raw.items():
        name = area(filename)
        totals[name] = totals.get(name, 0.0) + own
    whole = sum(totals.values()) or 1.0
    print(f"own CPU by area (of {whole:.2f} s profiled; per message in microseconds):")
    for name, own in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {own / whole:6.1%}  {own / messages * 1e6:8.0f} us  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--conversation-every", type=int, default=40)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="sends due at this rate a second (0: all now)"
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=2, help="worker loops (serve's 2)")
    parser.add_argument(
        "--spy", action="store_true", help="sample with py-spy (pip install py-spy) instead"
    )
    parser.add_argument(
        "--no-webhooks", action="store_true", help="no endpoint subscribed: dispatch's own cost"
    )
    parser.add_argument("--keep-spy", type=Path, default=None, help="copy py-spy's raw output")
    parser.add_argument(
        "--postgres-url",
        default="",
        help="run on PostgreSQL: a database URL on the server (<its name>_profile is made)",
    )
    args = parser.parse_args()
    with temp_dir("agentsms-profile-") as workdir:
        asyncio.run(run(args, workdir))


if __name__ == "__main__":
    main()
