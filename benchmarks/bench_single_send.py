"""Single sends through ``POST /v1/messages`` beside a bare FastAPI POST (the ceiling).

agentsms: ``agentsms serve --no-worker`` (or ``serve`` with ``--serve-args``, e.g. ``""``
for the default processes with the worker, ``"--processes 1"`` for one process with its
worker inside) on a fresh SQLite file; every request carries the API key and a fresh
``Idempotency-Key`` and is validated, stored durably (message + event + job + idempotency
record) and answered ``202``. The project's rate limit is raised out of the way first.

Ceiling: ``benchmarks/_bare_app.py``, one process under the same uvicorn settings, whose
POST validates the same body with an equivalent pydantic model and answers ``202``.

Both are driven by the same load generator (wrk if installed, else the httpx generator in
``_common.py``) in its own process, alternating targets for ``--rounds`` rounds.

    .venv/bin/python benchmarks/bench_single_send.py [--seconds 10] [--rounds 2]

Targets (issue 2): agentsms >= 35 % of the bare rate, p99 <= 100 ms at 64 connections.
"""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path

import httpx
from _common import (
    PYTHON,
    LoadResult,
    LoadSpec,
    Table,
    agentsms_serve,
    bench_env,
    free_port,
    log,
    machine_note,
    median,
    run_load,
    running_server,
    sqlite_url,
    temp_dir,
)

BODY = json.dumps(
    {
        "to": "+14155552671",
        "body": "Your code is 482913. It expires in 10 minutes.",
        "metadata": {"user_id": "u_1234", "purpose": "login"},
    }
)
BARE_APP = Path(__file__).resolve().parent / "_bare_app.py"


def measure_agentsms(
    workdir: Path, args: argparse.Namespace, api_key: str, database: Path
) -> LoadResult:
    port = free_port()
    env = bench_env(AGENTSMS_DATABASE_URL=sqlite_url(database), AGENTSMS_BOOTSTRAP_API_KEY=api_key)
    with running_server(
        agentsms_serve(port, *args.serve_args.split()),
        port=port,
        env=env,
        workdir=workdir,
        name="agentsms",
    ) as server:
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        response = httpx.patch(
            f"{server.base_url}/v1/project",
            headers=headers,
            json={"settings": {"rate_limit_per_second": 1_000_000}},
        )
        response.raise_for_status()
        probe = httpx.post(f"{server.base_url}/v1/messages", headers=headers, content=BODY)
        if probe.status_code != 202:
            raise RuntimeError(f"probe send failed: {probe.status_code} {probe.text}")
        return run_load(
            LoadSpec(
                url=f"{server.base_url}/v1/messages",
                body=BODY,
                headers=headers,
                connections=args.connections,
                seconds=args.seconds,
                warmup=args.warmup,
            ),
            tool=args.loadgen,
            workdir=workdir,
        )


def measure_bare(workdir: Path, args: argparse.Namespace) -> LoadResult:
    port = free_port()
    with running_server(
        [PYTHON, str(BARE_APP), "--port", str(port)],
        port=port,
        env=bench_env(),
        workdir=workdir,
        name="bare",
    ) as server:
        return run_load(
            LoadSpec(
                url=f"{server.base_url}/v1/messages",
                body=BODY,
                headers={"Authorization": "Bearer unused", "Content-Type": "application/json"},
                connections=args.connections,
                seconds=args.seconds,
                warmup=args.warmup,
            ),
            tool=args.loadgen,
            workdir=workdir,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured time per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="bare + agentsms pairs")
    parser.add_argument("--serve-args", default="--no-worker", help="arguments of `agentsms serve`")
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="auto = wrk when installed, else the httpx generator",
    )
    args = parser.parse_args()
    print(machine_note())

    runs = Table(
        f"single sends, {args.connections} connections, {args.seconds:g} s per run",
        ["round", "target", "generator", "requests", "errors", "req/s", "p50 ms", "p99 ms"],
    )
    bare: list[LoadResult] = []
    ours: list[LoadResult] = []
    with temp_dir() as workdir:
        api_key = "ask_bench_" + secrets.token_urlsafe(16)
        database = workdir / "agentsms.db"
        for round_no in range(1, args.rounds + 1):
            log(f"round {round_no}: bare FastAPI")
            result = measure_bare(workdir, args)
            bare.append(result)
            runs.add(
                round_no,
                "bare FastAPI",
                result.tool,
                result.requests,
                result.errors,
                result.rps,
                result.p50_ms,
                result.p99_ms,
            )
            log(f"round {round_no}: agentsms POST /v1/messages")
            result = measure_agentsms(workdir, args, api_key, database)
            ours.append(result)
            runs.add(
                round_no,
                "agentsms",
                result.tool,
                result.requests,
                result.errors,
                result.rps,
                result.p50_ms,
                result.p99_ms,
            )
            if result.statuses:
                log(f"agentsms non-202 answers: {result.statuses}")
    runs.print()

    bare_rps = median([r.rps for r in bare])
    our_rps = median([r.rps for r in ours])
    our_p99 = median([r.p99_ms for r in ours])
    summary = Table(
        "summary (medians over rounds)",
        ["measure", "agentsms", "bare FastAPI", "ratio / target", "verdict"],
    )
    ratio = our_rps / bare_rps if bare_rps else float("nan")
    summary.add(
        "req/s",
        our_rps,
        bare_rps,
        f"{ratio:.1%} / >= 35 %",
        "ok" if ratio >= 0.35 else "below target",
    )
    summary.add(
        "p50 ms", median([r.p50_ms for r in ours]), median([r.p50_ms for r in bare]), "", ""
    )
    summary.add(
        "p99 ms",
        our_p99,
        median([r.p99_ms for r in bare]),
        "<= 100 ms",
        "ok" if our_p99 <= 100 else "above target",
    )
    summary.print()
    print(f"\nload generator: {ours[0].tool} in its own process, same for both targets")
    if ours[0].tool != "wrk":
        print(
            "warning: the httpx generator tops out near 1,000 req/s on a 2-core machine, so the"
            " bare figure is the generator's limit and the ratio is overstated; install wrk"
            " (apt-get install -y wrk) for a meaningful ratio"
        )


if __name__ == "__main__":
    main()
