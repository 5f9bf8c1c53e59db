"""Real ``agentsms`` processes for acceptance tests: API servers, workers, their databases.

Every process logs to a file under the test's ``tmp_path``; a ``Cluster`` kills whatever
is still running when the test ends (by pid, never by name).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

API_KEY = "ask_acceptance_key_0123456789"
LEASE_SECONDS = 3.0
FINAL = ("delivered", "undelivered", "failed", "canceled", "expired")


def agentsms_command() -> list[str]:
    """The ``agentsms`` console script of the interpreter running the tests."""
    script = Path(sys.executable).with_name("agentsms")
    if script.exists():
        return [str(script)]
    found = shutil.which("agentsms")
    if found:
        return [found]
    return [sys.executable, "-c", "from agentsms.cli import main; main()"]


def free_port() -> int:
    """A TCP port the OS just handed out on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(
    check: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.1, what: str = ""
) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class Proc:
    """One ``agentsms`` process, restartable with the same arguments."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        log_path = self.log_dir / f"{self.name}.{self.starts}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as out:
            self.popen = subprocess.Popen(
                [*agentsms_command(), *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """``kill -9``: no chance to clean up."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    async def terminate(self, grace: float) -> int | None:
        """SIGTERM, then wait up to ``grace`` seconds; the exit code, or None if still up."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.popen.poll()

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs if path.exists())

    async def wait_logged(self, needle: str, within: float = 30.0) -> None:
        """Until the current run's log contains ``needle`` (e.g. ``worker.started``)."""

        async def logged() -> bool:
            assert self.alive, f"{self.name} exited:\n{self.log_text()[-3000:]}"
            return needle in self.logs[-1].read_text(errors="replace")

        await wait_for(logged, within=within, interval=0.05, what=f"{self.name}: {needle}")


@dataclass
class Api(Proc):
    """``agentsms serve --no-worker`` on a fixed loopback port (kept across restarts)."""

    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, within: float = 30.0) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def ready() -> bool:
                assert self.alive, f"{self.name} exited:\n{self.log_text()[-3000:]}"
                try:
                    return (await client.get(f"{self.url}/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(ready, within=within, interval=0.1, what=f"{self.name} /readyz")


class Cluster:
    """API and worker processes sharing one database; everything is killed on ``close()``."""

    def __init__(
        self,
        log_dir: Path,
        database_url: str,
        *,
        lease_seconds: float = LEASE_SECONDS,
        delivery_delay: float = 0.2,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.database_url = database_url
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSMS_")}
        env.update(
            {
                "AGENTSMS_DATABASE_URL": database_url,
                "AGENTSMS_BOOTSTRAP_API_KEY": API_KEY,
                "AGENTSMS_JOB_LEASE_SECONDS": str(lease_seconds),
                "AGENTSMS_SIMULATOR_DELIVERY_DELAY_SECONDS": str(delivery_delay),
                "AGENTSMS_DEFAULT_RATE_LIMIT_PER_SECOND": "100000",
                "AGENTSMS_LOG_FORMAT": "console",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra_env or {})
        self.env = env
        self.procs: list[Proc] = []

    def migrate(self) -> None:
        """``agentsms migrate``: done once, before any process starts."""
        subprocess.run(
            [*agentsms_command(), "migrate", "--database-url", self.database_url],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    async def start_api(self, name: str = "api", *, with_worker: bool = False) -> Api:
        """A server (API only unless ``with_worker``); it bootstraps the ``API_KEY`` project."""
        port = free_port()
        # With its worker: the single-process serve (API and worker in this one process).
        mode = ["--processes", "1", "--workers-in-process", "2"] if with_worker else ["--no-worker"]
        api = Api(
            name=name,
            args=["serve", *mode, "--host", "127.0.0.1", "--port", str(port)],
            env=self.env,
            log_dir=self.log_dir,
            port=port,
        )
        self.procs.append(api)
        api.start()
        await api.wait_ready()
        if with_worker:
            await api.wait_logged("worker.started")
        return api

    async def start_worker(self, name: str = "worker", concurrency: int = 2) -> Proc:
        """``agentsms worker``; returns once its loop has started."""
        worker = Proc(
            name=name,
            args=["worker", "--concurrency", str(concurrency)],
            env=self.env,
            log_dir=self.log_dir,
        )
        self.procs.append(worker)
        worker.start()
        await worker.wait_logged("worker.started")
        return worker

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()


def client(api: Api) -> httpx.AsyncClient:
    """An HTTP client for the bootstrap project of ``api``."""
    return httpx.AsyncClient(
        base_url=api.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30.0
    )


class Inspector:
    """Read-only SQL against the cluster's database, for what the API does not show."""

    def __init__(self, database_url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(database_url)

    async def rows(self, sql: str, **params: Any) -> Sequence[Any]:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).all()

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def close(self) -> None:
        await self.engine.dispose()
