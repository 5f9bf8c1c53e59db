"""An operator's first mistakes get one clear line, not a traceback or a half-started server.

Real ``agentsms`` processes: a bad database URL, a port in use, a PostgreSQL database nobody
migrated, a quickstart whose saved key belongs to a database that was since removed, a
worker whose database goes away, and JSON logs on every line.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import agentsms_argv, clean_env, start_server
from tests.acceptance.processes import free_port
from tests.conftest import POSTGRES_URL
from tests.databases import create_postgres_database, drop_postgres_database

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="AGENTSMS_TEST_POSTGRES_URL unset")


def run(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*agentsms_argv(), *args],
        env=clean_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
@pytest.mark.parametrize("url", ["foo", "mysql://root@127.0.0.1/app"])
def test_a_bad_database_url_is_one_line_naming_it_and_the_accepted_forms(
    tmp_path: Path, command: str, url: str
) -> None:
    result = run(command, env={"AGENTSMS_DATABASE_URL": url}, cwd=tmp_path)
    assert_one_line_error(result, repr(url), "sqlite+aiosqlite:///", "postgresql+asyncpg://")


def test_a_missing_sqlite_folder_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/absent/agentsms.db"
    result = run("worker", env={"AGENTSMS_DATABASE_URL": url}, cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path / "absent"), "does not exist")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize("command", ["serve", "quickstart"])
def test_a_port_in_use_fails_first_naming_the_port_and_starts_nothing(
    tmp_path: Path, taken_port: int, command: str
) -> None:
    database = tmp_path / "agentsms.db"
    result = run(
        command,
        "--port",
        str(taken_port),
        env={"AGENTSMS_DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
        cwd=tmp_path,
    )
    assert_one_line_error(result, f"127.0.0.1:{taken_port}", "--port", "PORT=")
    assert not database.exists(), "nothing may start before the port is known to be free"
    assert not (tmp_path / ".agentsms").exists()
    assert "agentsms is starting" not in result.stdout


@needs_postgres
def test_postgres_serve_and_worker_refuse_an_unmigrated_database(tmp_path: Path) -> None:
    name = f"unmigrated_{os.getpid()}"
    url = asyncio.run(create_postgres_database(POSTGRES_URL, name))
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        env = {"AGENTSMS_DATABASE_URL": plain}
        for argv in (["serve", "--port", str(free_port())], ["worker"]):
            result = run(*argv, env=env, cwd=tmp_path)
            assert_one_line_error(result, "revision none", "agentsms migrate")
        migrated = run("migrate", env={"AGENTSMS_DATABASE_URL": plain}, cwd=tmp_path)
        assert migrated.returncode == 0, migrated.stderr
    finally:
        asyncio.run(drop_postgres_database(POSTGRES_URL, name))


@needs_postgres
def test_postgres_worker_backs_off_while_its_database_is_gone(tmp_path: Path) -> None:
    name = f"vanishing_{os.getpid()}"
    url = asyncio.run(create_postgres_database(POSTGRES_URL, name))
    env = clean_env({"AGENTSMS_DATABASE_URL": url, "AGENTSMS_LOG_FORMAT": "json"})
    assert run("migrate", env=env, cwd=tmp_path).returncode == 0
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*agentsms_argv(), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while "worker.started" not in log_path.read_text():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        asyncio.run(drop_postgres_database(POSTGRES_URL, name))
        time.sleep(8)
        lines = log_path.read_text().splitlines()
    finally:
        worker.kill()
        worker.wait(10)
        asyncio.run(drop_postgres_database(POSTGRES_URL, name))
    failures = [json.loads(line) for line in lines if "claim_failed" in line]
    # Before: thousands of tracebacks a second. Now one line per try, each loop's pauses doubling.
    assert 2 <= len(failures) <= 40, len(lines)
    assert len(lines) < 60
    assert [line for line in lines if "Traceback" in line] == []
    assert max(failure["retry_in"] for failure in failures) >= 3.2


def test_quickstart_makes_a_new_project_when_the_saved_key_belongs_to_another_database(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / ".agentsms" / "api_key"
    key_file.parent.mkdir()
    key_file.write_text("ask_from_a_database_that_make_clean_removed\n")
    port = free_port()
    env = clean_env({"AGENTSMS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/agentsms.db"})
    with (tmp_path / "quickstart.log").open("wb") as log:
        process = subprocess.Popen(
            [*agentsms_argv(), "quickstart", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        key = ""
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=5) as http:
            while True:
                assert process.poll() is None, (tmp_path / "quickstart.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "quickstart.log").read_text()
                key = key_file.read_text().strip()
                try:
                    project = http.get(
                        f"http://127.0.0.1:{port}/v1/project",
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
        output = (tmp_path / "quickstart.log").read_text()
    finally:
        process.terminate()
        process.wait(20)
    assert "belongs to another database" in output
    assert key != "ask_from_a_database_that_make_clean_removed"
    assert project.status_code == 200
    assert f"Project id: {project.json()['id']}" in output
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("access_log", [True, False])
def test_json_logs_are_json_on_every_line_with_an_access_log_unless_turned_off(
    tmp_path: Path, access_log: bool
) -> None:
    server = start_server(
        tmp_path,
        env={"AGENTSMS_LOG_FORMAT": "json"},
        args=[] if access_log else ["--no-access-log"],
    )
    with server.client() as api:
        api.post("/v1/messages", json={"to": "+14155552671", "body": "hi"}).raise_for_status()
        assert api.get("/v1/no-such-page").status_code == 404
        time.sleep(0.5)  # the simulator's receipt: more log lines from the worker's side
    server.stop()
    lines = [line for line in server.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    events = [record["event"] for record in records]
    assert any(event == "serve.listening" for event in events)
    listening = next(r for r in records if r["event"] == "serve.listening")
    assert listening["url"] == server.url
    access = [r for r in records if r.get("logger") == "uvicorn.access"]
    if access_log:
        assert any("/v1/no-such-page" in r["event"] and "404" in r["event"] for r in access)
    else:
        assert access == []
    assert not any(str(event).startswith("HTTP Request:") for event in events)
