"""SQL statements and worker CPU per job of each kind under the soak's conversation mix.

In one process: the app on a fresh SQLite file (or ``--database-url``, a PostgreSQL
database that is dropped, created and migrated first), the numbers, persona and webhook endpoint
of ``bench_sustained`` (its receiver runs in a child process), ``--conversations``
sends that each open a conversation with the shipped appointment pathway whose simulated
person replies at once, ``--sends`` single sends and a batch of ``--batch``. Then a
worker runs every job, one handler call at a time (so that each call's CPU is its own),
until nothing is due, and the script prints per job kind: jobs, statements and CPU ms per
job, and per item (a report job's receipts; one for the other kinds). The kinds that
matter here: ``simulator.person_reply`` (the inbound reply), ``conversation.turn`` (the
agent's turn and its reply), ``message.send`` and ``simulator.report`` (delivery
receipts).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_turn_statements.py [--show KIND]

Run it with ``PYTHONPATH=<checkout>/src`` to compare checkouts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import greenlet
import httpx
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import recreate_postgres_database, temp_dir
from bench_sustained import in_process_client, in_process_settings, prepare, webhook_receiver

from agentsms.app import create_app
from agentsms.jobs.queue import Job
from agentsms.runtime import build_worker
from agentsms.store import migrate

PERSON_REPLY = "Yes, that works"
_kind: contextvars.ContextVar[str] = contextvars.ContextVar("kind", default="other")


async def _accept(client: httpx.AsyncClient, args: argparse.Namespace, persona: str) -> None:
    for n in range(args.conversations):
        person = f"+1415556{n:04d}"
        put = await client.put(
            f"/v1/simulator/people/{person}",
            json={"replies": [PERSON_REPLY], "delay_seconds": 0},
        )
        put.raise_for_status()
        body = {
            "to": person,
            "new_conversation": True,
            "conversation": {
                "persona_id": persona,
                "quiet_hours": False,
                "metadata": {"name": "Sam", "time": "on Tuesday at 10 AM"},
            },
        }
        (await client.post("/v1/messages", json=body)).raise_for_status()
    for n in range(args.sends):
        body = {"to": f"+1415555{2000 + n:04d}", "body": f"Reminder {n}: see you soon"}
        (await client.post("/v1/messages", json=body)).raise_for_status()
    if args.batch:
        recipients = [{"to": f"+1628555{1000 + i:04d}"} for i in range(args.batch)]
        batch = {"body": "Shipped", "recipients": recipients}
        (await client.post("/v1/batches", json=batch)).raise_for_status()


Handler = Callable[[Sequence[Job]], Awaitable[None]]


def _call_sites(depth: int = 4) -> list[str]:
    """The innermost agentsms frames (outside store/) of the statement running now: the
    greenlet SQLAlchemy runs it in, then the coroutines that awaited it."""
    sites = []
    current: Any = greenlet.getcurrent()
    while current is not None and len(sites) < depth:
        frame = sys._getframe(1) if current is greenlet.getcurrent() else current.gr_frame
        while frame is not None and len(sites) < depth:
            name = frame.f_code.co_filename
            if "/agentsms/" in name and "/store/" not in name:
                short = name.rsplit("/agentsms/", 1)[-1]
                sites.append(f"{short}:{frame.f_lineno} {frame.f_code.co_name}")
            frame = frame.f_back
        current = current.parent
    return sites


class Tally:
    """Statements, jobs and CPU by job kind, the handlers run one call at a time."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.jobs: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.texts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.lock = asyncio.Lock()
        self.trace: set[str] = set()

    def seen(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        kind = _kind.get()
        self.statements[kind] += 1
        where = ""
        if kind in self.trace:
            where = "\n        " + " < ".join(_call_sites())
        self.texts[kind][" ".join(statement.split())[:100] + where] += 1

    def wrap(self, kind: str, handler: Handler) -> Handler:
        async def counted(jobs: Sequence[Job]) -> None:
            async with self.lock:
                token = _kind.set(kind)
                start = time.process_time()
                try:
                    await handler(jobs)
                finally:
                    self.cpu[kind] += time.process_time() - start
                    self.jobs[kind] += len(jobs)
                    # A report job carries receipts: per receipt is what compares.
                    self.items[kind] += sum(len(j.payload.get("receipts") or [1]) for j in jobs)
                    _kind.reset(token)

        return counted


async def run(args: argparse.Namespace, workdir: Path) -> None:
    url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'agentsms.db'}"
    if not url.startswith("sqlite"):
        await recreate_postgres_database(url)
        await migrate.upgrade_async(url)
    settings = in_process_settings(url, simulator_delivery_delay_seconds=0.0)
    app = create_app(settings)
    tally = Tally()
    tally.trace = set(args.trace)
    async with webhook_receiver() as port, app.router.lifespan_context(app):
        state = app.state.agentsms
        async with in_process_client(app) as client:
            _, persona = await prepare(client, port)
            await _accept(client, args, persona)
        worker = build_worker(state.db, state.providers, settings, outbox=state.outbox)
        worker.handlers = {k: tally.wrap(k, h) for k, h in worker.handlers.items()}
        engines = [engine.sync_engine for engine in state.db.engines]
        for engine in engines:
            event.listen(engine, "before_cursor_execute", tally.seen)
        idle = 0
        deadline = time.monotonic() + args.timeout
        while idle < 20 and time.monotonic() < deadline:
            ran = await worker.run_once()
            idle = 0 if ran else idle + 1
            if not ran:
                await asyncio.sleep(0.05)
        for engine in engines:
            event.remove(engine, "before_cursor_execute", tally.seen)
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    print(
        f"{backend}: {args.conversations} conversations, {args.sends} single sends,"
        f" a batch of {args.batch}"
    )
    print(
        f"{'kind':<24}{'jobs':>6}{'items':>7}{'stmts/job':>11}{'CPU ms/job':>12}"
        f"{'stmts/item':>12}{'CPU ms/item':>13}"
    )
    for kind in sorted(tally.jobs):
        jobs, items = tally.jobs[kind], tally.items[kind]
        print(
            f"{kind:<24}{jobs:>6}{items:>7}{tally.statements[kind] / jobs:>11.2f}"
            f"{tally.cpu[kind] / jobs * 1000:>12.2f}{tally.statements[kind] / items:>12.2f}"
            f"{tally.cpu[kind] / items * 1000:>13.3f}"
        )
    print(f"{'outside any handler':<28}{'':>6}{tally.statements['other']:>11}")
    for kind in args.show + args.trace:
        jobs = tally.jobs[kind] or 1
        print(f"\n{kind}: statements per job")
        for statement, count in tally.texts[kind].most_common():
            print(f"{count / jobs:6.2f}  {statement}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100, help="recipients of one batch")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL URL (emptied)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--show", action="append", default=[], help="a kind's statements")
    parser.add_argument("--trace", action="append", default=[], help="... with call sites")
    args = parser.parse_args()
    with temp_dir() as workdir:
        asyncio.run(run(args, workdir))


if __name__ == "__main__":
    main()
