"""Durable dispatch with real processes: kill -9, SIGTERM, pacing and schedules across them.

Every test starts its own ``agentsms serve --no-worker`` and ``agentsms worker`` processes
on a fresh database (SQLite file; PostgreSQL when ``AGENTSMS_TEST_POSTGRES_URL`` is set),
with a 3 s job lease so that a killed worker's jobs come back quickly. What a test measured
is printed (run with ``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import os
import random
import re
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from tests.acceptance.processes import (
    FINAL,
    LEASE_SECONDS,
    Api,
    Cluster,
    Inspector,
    Proc,
    client,
    wait_for,
)
from tests.databases import create_postgres_database, drop_postgres_database

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(240)]

POSTGRES_URL = os.environ.get("AGENTSMS_TEST_POSTGRES_URL")
SENDER = "+14155550101"
Make = Callable[..., Awaitable[tuple[Cluster, Inspector]]]


@pytest.fixture
async def clusters(tmp_path: Path) -> AsyncIterator[Make]:
    """Makes clusters on a fresh database per backend; kills and drops everything after."""
    made: list[tuple[Cluster, Inspector, str | None]] = []

    async def make(backend: str, **options: Any) -> tuple[Cluster, Inspector]:
        pg_name: str | None = None
        if backend == "postgres":
            if not POSTGRES_URL:
                pytest.skip("AGENTSMS_TEST_POSTGRES_URL is not set")
            pg_name = f"agentsms_accept_{os.getpid()}_{len(made)}"
            url = await create_postgres_database(POSTGRES_URL, pg_name)
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / f'agentsms-{len(made)}.db'}"
        cluster = Cluster(tmp_path, url, **options)
        inspector = Inspector(url)
        made.append((cluster, inspector, pg_name))
        await asyncio.to_thread(cluster.migrate)
        return cluster, inspector

    yield make
    for cluster, inspector, pg_name in made:
        cluster.close()
        await inspector.close()
        if pg_name is not None and POSTGRES_URL:
            await drop_postgres_database(POSTGRES_URL, pg_name)


async def add_sender(http: httpx.AsyncClient, rate: float, number: str = SENDER) -> str:
    response = await http.post("/v1/numbers", json={"number": number, "throughput_mps": rate})
    assert response.status_code == 201, response.text
    return str(response.json()["number"])


def recipients(start: int, count: int) -> list[str]:
    """Distinct valid US numbers (New York, 212-xxx-xxxx)."""
    return [f"+1212{start + i:07d}" for i in range(count)]


async def final_count(db: Inspector, batch_id: str) -> int:
    marks = ", ".join(f"'{status}'" for status in FINAL)
    sql = f"SELECT count(*) FROM messages WHERE batch_id = :b AND status IN ({marks})"
    return int(await db.scalar(sql, b=batch_id))


async def send_count(db: Inspector) -> int:
    return int(await db.scalar("SELECT count(*) FROM simulator_sends"))


async def restart(proc: Proc) -> None:
    proc.start()
    await proc.wait_logged("worker.started")


def stalled_recovered(procs: list[Proc]) -> int:
    """Jobs the workers' recovery passes took back from dead leases."""
    return sum(
        int(found.group(1))
        for proc in procs
        for found in re.finditer(r"worker.recovered_stalled_jobs\s+count=(\d+)", proc.log_text())
    )


def recovered_in_flight(procs: list[Proc]) -> Counter[str]:
    """How the workers' logs say in-flight messages of dead workers were resolved."""
    outcomes: Counter[str] = Counter()
    for proc in procs:
        for line in proc.log_text().splitlines():
            if "dispatch.recovered_in_flight" in line:
                found = re.search(r"outcome=(\w+)", line)
                outcomes[found.group(1) if found else "?"] += 1
    return outcomes


async def assert_sent_exactly_once(
    http: httpx.AsyncClient, db: Inspector, message_ids: set[str]
) -> int:
    """The simulator texted each message's person once; returns de-duplicated repeats."""
    total, people, refs, repeats = (
        await db.rows(
            "SELECT count(*), count(DISTINCT to_number), count(DISTINCT reference),"
            " coalesce(sum(repeat_count), 0) FROM simulator_sends"
        )
    )[0]
    assert (total, people, refs) == (len(message_ids),) * 3
    logged = {row[0] for row in await db.rows("SELECT reference FROM simulator_sends")}
    assert logged == message_ids
    # A repeated reference is only acceptable for a message that was claimed again after
    # its worker died (attempts > 1): the carrier answered it with the first result.
    unexplained = await db.scalar(
        "SELECT count(*) FROM simulator_sends s JOIN messages m ON m.id = s.reference"
        " WHERE s.repeat_count > 0 AND m.attempts < 2"
    )
    assert unexplained == 0
    totals = (await http.get("/v1/simulator/log", params={"limit": 1})).json()["totals"]
    assert totals == {"sends": total, "recipients": people, "repeats": int(repeats)}
    return int(repeats)


async def assert_no_work_left(db: Inspector) -> None:
    """Every job finished: none running on a dead lease, none failed, none queued."""
    assert await db.rows("SELECT kind, status, count(*) FROM jobs GROUP BY kind, status") == []


BATCH = 2_000
# Slow enough that the batch is still going when the last kill lands (each round waits for a
# restarted process, seconds on a loaded machine), fast enough to end soon.
BATCH_RATE = 120.0


@pytest.mark.parametrize(
    ("backend", "workers", "plan"),
    [
        pytest.param("sqlite", 1, [[0]] * 5, id="sqlite-1-worker"),
        pytest.param("postgres", 2, [[0], [1], [0, 1], [1], [0, 1], [0]], id="postgres-2-workers"),
    ],
)
async def test_kill9_workers_during_a_batch_loses_and_duplicates_nothing(
    clusters: Make, backend: str, workers: int, plan: list[list[int]]
) -> None:
    """kill -9 workers again and again (each a random 0.3-0.8 s after it made progress)
    during a 2,000-message batch: every message ends delivered (0 lost), the carrier saw
    each person once (0 duplicated), and no job is left behind."""
    cluster, db = await clusters(backend)
    api = await cluster.start_api()
    rng = random.Random(20_240_601)
    started = time.monotonic()
    async with client(api) as http:
        sender = await add_sender(http, BATCH_RATE)
        people = recipients(2_000_000, BATCH)
        response = await http.post(
            "/v1/batches", json={"from": sender, "body": "crash drill", "recipients": people}
        )
        assert response.status_code == 202, response.text
        batch_id = response.json()["id"]
        message_ids = set(response.json()["message_ids"])
        assert len(message_ids) == BATCH

        procs = [await cluster.start_worker(f"worker{i}") for i in range(workers)]
        kills: list[tuple[int, int, int]] = []  # (sent, final, processes) at each kill
        for victims in plan:
            # Let the live workers make progress, then kill at a random moment mid-work.
            before = await send_count(db)

            async def progressed(before: int = before) -> bool:
                sent = await send_count(db)
                return sent > before or sent >= BATCH

            await wait_for(progressed, within=30, what="sends after a restart")
            if await send_count(db) >= BATCH:
                break  # a slow machine ran the plan past the batch; checked just below
            await asyncio.sleep(rng.uniform(0.3, 0.8))
            for victim in victims:
                procs[victim].kill()
            final_at_kill = await final_count(db, batch_id)
            kills.append((await send_count(db), final_at_kill, len(victims)))
            for victim in victims:
                await restart(procs[victim])

        # The carrier had not been handed the whole batch yet when these kills landed.
        mid_batch = [kill for kill in kills if kill[0] < BATCH]
        assert len(mid_batch) >= 4, f"the batch was sent before the kills: {kills}"

        async def all_final() -> bool:
            return await final_count(db, batch_id) == BATCH

        await wait_for(all_final, within=90, interval=0.25, what="every message final")
        elapsed = time.monotonic() - started

        batch = (await http.get(f"/v1/batches/{batch_id}")).json()
        assert batch["counts"] == {"delivered": BATCH}
        assert batch["completed"] == BATCH
        statuses = await db.rows(
            "SELECT status, count(*) FROM messages WHERE batch_id = :b GROUP BY status", b=batch_id
        )
        assert dict(statuses) == {"delivered": BATCH}  # 0 lost
        repeats = await assert_sent_exactly_once(http, db, message_ids)  # 0 duplicated
        await wait_for(_no_jobs(db), within=10, what="an empty jobs table")
        reclaimed = await db.scalar(
            "SELECT count(*) FROM messages WHERE batch_id = :b AND attempts > 1", b=batch_id
        )
    processes_killed = sum(kill[2] for kill in kills)
    print(
        f"\n[{backend}, {workers} worker(s)] {len(kills)} kill rounds, {processes_killed} "
        f"processes kill -9'd ({len(mid_batch)} rounds mid-batch; sent/final at each kill: "
        f"{[f'{k[0]}/{k[1]}' for k in kills]}); {BATCH} delivered in {elapsed:.1f}s; stalled jobs "
        f"recovered: {stalled_recovered(procs)}; messages re-claimed after a crash: "
        f"{reclaimed}; in-flight resolved by lookup: {dict(recovered_in_flight(procs))};"
        f" repeats de-duplicated by reference: {repeats}"
    )


def _no_jobs(db: Inspector) -> Callable[[], Awaitable[bool]]:
    async def empty() -> bool:
        return int(await db.scalar("SELECT count(*) FROM jobs")) == 0

    return empty


def _post(sender: str, to: str) -> dict[str, Any]:
    """The request for ``to`` and its Idempotency-Key (one key per recipient)."""
    return {
        "url": "/v1/messages",
        "json": {"from": sender, "to": to, "body": "still there?"},
        "headers": {"Idempotency-Key": f"stream-{to}"},
    }


async def _post_stream(
    api: Api,
    sender: str,
    numbers: itertools.count[int],
    accepted: dict[str, str],
    unanswered: list[str],
    unexpected: list[tuple[str, int, str]],
    stop: asyncio.Event,
    *,
    burst: int,
) -> None:
    """POST /v1/messages until ``stop``: one at a time (burst 1) or ``burst`` at once."""
    async with client(api) as http:

        async def post_one() -> None:
            to = f"+1212{next(numbers):07d}"
            try:
                response = await http.post(**_post(sender, to))
            except httpx.TransportError:
                unanswered.append(to)
                await asyncio.sleep(0.2)
                return
            if response.status_code == 202:
                accepted[to] = response.json()["id"]
            else:
                unexpected.append((to, response.status_code, response.text[:200]))

        while not stop.is_set():
            await asyncio.gather(*(post_one() for _ in range(burst)))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_api_kill9_during_a_stream_of_posts_keeps_every_202(
    clusters: Make, backend: str
) -> None:
    """kill -9 the API process under a stream of POSTs (two sequential clients and one
    sending bursts of 8), restart it on the same port: every 202 names a stored message that
    is delivered; what else is stored was a request left unanswered by the kill, and retrying
    each unanswered request with its Idempotency-Key yields exactly one message per request."""
    cluster, db = await clusters(backend)
    api = await cluster.start_api()
    worker = await cluster.start_worker()
    async with client(api) as http:
        sender = await add_sender(http, 1_000)
    accepted: dict[str, str] = {}
    unanswered: list[str] = []
    unexpected: list[tuple[str, int, str]] = []
    stop = asyncio.Event()
    numbers = itertools.count(3_000_000)
    streams = [
        asyncio.create_task(
            _post_stream(api, sender, numbers, accepted, unanswered, unexpected, stop, burst=n)
        )
        for n in (1, 1, 8)
    ]

    def accepted_at_least(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            assert not unexpected, unexpected[:5]
            return len(accepted) >= n

        return check

    await wait_for(accepted_at_least(150), within=30, what="202s before the kill")
    api.kill()
    at_kill = len(accepted)
    await asyncio.sleep(0.3)
    api.start()  # same port: the clients never change their address
    await api.wait_ready()
    await wait_for(accepted_at_least(at_kill + 150), within=30, what="202s after restart")
    stop.set()
    await asyncio.gather(*streams)
    assert not unexpected, unexpected[:5]
    assert unanswered, "the kill cut no request short"

    stored_ids = {
        to: message_id for message_id, to in await db.rows("SELECT id, to_number FROM messages")
    }
    # Every 202 names a stored message; anything else stored is a request whose answer
    # was lost in the kill (committed, unanswered).
    assert {to: stored_ids.get(to) for to in accepted} == accepted
    in_doubt = set(stored_ids) - set(accepted)
    assert in_doubt <= set(unanswered)
    # The client retries what went unanswered, with the same Idempotency-Key: a request
    # that had been stored is replayed (same message), the others are accepted now.
    replayed = 0
    async with client(api) as http:
        for to in unanswered:
            response = await http.post(**_post(sender, to))
            assert response.status_code == 202, response.text
            was_stored = to in in_doubt
            assert (response.headers.get("Idempotent-Replayed") == "true") == was_stored
            if was_stored:
                assert response.json()["id"] == stored_ids[to]
                replayed += 1
            accepted[to] = response.json()["id"]

    async def all_final() -> bool:
        marks = ", ".join(f"'{status}'" for status in FINAL)
        pending = await db.scalar(f"SELECT count(*) FROM messages WHERE status NOT IN ({marks})")
        return int(pending) == 0

    await wait_for(all_final, within=60, interval=0.25, what="every message final")
    rows = await db.rows("SELECT id, to_number, status FROM messages")
    assert len(rows) == len(accepted)  # one message per request, no more
    assert {to: (message_id, status) for message_id, to, status in rows} == {
        to: (message_id, "delivered") for to, message_id in accepted.items()
    }
    async with client(api) as http:
        semaphore = asyncio.Semaphore(8)

        async def check_api(to: str, message_id: str) -> None:
            async with semaphore:
                got = (await http.get(f"/v1/messages/{message_id}")).json()
            assert (got["id"], got["to"], got["status"]) == (message_id, to, "delivered")

        await asyncio.gather(*(check_api(to, message_id) for to, message_id in accepted.items()))
        await assert_sent_exactly_once(http, db, set(accepted.values()))
    assert worker.alive
    print(
        f"\n[api kill, {backend}] {len(accepted) - len(unanswered)} POSTs answered 202 "
        f"({at_kill} before the kill); {len(unanswered)} got no answer, of which "
        f"{len(in_doubt)} had been stored ({replayed} replayed on retry with their key); "
        f"all {len(accepted)} delivered, each sent once"
    )


@pytest.mark.parametrize("process", ["worker", "serve"])
async def test_sigterm_drains_claimed_work_and_exits(clusters: Make, process: str) -> None:
    """``agentsms worker`` (and ``serve`` with its in-process worker) drains on SIGTERM."""
    cluster, db = await clusters("sqlite")
    total = 80
    api = await cluster.start_api(with_worker=process == "serve")
    async with client(api) as http:
        sender = await add_sender(http, 20)
        response = await http.post(
            "/v1/batches",
            json={"from": sender, "body": "drain", "recipients": recipients(4_000_000, total)},
        )
        assert response.status_code == 202
        batch_id = response.json()["id"]
    drained = api if process == "serve" else await cluster.start_worker()
    owner = f"%:{drained.pid}:%"
    holding = "SELECT count(*) FROM jobs WHERE status = 'running' AND lease_owner LIKE :o"

    async def holding_work() -> bool:
        return int(await db.scalar(holding, o=owner)) > 0 and await send_count(db) > 0

    await wait_for(holding_work, within=30, interval=0.02, what="claimed in-flight work")
    in_hand = int(await db.scalar(holding, o=owner))
    signalled = time.monotonic()
    code = await drained.terminate(grace=10)
    took = time.monotonic() - signalled
    # uvicorn re-raises SIGTERM once its graceful shutdown (our lifespan drain) is done.
    assert code in ((0,) if process == "worker" else (0, -signal.SIGTERM)), drained.log_text()
    assert "worker.stopped" in drained.log_text()

    assert await db.scalar("SELECT count(*) FROM jobs WHERE status = 'running'") == 0
    assert await db.scalar("SELECT count(*) FROM jobs WHERE lease_owner LIKE :o", o=owner) == 0
    by_status = dict(await db.rows("SELECT status, count(*) FROM messages GROUP BY status"))
    assert "sending" not in by_status
    assert 0 < by_status.get("sent", 0) + by_status.get("delivered", 0) < total
    # What it had marked sending was sent once and recorded; the rest waits in the queue.
    drained_sends = await send_count(db)
    assert drained_sends == total - by_status.get("queued", 0)

    if process == "serve":
        api = await cluster.start_api("api-after")
    await cluster.start_worker("worker-after")

    async def all_delivered() -> bool:
        return await final_count(db, batch_id) == total

    await wait_for(all_delivered, within=30, interval=0.2, what="the rest delivered")
    assert dict(await db.rows("SELECT status, count(*) FROM messages GROUP BY status")) == {
        "delivered": total
    }
    async with client(api) as http:
        await assert_sent_exactly_once(
            http, db, {row[0] for row in await db.rows("SELECT id FROM messages")}
        )
    print(
        f"\n[sigterm {process}] held {in_hand} claimed jobs, exited ({code}) {took:.2f}s after "
        f"SIGTERM having sent {drained_sends}; nothing left running or sending"
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_pacing_holds_across_two_worker_processes(clusters: Make, backend: str) -> None:
    """Two numbers, 10 and 50 msg/s, 100 and 500 messages, two worker processes that both
    send: no second, calendar or sliding (``[t, t + 1)`` from every send), holds more sends
    of a number than its rate, and each rate is kept (~10 s in all)."""
    cluster, db = await clusters(backend)
    api = await cluster.start_api()
    rates = {SENDER: 10, "+14155550102": 50}
    async with client(api) as http:
        for number, rate in rates.items():
            await add_sender(http, rate, number)
        workers = [await cluster.start_worker(f"worker{i}") for i in range(2)]
        batch_ids = []
        for index, (number, rate) in enumerate(rates.items()):
            response = await http.post(
                "/v1/batches",
                json={
                    "from": number,
                    "body": "paced",
                    "recipients": recipients(5_000_000 + 1_000 * index, rate * 10),
                },
            )
            assert response.status_code == 202
            batch_ids.append(response.json()["id"])
        total = sum(rate * 10 for rate in rates.values())
        owners: set[str] = set()

        async def all_sent() -> bool:
            for (owner,) in await db.rows(
                "SELECT DISTINCT lease_owner FROM jobs WHERE status = 'running'"
                " AND kind = 'message.send'"
            ):
                owners.add(owner)
            return await send_count(db) == total

        await wait_for(all_sent, within=60, interval=0.1, what="every message sent")
        times: dict[str, list[float]] = {number: [] for number in rates}
        for number, created in await db.rows(
            "SELECT from_number, created_at FROM simulator_sends ORDER BY created_at"
        ):
            times[number].append(float(created))

        async def all_final() -> bool:
            counts = [await final_count(db, batch_id) for batch_id in batch_ids]
            return sum(counts) == total

        await wait_for(all_final, within=10, what="every message final")
        await assert_sent_exactly_once(
            http, db, {row[0] for row in await db.rows("SELECT id FROM messages")}
        )
    pids = {owner.split(":")[1] for owner in owners}
    assert pids == {str(worker.pid) for worker in workers}  # both processes sent
    for number, rate in rates.items():
        sent = times[number]
        assert len(sent) == rate * 10
        per_second = max(Counter(math.floor(t) for t in sent).values())
        sliding = max(bisect.bisect_left(sent, t + 1.0) - i for i, t in enumerate(sent))
        span = sent[-1] - sent[0]
        assert per_second <= rate, (number, per_second)
        assert sliding <= rate, (number, sliding)
        assert (len(sent) - 1) / rate * 0.95 <= span <= (len(sent) - 1) / rate * 1.25
        print(
            f"\n[pacing, {backend}] {len(sent)} sends at {rate}/s from 2 worker processes over "
            f"{span:.2f}s; most in a calendar second {per_second}, in a sliding 1 s window "
            f"{sliding}"
        )


async def test_scheduled_messages_go_out_within_one_second_of_their_time(
    clusters: Make,
) -> None:
    """``send_at`` (single messages, and a batch staggered by ``spacing_seconds``): each
    send reaches the carrier at or after its time and less than one second after it."""
    cluster, db = await clusters("sqlite")
    api = await cluster.start_api()
    await cluster.start_worker()
    async with client(api) as http:
        sender = await add_sender(http, 100)
        now = time.time()
        ids: list[str] = []
        for i, to in enumerate(recipients(6_000_000, 4)):
            response = await http.post(
                "/v1/messages",
                json={"from": sender, "to": to, "body": "later", "send_at": now + 2.0 + i * 0.3},
            )
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "scheduled"
            ids.append(response.json()["id"])
        response = await http.post(
            "/v1/batches",
            json={
                "from": sender,
                "body": "staggered",
                "recipients": recipients(6_100_000, 4),
                "send_at": datetime.fromtimestamp(now + 2.0).astimezone().isoformat(),
                "spacing_seconds": 0.5,
            },
        )
        assert response.status_code == 202, response.text
        ids.extend(response.json()["message_ids"])

        async def all_delivered() -> bool:
            rows = await db.rows("SELECT status FROM messages")
            return len(rows) == len(ids) and all(row[0] == "delivered" for row in rows)

        await wait_for(all_delivered, within=30, interval=0.2, what="scheduled sends")
        sent_at = dict(await db.rows("SELECT reference, created_at FROM simulator_sends"))
        lags = []
        for message_id in ids:
            message = (await http.get(f"/v1/messages/{message_id}")).json()
            due = datetime.fromisoformat(message["send_at"].replace("Z", "+00:00")).timestamp()
            lags.append(sent_at[message_id] - due)
    assert len(lags) == 8
    assert all(0.0 <= lag < 1.0 for lag in lags), lags
    print(f"\n[scheduled] 8 sends, lag after send_at: max {max(lags):.3f}s, min {min(lags):.3f}s")


async def test_heartbeats_keep_a_claim_alive_past_its_lease(clusters: Make) -> None:
    """A worker that holds jobs longer than the lease (a slow number, a long pacing horizon)
    keeps them: its heartbeats extend the lease, so the other worker never takes them over."""
    cluster, db = await clusters("sqlite", extra_env={"AGENTSMS_PACING_HORIZON_SECONDS": "6"})
    api = await cluster.start_api()
    total = 12
    async with client(api) as http:
        sender = await add_sender(http, 2)
        workers = [await cluster.start_worker(f"worker{i}") for i in range(2)]
        response = await http.post(
            "/v1/batches",
            json={"from": sender, "body": "hold on", "recipients": recipients(7_000_000, total)},
        )
        assert response.status_code == 202
        batch_id = response.json()["id"]
        seen: dict[int, tuple[set[tuple[str, int]], float, float, float, float]] = {}

        async def all_final() -> bool:
            now = time.time()
            for job_id, owner, attempts, lease in await db.rows(
                "SELECT id, lease_owner, attempts, lease_expires_at FROM jobs"
                " WHERE status = 'running' AND kind = 'message.send'"
            ):
                claims, first, _, first_lease, _ = seen.get(job_id, (set(), now, now, lease, lease))
                seen[job_id] = (claims | {(owner, attempts)}, first, now, first_lease, lease)
            return await final_count(db, batch_id) == total

        await wait_for(all_final, within=30, interval=0.1, what="every message final")
        await assert_sent_exactly_once(
            http, db, {row[0] for row in await db.rows("SELECT id FROM messages")}
        )
    held = max(last - first for _, first, last, _, _ in seen.values())
    extended = max(lease - first_lease for _, _, _, first_lease, lease in seen.values())
    assert held > LEASE_SECONDS  # a claim outlived its first lease...
    assert extended > 0  # ...because heartbeats moved its expiry on...
    # ...and nobody took it over: one claim per job, its first.
    assert all(claims == {(next(iter(claims))[0], 1)} for claims, *_ in seen.values())
    assert stalled_recovered(workers) == 0
    print(
        f"\n[heartbeat] a job held {held:.1f}s on a {LEASE_SECONDS:.0f}s lease, its expiry "
        f"extended by {extended:.1f}s; no job changed hands, every message sent on attempt 1"
    )


PAUSE_LEASE = 2.0
PAUSE_RATE = 10.0


def _tcp_ports(pid: int) -> set[int]:
    """The local ports of process ``pid``'s TCP sockets (Linux ``/proc``)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def _stopped_in_a_transaction(cluster: Cluster, db: Inspector, pid: int) -> bool:
    """Whether the stopped process ``pid`` holds a database transaction open. That is
    another fault than a pause between transactions: it blocks the other workers too
    (SQLite's write lock; PostgreSQL's row locks, until its
    ``idle_in_transaction_session_timeout``)."""
    url = make_url(cluster.database_url)
    if url.get_backend_name() == "sqlite":

        def write_lock_free() -> bool:
            probe = sqlite3.connect(str(url.database), timeout=1.0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                return True
            except sqlite3.OperationalError:
                return False
            finally:
                probe.close()

        return not await asyncio.to_thread(write_lock_free)
    ports = ", ".join(str(port) for port in _tcp_ports(pid)) or "0"
    busy = await db.scalar(
        f"SELECT count(*) FROM pg_stat_activity WHERE client_port IN ({ports}) AND state <> 'idle'"
    )
    return int(busy) > 0


async def _stranded(db: Inspector) -> dict[str, set[str]]:
    """Per worker (lease owner): messages its claims marked in flight that the carrier has
    not received, i.e. sends it still holds, waiting for their slots."""
    held: dict[str, set[str]] = {}
    for owner, message_id in await db.rows(
        "SELECT j.lease_owner, m.id FROM jobs j JOIN messages m ON m.id = j.ref"
        " WHERE j.status = 'running' AND j.kind = 'message.send' AND m.in_flight"
        " AND NOT EXISTS (SELECT 1 FROM simulator_sends s WHERE s.reference = m.id)"
    ):
        held.setdefault(str(owner), set()).add(str(message_id))
    return held


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_worker_stopped_past_its_lease_sends_nothing_another_took(
    clusters: Make, backend: str
) -> None:
    """SIGSTOP a worker holding in-flight sends (waiting for their slots) past its 2 s lease;
    the other worker recovers them and sends them; SIGCONT. The resumed worker hands none
    of them to the carrier, which does not de-duplicate (``dedupe_references: false``):
    0 repeated references, every message delivered once."""
    cluster, db = await clusters(backend, lease_seconds=PAUSE_LEASE, delivery_delay=0.1)
    api = await cluster.start_api()
    total = 30
    async with client(api) as http:
        response = await http.post(
            "/v1/numbers",
            json={
                "number": SENDER,
                "throughput_mps": PAUSE_RATE,
                "settings": {"dedupe_references": False},
            },
        )
        assert response.status_code == 201, response.text
        workers = list(await asyncio.gather(*(cluster.start_worker(f"w{i}") for i in range(2))))
        by_pid = {str(worker.pid): worker for worker in workers}
        response = await http.post(
            "/v1/batches",
            json={"from": SENDER, "body": "once", "recipients": recipients(8_000_000, total)},
        )
        assert response.status_code == 202, response.text
        batch_id = response.json()["id"]

        stopped: Proc | None = None
        stranded: set[str] = set()

        async def stop_one_holding_sends() -> bool:
            nonlocal stopped, stranded
            for owner, message_ids in (await _stranded(db)).items():
                if len(message_ids) >= 3:
                    stopped = by_pid[owner.split(":")[1]]
                    os.kill(stopped.pid, signal.SIGSTOP)
                    if await _stopped_in_a_transaction(cluster, db, stopped.pid):
                        os.kill(stopped.pid, signal.SIGCONT)  # not this fault: again
                        return False
                    # What it still held once stopped (a send may have gone meanwhile).
                    stranded = (await _stranded(db)).get(owner, set())
                    return True
            return False

        await wait_for(stop_one_holding_sends, within=20, interval=0.02, what="held sends")
        assert stopped is not None
        assert stranded, "the stopped worker held no unsent in-flight message"
        paused_at = time.monotonic()
        try:
            marks = ", ".join(f"'{m}'" for m in stranded)

            async def taken_and_sent() -> bool:
                sent = await db.scalar(
                    f"SELECT count(*) FROM simulator_sends WHERE reference IN ({marks})"
                )
                return int(sent) == len(stranded)

            await wait_for(taken_and_sent, within=20, interval=0.1, what="the others sent")
        finally:
            os.kill(stopped.pid, signal.SIGCONT)
        paused = time.monotonic() - paused_at
        assert paused > PAUSE_LEASE

        async def all_final() -> bool:
            return await final_count(db, batch_id) == total

        await wait_for(all_final, within=30, interval=0.2, what="every message final")
        await asyncio.sleep(1.0)  # the resumed worker's stale sends would be made by now
        totals = (await http.get("/v1/simulator/log", params={"limit": 1})).json()["totals"]
        assert totals == {"sends": total, "recipients": total, "repeats": 0}
        assert dict(await db.rows("SELECT status, count(*) FROM messages GROUP BY status")) == {
            "delivered": total
        }
        finals = await db.rows(
            "SELECT message_id, count(*) FROM message_events"
            f" WHERE status IN ({', '.join(repr(s) for s in FINAL)}) GROUP BY message_id"
        )
        assert len(finals) == total
        assert {count for _, count in finals} == {1}
    assert stopped.alive
    assert stalled_recovered(workers) >= len(stranded)
    dropped = stopped.log_text().count("dispatch.lease_lost")
    print(
        f"\n[sigstop, {backend}] stopped a worker holding {len(stranded)} in-flight sends for "
        f"{paused:.1f}s on a {PAUSE_LEASE:.0f}s lease; the other sent them; resumed, it "
        f"logged {dropped} lost lease(s) and sent none again: 0 repeats in {total}"
    )
