"""CPU time per accepted message inside one process: group-commit single sends
(``Outbox.send_many``, 64 per transaction, as ``POST /v1/messages`` groups them) and
1,000-recipient batches (``Outbox.send_batch``), on a fresh SQLite file.

CPU time (``time.process_time``) moves far less than throughput on a shared, noisy
machine; compare two versions by running this alternately, several times each.

    .venv/bin/python benchmarks/bench_intake_cpu.py single 40
    .venv/bin/python benchmarks/bench_intake_cpu.py batch 10
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

from agentsms.config import Settings
from agentsms.core import projects
from agentsms.core.numbers import add_simulator_number
from agentsms.core.sending import BatchSpec, OutboundSpec, Outbox, SendPolicy
from agentsms.store import migrate
from agentsms.store.db import Database

GROUP = 64
BATCH = 1000


def recipient(i: int) -> str:
    return f"+1415{2_000_000 + i}"


async def measure(kind: str, rounds: int) -> None:
    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/intake.db"
    await migrate.upgrade_async(url)
    db = Database(url)
    outbox = Outbox(SendPolicy.from_settings(Settings(database_url=url)))
    async with db.write() as conn:
        project, _ = await projects.create_project(conn, "bench")
        await add_simulator_number(conn, project.id, "+14155550100")
    sent = 0

    def specs(count: int) -> list[OutboundSpec]:
        return [OutboundSpec(to=recipient(sent + i), body="hello there") for i in range(count)]

    async with db.write() as conn:  # warm-up
        await outbox.send_many(conn, project.id, specs(GROUP), project_settings={})
    sent += GROUP
    started, count = time.process_time(), 0
    for _ in range(rounds):
        async with db.write() as conn:
            if kind == "single":
                await outbox.send_many(conn, project.id, specs(GROUP), project_settings={})
                size = GROUP
            else:
                batch = BatchSpec(items=specs(BATCH))
                await outbox.send_batch(conn, project.id, batch, project_settings={})
                size = BATCH
        sent += size
        count += size
    cpu = time.process_time() - started
    await db.dispose()
    print(f"{kind}: {count} messages, {cpu / count * 1e6:.1f} us CPU per message")


if __name__ == "__main__":
    asyncio.run(measure(sys.argv[1], int(sys.argv[2])))
