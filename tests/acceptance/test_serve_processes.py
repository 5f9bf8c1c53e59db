"""``agentsms serve`` on several cores: a supervisor, API processes sharing its port, a
worker process; SIGTERM stops them all, and so does ``kill -9`` of the supervisor."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentsms.supervisor import usable_cores
from tests.acceptance.conftest import Server, agentsms_argv, clean_env, start_server
from tests.databases import create_postgres_database, drop_postgres_database

SENDS = 20
POSTGRES_URL = os.environ.get("AGENTSMS_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each backend: a SQLite file (``serve`` migrates it), or a
    PostgreSQL database migrated with ``agentsms migrate`` as an operator does."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("AGENTSMS_TEST_POSTGRES_URL is not set")
    name = f"serve_processes_{os.getpid()}"
    url = asyncio.run(create_postgres_database(POSTGRES_URL, name))
    try:
        migrated = subprocess.run(
            [*agentsms_argv(), "migrate"],
            env=clean_env({"AGENTSMS_DATABASE_URL": url}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        yield url
    finally:
        asyncio.run(drop_postgres_database(POSTGRES_URL, name))


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (zombies excluded)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def roles(server: Server) -> dict[int, str]:
    """The children ``serve.processes`` logged, pid to role."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in server.logs().splitlines():
            if '"serve.processes"' in line:
                return {int(pid): role for pid, role in json.loads(line)["children"].items()}
        time.sleep(0.1)
    raise AssertionError(f"no serve.processes line:\n{server.logs()[-3000:]}")


def send_and_deliver(server: Server) -> None:
    with server.client() as http:
        ids = []
        for i in range(SENDS):
            # A new connection each time, so every API process may take some.
            response = http.post(
                "/v1/messages",
                json={"to": f"+1415555{2000 + i:04d}", "body": f"hello {i}"},
                headers={"Connection": "close"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        deadline = time.monotonic() + 20
        pending = set(ids)
        while pending:
            assert time.monotonic() < deadline, f"not delivered: {pending}\n{server.logs()[-2000:]}"
            time.sleep(0.2)
            for message_id in list(pending):
                if http.get(f"/v1/messages/{message_id}").json()["status"] == "delivered":
                    pending.discard(message_id)


def wait_gone(pids: set[int], within: float) -> set[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.05)
    return {pid for pid in pids if alive(pid)}


@pytest.mark.skipif(usable_cores() < 2, reason="the default runs one process on one core")
def test_default_serve_uses_the_cores_delivers_and_stops_everything_on_sigterm(
    tmp_path: Path, database_url: str
) -> None:
    server = start_server(tmp_path, database_url=database_url)
    children = roles(server)
    expected_api = max(1, usable_cores() - 1)
    assert sorted(children.values()) == sorted(["api"] * expected_api + ["worker"])
    assert set(children) == children_of(server.process.pid)

    send_and_deliver(server)
    # The worker runs in its own process: its owner name carries that process's pid.
    worker_pid = next(pid for pid, role in children.items() if role == "worker")
    started = [line for line in server.logs().splitlines() if '"worker.started"' in line]
    assert [f":{worker_pid}:" in json.loads(line)["owner"] for line in started] == [True]

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0, server.logs()[-3000:]
    assert wait_gone(set(children), within=2) == set()
    assert "serve.stopped" in server.logs()
    assert "worker.stopped" in server.logs()


def test_kill9_of_the_supervisor_leaves_no_child_running(tmp_path: Path) -> None:
    server = start_server(tmp_path, args=["--processes", "2"])
    children = roles(server)
    assert sorted(children.values()) == ["api", "api", "worker"]
    send_and_deliver(server)

    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    assert wait_gone(set(children), within=3) == set(), "children outlived the supervisor"


def test_processes_1_is_one_process_with_its_worker_inside(tmp_path: Path) -> None:
    server = start_server(tmp_path, args=["--processes", "1"])
    send_and_deliver(server)
    assert children_of(server.process.pid) == set()
    started = [line for line in server.logs().splitlines() if '"worker.started"' in line]
    assert [f":{server.process.pid}:" in json.loads(line)["owner"] for line in started] == [True]


def created_at_of(server: Server, message_ids: list[str]) -> list[str]:
    with server.client() as http:
        return [http.get(f"/v1/messages/{i}").json()["created_at"] for i in message_ids]


@pytest.mark.skipif(usable_cores() < 2, reason="the default runs one process on one core")
def test_each_api_process_accepts_concurrent_sends_together(
    tmp_path: Path, database_url: str
) -> None:
    """Group commit per process: sends that arrive together at a process of the default
    ``serve`` (and of two API processes) share one transaction, which gives its messages one
    acceptance time; every send is still stored once, under its own key."""
    for args in ([], ["--processes", "2"]):
        server = start_server(tmp_path, database_url=database_url, args=args, name=f"p{len(args)}")
        try:
            accepts_together(server, key_prefix=f"group-{len(args)}")
        finally:
            server.stop()


def accepts_together(server: Server, *, key_prefix: str, sends: int = 96) -> None:
    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=sends)
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.api_key}"},
            limits=limits,
            timeout=60,
        ) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/v1/messages",
                        json={"to": f"+1415555{3000 + n:04d}", "body": f"group {n}"},
                        headers={"Idempotency-Key": f"{key_prefix}-{n}"},
                    )
                    for n in range(sends)
                )
            )

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [202] * sends, answers[0].text
    ids = [a.json()["id"] for a in answers]
    assert len(set(ids)) == sends
    times = created_at_of(server, ids)
    # One transaction per request would give as many distinct times as sends.
    assert len(set(times)) < sends * 3 // 4, f"{len(set(times))} groups for {sends} sends"
    with server.client() as http:  # a replayed key answers the stored message
        again = http.post(
            "/v1/messages",
            json={"to": "+14155553000", "body": "group 0"},
            headers={"Idempotency-Key": f"{key_prefix}-0"},
        )
    assert again.status_code == 202
    assert again.json()["id"] == ids[0]
