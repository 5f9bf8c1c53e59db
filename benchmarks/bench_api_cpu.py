"""The API process's CPU per single send at real traffic: open loop at a rate, or closed loop.

Issue 18 reads the 500 msg/s target as CPU per message on this 2-core machine. A send
arriving alone costs the API far more than one among many (a transaction's fixed cost is
paid by every group, however small), so this measures the API process alone at the rate
real traffic has: ``--rate`` single sends a second, each sent at its moment (an open loop,
like ``bench_sustained.py``), or ``--concurrency`` connections sending back to back (the
high-concurrency path of ``bench_single_send.py``). The deployment is
``bench_sustained.py``'s (the default ``agentsms serve``: an API process and a worker
process on SQLite, the numbers, persona and webhook endpoint of the soak;
``--serve-args --no-worker`` for the API alone). The API process's CPU (user + system, from
``/proc``) over the sends of each round, divided by their number:

    .venv/bin/python benchmarks/bench_api_cpu.py --rate 200 --seconds 15 --rounds 3
    .venv/bin/python benchmarks/bench_api_cpu.py --concurrency 32 --serve-args --no-worker

Compare checkouts interleaved (``PYTHONPATH=<checkout>/src``): on a machine shared with
other work, a busy machine makes requests queue up and share transactions, which lowers
the figure; ``--nice -10`` (root) lets the measured processes run when they are ready.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_sustained as soak
from _common import (
    CLOCK_TICKS,
    Table,
    code_version,
    machine_note,
    median,
    process_times,
    temp_dir,
)


def api_pid(deployment: soak.Deployment) -> int:
    """The API process: ``serve`` itself, or its ``api`` child when it supervises."""
    children = [pid for pid, role in deployment.child_roles().items() if role == "api"]
    return children[0] if children else deployment.api.pid


def ticks(pid: int) -> tuple[int, int]:
    """User and system clock ticks used so far by ``pid`` (the API process: it must run)."""
    times = process_times(pid)
    if times is None:
        raise RuntimeError(f"the API process {pid} is gone")
    return times


async def run(args: argparse.Namespace, workdir: Path) -> Table:
    settings = argparse.Namespace(
        backend=args.backend,
        server_env=args.server_env,
        serve_args=args.serve_args,
        worker_args="",
        workers=0,
        postgres_url=args.postgres_url,
    )
    receiver = soak.Receiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    deployment = await asyncio.to_thread(soak.start, settings, workdir)
    mode = f"{args.concurrency} connections" if args.concurrency else f"{args.rate:g}/s open loop"
    table = Table(
        f"API CPU per single send, {mode}, serve {args.serve_args or '(default)'}; "
        f"{code_version()}; {machine_note()}",
        ["round", "sends", "CPU ms/send", "user", "system", "postgres", "p50 ms", "p99 ms"],
    )
    try:
        async with httpx.AsyncClient(
            base_url=deployment.api.base_url,
            headers={"Authorization": f"Bearer {soak.API_KEY}"},
            timeout=60,
        ) as client:
            await soak.prepare(client, server.sockets[0].getsockname()[1])
        api = api_pid(deployment)
        if args.nice:
            for pid in [os.getpid(), *deployment.pids()]:
                for thread in os.listdir(f"/proc/{pid}/task"):
                    os.setpriority(os.PRIO_PROCESS, int(thread), args.nice)
        pool = soak.Pool(deployment.api.port)
        auth = f"Authorization: Bearer {soak.API_KEY}\r\n"
        sequence = iter(range(10**9))
        latencies: list[float] = []

        async def send(due: float) -> None:
            n = next(sequence)
            body = json.dumps({"to": soak.recipient(n), "body": f"Reminder {n}: see you soon"})
            status, answer = await pool.post("/v1/messages", body.encode(), auth)
            if status != 202:
                raise RuntimeError(f"send refused: {status} {answer[:200]!r}")
            latencies.append((time.monotonic() - due) * 1000)

        await asyncio.gather(*(send(time.monotonic()) for _ in range(200)))  # warm-up
        rows: list[float] = []
        server_rows: list[float] = []
        for number in range(1, args.rounds + 1):
            latencies.clear()
            before = ticks(api)
            server_before = await server_ticks(deployment)
            start = time.monotonic()
            end = start + args.seconds
            if args.concurrency:

                async def back_to_back(until: float) -> None:
                    while time.monotonic() < until:
                        await send(time.monotonic())

                await asyncio.gather(*(back_to_back(end) for _ in range(args.concurrency)))
            else:
                tasks: set[asyncio.Task[None]] = set()
                sent = 0
                while (now := time.monotonic()) < end:
                    due = start + sent / args.rate
                    if due > now:
                        await asyncio.sleep(due - now)
                        continue
                    task = asyncio.create_task(send(due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    sent += 1
                await asyncio.gather(*tasks)
            after = ticks(api)
            server_after = await server_ticks(deployment)
            sends = len(latencies)
            user = (after[0] - before[0]) / CLOCK_TICKS * 1000 / sends
            system = (after[1] - before[1]) / CLOCK_TICKS * 1000 / sends
            used = sum(t - server_before.get(pid, 0) for pid, t in server_after.items())
            postgres = used / CLOCK_TICKS * 1000 / sends
            rows.append(user + system)
            server_rows.append(postgres)
            latencies.sort()
            table.add(
                number,
                sends,
                user + system,
                user,
                system,
                postgres if args.backend == "postgres" else "",
                latencies[len(latencies) // 2],
                latencies[int(len(latencies) * 0.99)],
            )
        table.add(
            "median",
            "",
            median(rows),
            "",
            "",
            median(server_rows) if args.backend == "postgres" else "",
            "",
            "",
        )
    finally:
        await asyncio.to_thread(deployment.stop)
        server.close()
    return table


async def server_ticks(deployment: soak.Deployment) -> dict[int, int]:
    """On PostgreSQL, the CPU clock ticks so far of each server process serving the
    database (the API's connections: this deployment runs no worker); else nothing."""
    if deployment.backend != "postgres":
        return {}
    pids = await soak.database_backends(deployment.database_url)
    return {pid: found for pid in pids if (found := soak.process_ticks(pid)) is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="single sends a second")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="closed loop with this many connections"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-args", default="", help="extra `agentsms serve` arguments")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the server processes (repeatable), e.g. "
        "AGENTSMS_INTAKE_GROUP_CONCURRENCY=1",
    )
    parser.add_argument("--nice", type=int, default=0, help="niceness of the measured processes")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: `serve --no-worker` and no worker process (the jobs wait), on a fresh "
        "database; the server processes' CPU per send is shown too",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("AGENTSMS_BENCH_POSTGRES_URL", soak.DEFAULT_PG_URL),
        help="a database URL on the server to use (a database <its name>_sustained is made)",
    )
    args = parser.parse_args()
    with temp_dir("agentsms-bench-apicpu-") as workdir:
        asyncio.run(run(args, workdir)).print()


if __name__ == "__main__":
    main()
