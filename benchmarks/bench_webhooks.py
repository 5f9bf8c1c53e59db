"""Worker CPU per delivered webhook, beside plain httpx posting the same signed bodies.

Each round, in this one process (a keep-alive receiver that answers 204 runs in a child
process): ``--events`` events are stored for a project with one subscribed endpoint
(a fresh SQLite file, ``emit_many`` as the dispatcher emits them), then a worker with only
the webhook delivery handler (``DeliveryHandler`` through its SSRF-guarded client, as
``agentsms worker`` runs it) claims and delivers them all; the figure is the process's
CPU time (``time.process_time``) from the first claim to the last delivery recorded,
divided by the deliveries: claims, rendering, signing, the POSTs, the delivery log and
finishing the jobs. The ceiling, in the same round: ``httpx.AsyncClient`` with keep-alive
(as many connections as the deliverer may use for one origin) posting the same bodies,
signed beforehand, to the same receiver, as many at a time. Rounds alternate, and the
summary gives medians and the ratio.

    .venv/bin/python benchmarks/bench_webhooks.py [--events 3000] [--rounds 5]

Run it against another checkout with ``PYTHONPATH=<checkout>/src`` to compare before and
after a change (interleave the runs; the header names the ``agentsms`` package measured).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, machine_note, median, temp_dir
from bench_sustained import serve_receiver, wait_for_port

import agentsms
from agentsms import logging as agentsms_logging
from agentsms.app import create_app
from agentsms.config import Settings
from agentsms.jobs.worker import Worker
from agentsms.store.tables import projects, webhook_events
from agentsms.webhooks import delivery, signing
from agentsms.webhooks.delivery import DeliveryHandler, encode
from agentsms.webhooks.events import DELIVER_JOB, Event, emit_many

API_KEY = "ask_bench_webhooks_benchmark_key_0123456789ab"
EVENT_TYPES = ["message.delivered"]


def _data(n: int) -> dict[str, Any]:
    """A ``message.delivered`` event's data, shaped like the dispatcher's."""
    return {
        "message": {
            "id": f"msg_01JBENCHWEBHOOKS{n:010d}",
            "object": "message",
            "direction": "outbound",
            "status": "delivered",
            "from": "+16285550001",
            "to": f"+1415555{n % 10000:04d}",
            "body": f"Reminder {n}: your appointment is on Tuesday at 10 AM. Reply C to confirm.",
            "segments": 1,
            "encoding": "GSM-7",
            "provider": "simulator",
            "batch_id": None,
            "conversation_id": None,
            "error_code": None,
            "created_at": "2026-12-06T12:00:00Z",
            "sent_at": "2026-12-06T12:00:01Z",
            "delivered_at": "2026-12-06T12:00:02Z",
            "metadata": {"n": n},
        }
    }


def _open(path: Path) -> tuple[int, int, int]:
    """(deliver jobs not done, succeeded attempts, failed attempts) read from the file."""
    with sqlite3.connect(path) as conn:
        left = conn.execute(
            "SELECT count(*) FROM jobs WHERE kind = ? AND status IN ('queued', 'running')",
            (DELIVER_JOB,),
        ).fetchone()[0]
        rows = dict(
            conn.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY 1").fetchall()
        )
    return int(left), int(rows.get("succeeded", 0)), int(rows.get("failed", 0))


async def deliverer_round(
    args: argparse.Namespace, workdir: Path, port: int, n: int
) -> tuple[float, list[tuple[bytes, dict[str, str]]]]:
    """CPU seconds per delivery of the worker's deliverer; also the bodies it sent, signed
    (for the ceiling)."""
    path = workdir / f"round-{n}.db"
    settings = Settings.model_validate(
        {
            "database_url": f"sqlite+aiosqlite:///{path}",
            "bootstrap_api_key": API_KEY,
            "allow_insecure_urls": True,
            "log_level": "WARNING",
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db = app.state.agentsms.db
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as client:
            answer = await client.post(
                "/v1/webhook-endpoints",
                json={"url": f"http://127.0.0.1:{port}/hook", "event_types": EVENT_TYPES},
            )
            answer.raise_for_status()
            secret = str(answer.json()["secret"])
        async with db.read() as conn:
            project_id = str((await conn.execute(select(projects.c.id))).scalar_one())
        for start in range(0, args.events, 500):
            async with db.write() as conn:
                await emit_many(
                    conn,
                    project_id,
                    [
                        Event("message.delivered", _data(i))
                        for i in range(start, min(args.events, start + 500))
                    ],
                )
        handler = DeliveryHandler(db, settings)
        worker = Worker(db, settings, {DELIVER_JOB: handler.handle}, concurrency=2)
        cpu = time.process_time()
        task = asyncio.create_task(worker.run())
        while True:
            await asyncio.sleep(0.2)
            left, succeeded, failed = _open(path)
            if left == 0:
                break
        await handler.idle()
        cpu = time.process_time() - cpu
        worker.stop()
        await task
        await handler.aclose()
        async with db.read() as conn:
            payloads = [row[0] for row in await conn.execute(select(webhook_events.c.payload))]
    if succeeded != args.events or failed:
        raise SystemExit(f"round {n}: {succeeded} delivered, {failed} failed of {args.events}")
    now = datetime.now(UTC)
    signed = []
    for payload in payloads:
        body = encode(payload)
        headers = {
            "content-type": "application/json",
            **signing.headers(str(payload["id"]), now, body, [secret]),
        }
        signed.append((body.encode(), headers))
    return cpu / args.events, signed


async def ceiling_round(port: int, signed: list[tuple[bytes, dict[str, str]]]) -> float:
    """CPU seconds per POST of plain httpx with keep-alive, ``PER_ORIGIN`` at a time."""
    at_once = delivery.PER_ORIGIN
    limits = httpx.Limits(max_connections=at_once, max_keepalive_connections=at_once)
    url = f"http://127.0.0.1:{port}/hook"
    gate = asyncio.Semaphore(at_once)
    async with httpx.AsyncClient(limits=limits, timeout=15.0) as client:

        async def post(body: bytes, headers: dict[str, str]) -> None:
            async with gate:
                response = await client.post(url, content=body, headers=headers)
                if response.status_code >= 300:
                    raise SystemExit(f"the receiver answered {response.status_code}")

        cpu = time.process_time()
        await asyncio.gather(*(post(body, headers) for body, headers in signed))
        return (time.process_time() - cpu) / len(signed)


async def run(args: argparse.Namespace, workdir: Path) -> None:
    agentsms_logging.configure("json", "WARNING")
    port = free_port()
    receiver = multiprocessing.get_context("spawn").Process(target=serve_receiver, args=(port,))
    receiver.start()
    ours: list[float] = []
    ceiling: list[float] = []
    try:
        await wait_for_port(port)
        print(machine_note())
        print(f"agentsms package measured: {Path(agentsms.__file__).parent}")
        print(f"{args.events} webhook events a round, one endpoint, {args.rounds} rounds")
        print(f"{'round':>5}  {'agentsms us/delivery':>21}  {'httpx us/POST':>14}  {'ratio':>6}")
        for n in range(1, args.rounds + 1):
            per_delivery, signed = await deliverer_round(args, workdir, port, n)
            per_post = await ceiling_round(port, signed)
            ours.append(per_delivery)
            ceiling.append(per_post)
            print(
                f"{n:>5}  {per_delivery * 1e6:>21,.0f}  {per_post * 1e6:>14,.0f}"
                f"  {per_delivery / per_post:>6.2f}",
                flush=True,
            )
    finally:
        receiver.terminate()
        receiver.join()
    ratios = [a / b for a, b in zip(ours, ceiling, strict=True)]
    print(
        f"median: agentsms {median(ours) * 1e6:,.0f} us CPU per delivered webhook, plain httpx"
        f" {median(ceiling) * 1e6:,.0f} us per POST, ratio {median(ratios):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with temp_dir("agentsms-bench-webhooks-") as workdir:
        asyncio.run(run(args, workdir))


if __name__ == "__main__":
    main()
