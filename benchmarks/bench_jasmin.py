"""Single sends beside Jasmin 0.11.1 through the same fake SMSC, in interleaved rounds.

Drives the peer harness of ``peers/jasmin`` (its ``README.md``; not part of this
repository): ``setup.sh`` installs and starts Jasmin with its own Redis, RabbitMQ and a
fake SMSC (SMPP on 127.0.0.1:2776), ``agentsms/start.sh`` starts ``agentsms serve`` from
this checkout (SQLite, an SMPP provider account bound to the same fake SMSC, pacing out of
the way), and a load client sends single messages over ``--concurrency`` keep-alive
connections to Jasmin's HTTP ``/send`` or to ``POST /v1/messages``, then waits until the
fake SMSC has seen every accepted one. Two clients (``--client``, both by default, each
in every round):

* ``load.py``, the harness's Python (aiohttp) client: ``--count`` messages a run. Its own
  CPU competes with the gateway's on a small machine, so both gateways can end up at the
  rate the client can offer.
* ``wrk`` (C, one thread; ``apt-get install -y wrk``): the harness's ``wrk_send.lua``
  against Jasmin and ``data/wrk_agentsms_send.lua`` (the same request shape as
  ``load.py``'s: JSON body, API key, a unique destination each) against agentsms, for
  ``--wrk-seconds`` a run (time-bounded, like the harness's own wrk series). Answers other
  than Jasmin's below 400 and agentsms's ``202`` and socket errors are counted as errors.
  p50/p99 are wrk's. It also prints the gateway's CPU while wrk sent per accepted request
  ("burst"): agentsms delivers during the burst, Jasmin mostly after it.

Each round runs, per client, Jasmin, then every agentsms variant (by default the default
``serve``; ``--variant "--processes 1"`` adds another), each on a fresh database. The
tables give per-client and per-target medians: accepted msg/s, p99 ms, end-to-end msg/s
(first request to last ``submit_sm`` at the SMSC), the gateway's CPU per message (load and
drain), and the ratios against Jasmin.

    .venv/bin/python benchmarks/bench_jasmin.py --peer-dir /scratch/jasmin \\
        [--rounds 3] [--client load.py|wrk|both] [--count 5000] [--wrk-seconds 5] \\
        [--concurrency 32] [--variant "--processes 1"] [--keep]

The agentsms under test is this checkout's ``src/`` (put first on ``PYTHONPATH`` of the
``agentsms`` script, ``--agentsms-bin``, which may belong to another install).
``--peer-dir`` is a writable copy of the harness folder (without it, a fresh copy of
``../shared/peers/jasmin`` beside this checkout, removed afterwards); it is set up
(``setup.sh``, may take minutes the first time: apt and pip) unless its fake SMSC already
answers, and torn down again afterwards if this script started it (``--keep`` leaves it
running). Redis, RabbitMQ and epmd get ports off the machine's own services
(``REDIS_PORT=16379 AMQP_PORT=5673 EPMD_PORT=4370 RABBIT_DIST_PORT=25673`` unless set in
the environment).

Targets (issue 18): accepted >= 2x Jasmin's ``/send``, p99 <= Jasmin's, end to end >= 3x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import (
    CLOCK_TICKS,
    ROOT,
    Table,
    log,
    machine_note,
    median,
    process_ticks,
    process_tree,
    temp_dir,
)

JASMIN = "Jasmin /send"
HARNESS_PORTS = {
    "REDIS_PORT": "16379",
    "AMQP_PORT": "5673",
    "EPMD_PORT": "4370",
    "RABBIT_DIST_PORT": "25673",
}
SMSC_STATS = "http://127.0.0.1:2777/stats"
SHIPPED_HARNESS = ROOT.parent / "shared" / "peers" / "jasmin"
"""The harness beside this checkout (the task's ``../shared``), copied when no --peer-dir."""
SMSC_RESET = "http://127.0.0.1:2777/reset"
JASMIN_HTTP = "http://127.0.0.1:1401"
AGENTSMS_PORT = "8301"
WRK_AGENTSMS_LUA = Path(__file__).resolve().parent / "data" / "wrk_agentsms_send.lua"
CLIENTS = ("load.py", "wrk")


@dataclass(frozen=True)
class Run:
    client: str
    target: str
    accepted: float
    p50_ms: float
    p99_ms: float
    e2e: float
    ok: int
    errors: int
    delivered: int
    cpu_seconds: float  # the gateway's processes, from the first request to the last submit
    burst_cpu_seconds: float = float("nan")  # the same while the client sends (wrk only)

    @property
    def cpu_ms_per_message(self) -> float:
        return self.cpu_seconds / self.delivered * 1000 if self.delivered else float("nan")

    @property
    def burst_cpu_ms_per_request(self) -> float:
        return self.burst_cpu_seconds / self.ok * 1000 if self.ok else float("nan")


def harness_env(peer_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for the harness's scripts: its folder, moved ports, this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSMS_")}
    for name, port in HARNESS_PORTS.items():
        env.setdefault(name, port)
    env["PEER_DIR"] = str(peer_dir)
    # The agentsms under test is this checkout's source, whichever install the script is.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
    )
    env.update(extra)
    return env


def smsc_up() -> bool:
    try:
        return httpx.get(SMSC_STATS, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def script(peer_dir: Path, name: str, env: dict[str, str], timeout: float) -> None:
    """Run one of the harness's shell scripts; its output goes to our stderr."""
    subprocess.run(
        [str(peer_dir / name)],
        cwd=peer_dir,
        env=env,
        check=True,
        timeout=timeout,
        stdout=sys.stderr,
    )


def gateway_roots(peer_dir: Path, mode: str) -> list[int]:
    """The processes of the gateway ``mode`` loads: the harness's Jasmin stack (jasmind, its
    DLR daemons, Redis, RabbitMQ, epmd; not the fake SMSC) for ``http``, else the processes
    ``agentsms/start.sh`` started."""
    folder = peer_dir / "run" / ("pids" if mode == "http" else "pids-extra")
    return [
        int(path.read_text().strip())
        for path in sorted(folder.glob("*.pid"))
        if path.stem != "fake_smsc"
    ]


def gateway_ticks(roots: list[int]) -> dict[int, int]:
    """CPU clock ticks used so far by each process of the gateway's process trees."""
    return {
        pid: ticks
        for root in roots
        for pid in process_tree(root)
        if (ticks := process_ticks(pid)) is not None
    }


def load_py(peer_dir: Path, args: argparse.Namespace, mode: str, *extra: str) -> dict[str, Any]:
    """One ``load.py`` run; its JSON result, with ``gateway_cpu_seconds`` added: what the
    gateway's processes used during the run (load and drain)."""
    roots = gateway_roots(peer_dir, mode)
    before = gateway_ticks(roots)
    out = subprocess.run(
        [
            str(peer_dir / "tools-venv" / "bin" / "python"),
            str(peer_dir / "load.py"),
            mode,
            "--count",
            str(args.count),
            "--concurrency",
            str(args.concurrency),
            "--out",
            str(peer_dir / "results" / "bench_jasmin.jsonl"),
            *extra,
        ],
        cwd=peer_dir,
        env=harness_env(peer_dir),
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    after = gateway_ticks(roots)
    result: dict[str, Any] = json.loads(out)
    used = sum(ticks - before.get(pid, 0) for pid, ticks in after.items())
    result["gateway_cpu_seconds"] = used / CLOCK_TICKS
    return result


def as_run(target: str, result: dict[str, Any]) -> Run:
    return Run(
        client="load.py",
        target=target,
        accepted=float(result["accepted_msgs_per_s"] or 0.0),
        p50_ms=float(result["lat_ms"]["p50"] or float("nan")),
        p99_ms=float(result["lat_ms"]["p99"] or float("nan")),
        e2e=float(result["e2e_msgs_per_s"] or 0.0),
        ok=int(result["requests_ok"]),
        errors=sum(result["errors"].values()),
        delivered=int(result["smsc_submits"]),
        cpu_seconds=float(result["gateway_cpu_seconds"]),
    )


WRK_LINES = {
    "summary": re.compile(
        r"wrk: requests=(?P<requests>\d+) errors\(status/socket\)=(?P<status>\d+)/(?P<socket>\d+)"
        r" duration_s=(?P<duration>[\d.]+)"
    ),
    "latency": re.compile(r"wrk: latency_ms p50=(?P<p50>[\d.]+) p90=[\d.]+ p99=(?P<p99>[\d.]+)"),
    "statuses": re.compile(r"wrk: status_202=(?P<accepted>\d+) status_other=(?P<other>\d+)"),
}


def smsc_stats() -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(SMSC_STATS, timeout=5).json()
    return stats


def wait_drain(accepted: int, drain_timeout: float = 180.0, stall: float = 20.0) -> dict[str, Any]:
    """Poll the fake SMSC until it has seen ``accepted`` submits and no more arrive for half a
    second (requests in flight when wrk stopped may still have been accepted), or until it
    stalls for ``stall`` seconds or ``drain_timeout`` passes; its last stats."""
    end = time.monotonic() + drain_timeout
    last_count, last_change = -1, time.monotonic()
    while True:
        stats = smsc_stats()
        now = time.monotonic()
        if stats["submits"] != last_count:
            last_count, last_change = stats["submits"], now
        quiet = now - last_change
        if (stats["submits"] >= accepted and quiet >= 0.5) or quiet >= stall or now >= end:
            return stats
        time.sleep(0.1)


def load_wrk(
    peer_dir: Path, args: argparse.Namespace, target: str, settings: dict[str, str] | None
) -> Run:
    """One wrk run of ``--wrk-seconds`` (one thread, ``--concurrency`` keep-alive
    connections): the harness's ``wrk_send.lua`` against Jasmin's ``/send`` when ``settings``
    is None, else ``data/wrk_agentsms_send.lua`` against the agentsms in ``settings``; then
    wait until the fake SMSC has seen every accepted message.

    Time-bounded, as the harness's own wrk series: wrk reports its duration as the whole
    ``-d`` even when a script stops its thread early, so the scripts' request cap
    (``MAX_REQ``) is set out of reach. Accepted: Jasmin's answers below 400 (wrk counts 4xx
    and 5xx as status errors; the harness's script counts its 200s but does not print them),
    agentsms's 202s; every other answer and every socket error is an error. Latency
    percentiles are wrk's, over every answer. End to end: the SMSC's submits from just before
    wrk starts to the last submit_sm. CPU: the gateway's processes over the same span, and
    over wrk's run alone (the burst: what each accepted request cost the machine while
    requests came, delivery done meanwhile included)."""
    env = {**os.environ, "MAX_REQ": str(10**9)}
    if settings is None:
        mode, script_path, url = "http", peer_dir / "wrk_send.lua", JASMIN_HTTP
    else:
        mode, script_path, url = "agentsms", WRK_AGENTSMS_LUA, settings["AGENTSMS_BASE"]
        env["AGENTSMS_API_KEY"] = settings["AGENTSMS_API_KEY"]
        env["AGENTSMS_FROM"] = settings["AGENTSMS_FROM"]
    roots = gateway_roots(peer_dir, mode)
    httpx.post(SMSC_RESET, timeout=5)
    before = gateway_ticks(roots)
    started = time.time()
    completed = subprocess.run(
        [
            *("wrk", "-t1", f"-c{args.concurrency}", f"-d{args.wrk_seconds}s"),
            *("--timeout", "30s"),
            *("-s", str(script_path), url),
        ],
        cwd=peer_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=args.wrk_seconds + 90,
        check=False,
    )
    ended = time.time()
    during = gateway_ticks(roots)
    found = {name: pattern.search(completed.stdout) for name, pattern in WRK_LINES.items()}
    summary, latency = found["summary"], found["latency"]
    if summary is None or latency is None or (settings is not None and not found["statuses"]):
        raise RuntimeError(f"wrk failed:\n{completed.stdout}\n{completed.stderr}")
    requests, socket_errors = int(summary["requests"]), int(summary["socket"])
    if found["statuses"] is not None:
        ok = int(found["statuses"]["accepted"])
        errors = int(found["statuses"]["other"]) + socket_errors
    else:
        ok = requests - int(summary["status"])
        errors = int(summary["status"]) + socket_errors
    stats = wait_drain(ok)
    after = gateway_ticks(roots)
    delivered = int(stats["submits"])
    last_submit = float(stats["last_ts"] or ended)
    duration = float(summary["duration"])
    return Run(
        client="wrk",
        target=target,
        accepted=ok / duration if duration else 0.0,
        p50_ms=float(latency["p50"]),
        p99_ms=float(latency["p99"]),
        e2e=delivered / (max(last_submit, ended) - started) if delivered else 0.0,
        ok=ok,
        errors=errors,
        delivered=delivered,
        cpu_seconds=sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) / CLOCK_TICKS,
        burst_cpu_seconds=sum(ticks - before.get(pid, 0) for pid, ticks in during.items())
        / CLOCK_TICKS,
    )


def run_jasmin(peer_dir: Path, args: argparse.Namespace, client: str) -> Run:
    if client == "wrk":
        return load_wrk(peer_dir, args, JASMIN, None)
    return as_run(JASMIN, load_py(peer_dir, args, "http"))


def run_agentsms(
    peer_dir: Path, args: argparse.Namespace, variant: str, data: Path, client: str
) -> Run:
    """Start agentsms (``serve`` + ``variant``) on a fresh database, load it, stop it."""
    env = harness_env(
        peer_dir,
        AGENTSMS_BIN=str(args.agentsms_bin),
        AGENTSMS_DATA=str(data),
        AGENTSMS_PORT=AGENTSMS_PORT,
        SERVE_ARGS=f"--no-access-log {variant}".strip(),
        # The fake SMSC is on loopback: the operator allows that private address.
        AGENTSMS_TRUSTED_PRIVATE_HOSTS="127.0.0.1",
    )
    try:
        script(peer_dir, "agentsms/start.sh", env, timeout=120)
        settings = dict(
            line.split("=", 1)
            for line in (peer_dir / "run" / "agentsms.env").read_text().splitlines()
            if "=" in line
        )
        target = f"agentsms serve {variant}".strip()
        if client == "wrk":
            return load_wrk(peer_dir, args, target, settings)
        result = load_py(
            peer_dir,
            args,
            "agentsms",
            "--base",
            settings["AGENTSMS_BASE"],
            "--api-key",
            settings["AGENTSMS_API_KEY"],
            "--from-number",
            settings["AGENTSMS_FROM"],
        )
    finally:
        script(peer_dir, "agentsms/stop.sh", env, timeout=60)
    return as_run(target, result)


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


def report(all_runs: list[tuple[int, Run]], targets: list[str], client: str) -> None:
    runs = [(round_no, run) for round_no, run in all_runs if run.client == client]
    table = Table(
        f"client {client}: every run (interleaved)",
        [
            "target",
            "round",
            "ok",
            "errors",
            "at SMSC",
            "accepted/s",
            "p50 ms",
            "p99 ms",
            "e2e/s",
            "CPU ms/msg",
            "burst CPU ms/req",
        ],
    )
    for round_no, run in runs:
        table.add(
            run.target,
            round_no,
            run.ok,
            run.errors,
            run.delivered,
            run.accepted,
            run.p50_ms,
            run.p99_ms,
            run.e2e,
            run.cpu_ms_per_message,
            run.burst_cpu_ms_per_request,
        )
    table.print()
    for round_no, run in runs:
        if run.errors or run.delivered < run.ok:
            print(
                f"!! {run.target}, round {round_no}: {run.errors} failed requests;"
                f" {max(0, run.ok - run.delivered)} accepted messages not at the SMSC"
                " after the drain wait"
            )

    def medians(target: str) -> tuple[float, float, float, float, float]:
        mine = [run for _, run in runs if run.target == target]
        return (
            median([r.accepted for r in mine]),
            median([r.p99_ms for r in mine]),
            median([r.e2e for r in mine]),
            median([r.cpu_ms_per_message for r in mine]),
            median([r.burst_cpu_ms_per_request for r in mine]),
        )

    jasmin = medians(JASMIN)
    summary = Table(
        f"client {client}: summary (medians over rounds; ratio = agentsms / Jasmin)",
        [
            "target",
            "accepted/s",
            "x Jasmin (>= 2)",
            "p99 ms",
            "<= Jasmin's",
            "e2e/s",
            "x Jasmin (>= 3)",
            "CPU ms/msg",
            "Jasmin's / ours",
            "burst CPU ms/req",
            "verdict",
        ],
    )
    summary.add(JASMIN, jasmin[0], "", jasmin[1], "", jasmin[2], "", jasmin[3], "", jasmin[4], "")
    for target in targets:
        accepted, p99, e2e, cpu, burst = medians(target)
        clean = all(
            not run.errors and run.delivered >= run.ok for _, run in runs if run.target == target
        )
        verdict = clean and accepted >= 2 * jasmin[0] and p99 <= jasmin[1] and e2e >= 3 * jasmin[2]
        summary.add(
            target,
            accepted,
            f"{ratio(accepted, jasmin[0]):.2f}x",
            p99,
            "yes" if p99 <= jasmin[1] else "no",
            e2e,
            f"{ratio(e2e, jasmin[2]):.2f}x",
            cpu,
            f"{ratio(jasmin[3], cpu):.2f}x",
            burst,
            "ok" if verdict else "below target",
        )
    summary.print()


def explain(args: argparse.Namespace, clients: list[str]) -> None:
    print(
        "\nCPU ms/msg: CPU time of the gateway's processes (Jasmin: jasmind, its DLR daemons, "
        "Redis, RabbitMQ; agentsms: every serve process) from the first request to the last "
        "submit_sm, per message at the SMSC. Jasmin's / ours: how many times more messages "
        "agentsms carries per CPU second, i.e. its rate beside Jasmin's on equal cores to "
        "itself (the load client and the fake SMSC share this machine's 2 cores with both). "
        "burst CPU ms/req (wrk): the gateway's CPU while wrk sent, per accepted request; "
        "agentsms delivers meanwhile, Jasmin mostly afterwards."
    )
    clients_note = {
        "load.py": "load.py (Python, aiohttp; its CPU competes with the gateway's for the cores)",
        "wrk": "wrk -t1 (C; the harness's wrk_send.lua for Jasmin, data/wrk_agentsms_send.lua"
        " for agentsms; p50/p99 are wrk's)",
    }
    print(
        f"single sends at {args.concurrency} keep-alive connections, {args.count} a run with"
        f" load.py, {args.wrk_seconds} s a run with wrk;"
        " the same fake SMSC and one SMPP bind for both gateways; clients: "
        + "; ".join(clients_note[c] for c in clients)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--peer-dir",
        type=Path,
        default=os.environ.get("PEER_DIR"),
        help="a writable copy of the Jasmin harness folder (or PEER_DIR; by default a fresh"
        " copy of ../shared/peers/jasmin, set up and torn down again)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=5000, help="messages per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--wrk-seconds",
        type=int,
        default=5,
        help="length of a wrk run (wrk runs are time-bounded; --count is load.py's)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help='extra `agentsms serve` arguments to measure as well, e.g. "--processes 1"',
    )
    parser.add_argument(
        "--agentsms-bin",
        type=Path,
        default=Path(sys.executable).with_name("agentsms"),
        help="the agentsms script to run (this checkout's src/ is put first on its path)",
    )
    parser.add_argument(
        "--client",
        choices=[*CLIENTS, "both"],
        default="both",
        help="the load client: the harness's load.py (Python), wrk (C), or both in every round",
    )
    parser.add_argument("--keep", action="store_true", help="leave Jasmin running afterwards")
    args = parser.parse_args()
    clients = list(CLIENTS) if args.client == "both" else [args.client]
    if "wrk" in clients and shutil.which("wrk") is None:
        if args.client == "wrk":
            parser.error(
                "wrk is not installed (Debian/Ubuntu: apt-get install -y wrk);"
                " or pass --client load.py"
            )
        log("wrk is not installed (apt-get install -y wrk): load.py only")
        clients = ["load.py"]
    with contextlib.ExitStack() as stack:
        if args.peer_dir is None:
            if args.keep:
                parser.error("--keep needs --peer-dir: a fresh copy is removed afterwards")
            if not SHIPPED_HARNESS.is_dir():
                parser.error(
                    f"--peer-dir (or PEER_DIR) is required: no harness at {SHIPPED_HARNESS}"
                )
            args.peer_dir = stack.enter_context(temp_dir("agentsms-bench-peer-")) / "jasmin"
            shutil.copytree(SHIPPED_HARNESS, args.peer_dir)
            log(f"using a fresh copy of {SHIPPED_HARNESS}: {args.peer_dir}")
        run_rounds(args, clients)


def run_rounds(args: argparse.Namespace, clients: list[str]) -> None:
    """Every round for every client, then their tables."""
    peer_dir = args.peer_dir.resolve()
    print(machine_note())

    started_here = not smsc_up()
    if started_here:
        log("setting the Jasmin harness up (setup.sh; minutes on the first run)")
        script(peer_dir, "setup.sh", harness_env(peer_dir), timeout=1800)
    targets = ["agentsms serve", *(f"agentsms serve {v}" for v in args.variant)]
    runs: list[tuple[int, Run]] = []
    try:
        with temp_dir("agentsms-bench-jasmin-") as scratch:
            for round_no in range(1, args.rounds + 1):
                for client in clients:
                    log(f"round {round_no}, {client}: {JASMIN}")
                    runs.append((round_no, run_jasmin(peer_dir, args, client)))
                    for index, variant in enumerate(["", *args.variant]):
                        log(f"round {round_no}, {client}: agentsms serve {variant}")
                        data = scratch / f"r{round_no}-{client}-v{index}"
                        run = run_agentsms(peer_dir, args, variant, data, client)
                        runs.append((round_no, run))
    finally:
        if started_here and not args.keep:
            script(peer_dir, "teardown.sh", harness_env(peer_dir), timeout=120)
    for client in clients:
        report(runs, targets, client)
    explain(args, clients)


if __name__ == "__main__":
    main()
