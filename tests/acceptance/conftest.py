"""Start real ``agentsms serve`` processes on loopback for acceptance tests.

``start_server(tmp_path, env=..., args=...)`` runs ``agentsms serve`` on a free port with
its own database (a SQLite file in ``tmp_path`` unless ``database_url`` is given), logs
to a file in ``tmp_path``, and returns once ``/readyz`` answers 200. The ``bootstrap``
project's API key is ``server.api_key``. Any server a test started and did not stop is
killed when the test ends (by pid); a module- or session-scoped fixture that starts one
stops it itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.acceptance.processes import free_port

DEFAULT_API_KEY = "ask_acceptance_cli_key_0123456789"
READY_TIMEOUT = 30.0

_started: list[Server] = []


def agentsms_argv() -> list[str]:
    """Run the CLI of the interpreter running the tests (``python -m agentsms``)."""
    return [sys.executable, "-m", "agentsms"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``AGENTSMS_`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSMS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Server:
    """One ``agentsms serve`` process."""

    url: str
    port: int
    api_key: str
    database_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client authorised as the bootstrap project."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=timeout,
        )

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it is still up after ``grace`` seconds; the exit code."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.poll()

    def kill(self) -> None:
        """``kill -9``: no chance to clean up."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until ``/readyz`` says 200; fails with the log's tail if the process exits."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as http:
            while True:
                if not self.alive:
                    raise ServerExited(self)
                try:
                    if http.get(f"{self.url}/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.url} not ready after {timeout:.0f}s:\n{self.logs()[-3000:]}"
                    )
                time.sleep(0.1)


class ServerExited(AssertionError):
    def __init__(self, server: Server) -> None:
        super().__init__(
            f"agentsms serve exited with {server.process.returncode}:\n{server.logs()[-3000:]}"
        )
        self.server = server


def start_server(
    tmp_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    database_url: str | None = None,
    api_key: str = DEFAULT_API_KEY,
    name: str = "server",
    ready_timeout: float = READY_TIMEOUT,
) -> Server:
    """Run ``agentsms serve`` on a free loopback port and wait until it is ready.

    ``env`` is applied over the defaults (SQLite file ``tmp_path/<name>.db``, bootstrap
    key ``api_key``, 0.1 s simulator delivery delay, no practical rate limit, JSON logs);
    ``args`` go after ``serve --host 127.0.0.1 --port N`` (e.g. ``["--no-worker"]``).
    """
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    full_env = clean_env(
        {
            "AGENTSMS_DATABASE_URL": url,
            "AGENTSMS_BOOTSTRAP_API_KEY": api_key,
            "AGENTSMS_SIMULATOR_DELIVERY_DELAY_SECONDS": "0.1",
            "AGENTSMS_DEFAULT_RATE_LIMIT_PER_SECOND": "100000",
            "AGENTSMS_LOG_FORMAT": "json",
        }
    )
    full_env.update(env or {})
    for attempt in range(3):
        port = free_port()
        log_path = tmp_path / f"{name}.{port}.log"
        argv = [
            *agentsms_argv(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = Server(
            url=f"http://127.0.0.1:{port}",
            port=port,
            api_key=api_key,
            database_url=url,
            env=full_env,
            process=process,
            log_path=log_path,
            args=list(args),
        )
        _started.append(server)
        try:
            server.wait_ready(ready_timeout)
        except ServerExited:
            # Another process may have taken the port between picking and binding it.
            if attempt < 2 and "address already in use" in server.logs().lower():
                continue
            raise
        except BaseException:
            server.kill()
            raise
        return server
    raise AssertionError("unreachable")


@pytest.fixture(autouse=True)
def _stop_servers_started_by_the_test() -> Iterator[None]:
    """Kill servers a test started and left running (wider-scoped fixtures stop their own)."""
    before = len(_started)
    yield
    for server in _started[before:]:
        server.kill()
    del _started[before:]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server (SQLite in ``tmp_path``) for one test."""
    started = start_server(tmp_path)
    yield started
    started.stop()
