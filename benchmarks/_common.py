"""Helpers shared by the benchmark scripts.

* ``free_port`` / ``Server``: start a server process on a free loopback port, wait until a
  readiness path answers ``200``, and stop it (SIGTERM, then SIGKILL) when done.
* ``run_load``: drive ``N`` keep-alive connections at one POST endpoint for a fixed time and
  report requests/s and p50/p99 latency. It uses ``wrk`` (C, very little CPU) when it is on
  ``PATH`` and otherwise a small httpx load generator; either way the generator runs in its
  own process, and the caller uses the same one for every target it compares.
* ``Table``: print aligned tables.
* ``make_project``: an in-process project with sender numbers, for scripts that preload.

Run as a script (``python benchmarks/_common.py loadgen CONFIG.json``) this module is the
httpx load generator process itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
AGENTSMS = [PYTHON, "-m", "agentsms"]
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def temp_dir(prefix: str = "agentsms-bench-") -> Iterator[Path]:
    """A temporary directory, removed afterwards (also on Ctrl-C)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bench_env(**overrides: str) -> dict[str, str]:
    """The current environment minus any ``AGENTSMS_*`` settings, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSMS_")}
    env.setdefault("AGENTSMS_LOG_LEVEL", "WARNING")
    env.update(overrides)
    return env


class Process:
    """A child process we started; ``stop()`` ends exactly it (by pid), logs kept to a file."""

    def __init__(
        self, args: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path
    ) -> None:
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.popen = subprocess.Popen(
            self.args, env=dict(env), cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode


class Server(Process):
    """An HTTP server process on 127.0.0.1:``port``."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path,
        ready_path: str = "/readyz",
    ) -> None:
        super().__init__(args, env=env, log_path=log_path, cwd=cwd)
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.running():
                    raise RuntimeError(
                        f"server exited with {self.popen.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(self.ready_path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log_tail()}")


@contextmanager
def running_server(
    args: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    workdir: Path,
    name: str,
    ready_path: str = "/readyz",
) -> Iterator[Server]:
    """Start a server, wait until it is ready, and always stop it afterwards."""
    server = Server(
        args,
        port=port,
        env=env,
        log_path=workdir / f"{name}.log",
        cwd=workdir,
        ready_path=ready_path,
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def agentsms_serve(port: int, *extra: str) -> list[str]:
    """The command line of ``agentsms serve`` on loopback at ``port``."""
    return [*AGENTSMS, "serve", "--host", "127.0.0.1", "--port", str(port), *extra]


# --------------------------------------------------------------------------- load generation


@dataclass
class LoadResult:
    """What one load run measured (latencies in milliseconds)."""

    tool: str
    connections: int
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadSpec:
    """One POST endpoint to hammer; each request gets a fresh ``Idempotency-Key`` if asked."""

    url: str
    body: str
    headers: dict[str, str]
    connections: int = 64
    seconds: float = 10.0
    warmup: float = 2.0
    idempotency_keys: bool = True
    expect_status: int = 202


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_load(spec: LoadSpec, *, tool: str = "auto", workdir: Path) -> LoadResult:
    """Warm up, then measure. ``tool`` is ``auto`` (wrk if installed), ``wrk`` or ``python``."""
    use_wrk = tool == "wrk" or (tool == "auto" and have_wrk())
    if use_wrk:
        if spec.warmup > 0:
            _run_wrk(spec, spec.warmup, workdir)
        return _run_wrk(spec, spec.seconds, workdir)
    config = workdir / f"loadgen-{secrets.token_hex(4)}.json"
    config.write_text(json.dumps(asdict(spec)))
    completed = subprocess.run(
        [PYTHON, str(Path(__file__).resolve()), "loadgen", str(config)],
        capture_output=True,
        text=True,
        timeout=spec.warmup + spec.seconds + 120,
        check=False,
    )
    config.unlink(missing_ok=True)
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{completed.stderr[-3000:]}")
    return LoadResult(**json.loads(completed.stdout.strip().splitlines()[-1]))


_WRK_LUA = """
local prefix = "%(prefix)s"
local use_keys = %(use_keys)s
local counter = 0
local threads = {}
local thread_no = 0

wrk.method = "POST"
wrk.body = %(body)s
%(headers)s

function setup(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
  table.insert(threads, thread)
end

function request()
  if use_keys then
    counter = counter + 1
    wrk.headers["Idempotency-Key"] = prefix .. "-" .. tostring(tid) .. "-" .. counter
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"status\\": %%d, " ..
    "\\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d, \\"timeout\\": %%d, " ..
    "\\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def _run_wrk(spec: LoadSpec, seconds: float, workdir: Path) -> LoadResult:
    headers = "\n".join(
        f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in spec.headers.items()
    )
    script = workdir / f"wrk-{secrets.token_hex(4)}.lua"
    script.write_text(
        _WRK_LUA
        % {
            "prefix": secrets.token_hex(8),
            "use_keys": "true" if spec.idempotency_keys else "false",
            "body": _lua_string(spec.body),
            "headers": headers,
        }
    )
    args = [
        "wrk",
        "-t1",
        f"-c{spec.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        spec.url,
    ]
    completed = subprocess.run(
        args, capture_output=True, text=True, timeout=seconds + 90, check=False
    )
    script.unlink(missing_ok=True)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    duration = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("status", "connect", "read", "write", "timeout"))
    return LoadResult(
        tool="wrk",
        connections=spec.connections,
        seconds=duration,
        requests=data["requests"],
        errors=errors,
        rps=(data["requests"] - errors) / duration,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        statuses={"non-2xx/3xx": data["status"]} if data["status"] else {},
    )


async def _python_load(spec: LoadSpec) -> LoadResult:
    """The httpx generator: ``connections`` tasks, each with its own one-connection client.

    (One shared ``AsyncClient`` pool with 64 connections spends most of its time in the pool's
    bookkeeping; a client per connection keeps the generator's cost per request flat.)
    """
    prefix = secrets.token_hex(8)
    body = spec.body.encode()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0
    measuring = False
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(limits=limits, timeout=30.0) for _ in range(spec.connections)]

    async def one(worker: int, until: float) -> None:
        nonlocal errors
        client = clients[worker]
        n = 0
        headers = dict(spec.headers)
        while time.perf_counter() < until:
            n += 1
            if spec.idempotency_keys:
                headers["Idempotency-Key"] = f"{prefix}-{worker}-{n}-{int(measuring)}"
            started = time.perf_counter()
            try:
                response = await client.post(spec.url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError as error:
                status = -1
                if measuring:
                    statuses[type(error).__name__] += 1
            elapsed = time.perf_counter() - started
            if not measuring:
                continue
            if status == spec.expect_status:
                latencies.append(elapsed)
            else:
                errors += 1
                if status != -1:
                    statuses[str(status)] += 1

    try:
        if spec.warmup > 0:
            until = time.perf_counter() + spec.warmup
            await asyncio.gather(*(one(i, until) for i in range(spec.connections)))
        measuring = True
        started = time.perf_counter()
        until = started + spec.seconds
        await asyncio.gather(*(one(i, until) for i in range(spec.connections)))
        duration = time.perf_counter() - started
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return LoadResult(
        tool="python-httpx",
        connections=spec.connections,
        seconds=duration,
        requests=len(latencies) + errors,
        errors=errors,
        rps=len(latencies) / duration,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        statuses=dict(statuses),
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; ``nan`` for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _loadgen_main(config_path: str) -> None:
    spec = LoadSpec(**json.loads(Path(config_path).read_text()))
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    result = runner(_python_load(spec))
    print(json.dumps(asdict(result)))


# --------------------------------------------------------------------------- output


class Table:
    """A plain-text table printed with aligned columns."""

    def __init__(self, title: str, columns: Sequence[str]) -> None:
        self.title = title
        self.columns = list(columns)
        self.rows: list[list[str]] = []

    def add(self, *cells: object) -> None:
        self.rows.append([_cell(c) for c in cells])

    def render(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
        line = "  ".join("-" * w for w in widths)

        def fmt(row: Sequence[str]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=False))
            )

        out = [self.title, fmt(self.columns), line, *(fmt(r) for r in self.rows)]
        return "\n".join(out)

    def print(self) -> None:
        print()
        print(self.render(), flush=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def code_version() -> str:
    """The agentsms commit measured, and whether ``src/`` had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes in src/" if dirty else "")


def machine_note() -> str:
    """Where and on what the figures were taken."""
    load1, _, _ = os.getloadavg()
    return (
        f"agentsms {code_version()}; {os.cpu_count()} CPUs, load average {load1:.2f} at the"
        " start; figures are noisy on a shared machine: compare ratios within one run"
    )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- databases


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def postgres_admin_dsn(url: str) -> tuple[str, str]:
    """(DSN of the ``postgres`` maintenance database, database name) for an asyncpg URL."""
    plain = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    base, _, name = plain.rpartition("/")
    name = name.split("?", 1)[0]
    return f"{base}/postgres", name


async def recreate_postgres_database(url: str) -> None:
    """Drop and create the database named in ``url`` (it must be one of our own)."""
    import asyncpg

    admin, name = postgres_admin_dsn(url)
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unexpected database name {name!r}")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_postgres_database(url: str) -> None:
    import asyncpg

    admin, name = postgres_admin_dsn(url)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass(frozen=True)
class BenchProject:
    project_id: str
    api_key: str
    numbers: dict[str, str]  # e164 -> number id


async def make_project(
    database_url: str, numbers: Mapping[str, float], *, migrate: bool = True
) -> BenchProject:
    """Migrate the database and add a project with simulator numbers at the given rates."""
    from agentsms.core import numbers as numbers_service
    from agentsms.core import projects
    from agentsms.core.numbers import NumberInput
    from agentsms.store import migrate as migrations
    from agentsms.store.db import Database

    if migrate:
        await migrations.upgrade_async(database_url)
    db = Database(database_url)
    try:
        async with db.write() as conn:
            project, key = await projects.create_project(conn, "bench")
            ids: dict[str, str] = {}
            for e164, rate in numbers.items():
                row = await numbers_service.add_number(
                    conn,
                    project.id,
                    NumberInput(
                        number=e164,
                        capabilities=("sms", "mms", "whatsapp", "imessage"),
                        throughput_mps=rate,
                    ),
                )
                ids[e164] = str(row["id"])
    finally:
        await db.dispose()
    return BenchProject(project_id=project.id, api_key=key, numbers=ids)


def recipient(index: int) -> str:
    """The ``index``-th distinct, valid US mobile-style number (+1 415 2xx xxxx ...)."""
    return f"+1415{2_000_000 + index}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "loadgen":
        _loadgen_main(sys.argv[2])
    else:
        raise SystemExit("usage: python benchmarks/_common.py loadgen CONFIG.json")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    tree, frontier = [pid], [pid]
    while frontier:
        below = [child for parent in frontier for child in children_of(parent)]
        tree += below
        frontier = below
    return tree


def process_times(pid: int) -> tuple[int, int] | None:
    """The user and the system CPU clock ticks ``pid`` has used (None: it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]), int(fields[12])


def process_ticks(pid: int) -> int | None:
    """The user + system CPU clock ticks ``pid`` has used (None: it is gone)."""
    times = process_times(pid)
    return None if times is None else sum(times)
