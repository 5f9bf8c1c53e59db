"""Prometheus metrics kept by this process."""

from __future__ import annotations

import asyncio
import os
import time
from functools import cache

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agentsms.stalls import StallSampler

log = structlog.get_logger("agentsms.metrics")

registry = CollectorRegistry()

http_requests = Counter(
    "agentsms_http_requests_total",
    "HTTP requests handled",
    ["method", "route", "status"],
    registry=registry,
)
http_latency = Histogram(
    "agentsms_http_request_seconds",
    "HTTP request duration",
    ["method", "route"],
    registry=registry,
)
messages_by_status = Gauge(
    "agentsms_messages",
    "Messages in the database by status (counted at most every"
    " AGENTSMS_METRICS_COUNTS_MAX_AGE_SECONDS, off the event loop)",
    ["status"],
    registry=registry,
)
queue_depth = Gauge(
    "agentsms_queue_depth",
    "Jobs waiting or running, by kind and status (read at scrape time)",
    ["kind", "status"],
    registry=registry,
)
job_latency = Histogram(
    "agentsms_job_latency_seconds",
    "Time from a job being due to a worker claiming it",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=registry,
)
provider_latency = Histogram(
    "agentsms_provider_send_seconds",
    "Duration of one provider send call (a batch of messages)",
    ["provider"],
    registry=registry,
)
provider_outcomes = Counter(
    "agentsms_provider_outcomes_total",
    "Provider answers by outcome",
    ["provider", "outcome"],
    registry=registry,
)


def observe_job_latency(kind: str, seconds: float) -> None:
    _job_latency_of(kind).observe(seconds)


@cache
def _job_latency_of(kind: str) -> Histogram:
    # A worker observes every job it claims: look the labelled series up once per kind.
    return job_latency.labels(kind=kind)


db_write_wait = Histogram(
    "agentsms_db_write_wait_seconds",
    "How long a write transaction waited to begin: for its turn in this process and, on "
    "SQLite, for another process's writer",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=registry,
)
db_write_hold = Histogram(
    "agentsms_db_write_hold_seconds",
    "How long a SQLite write transaction held the database's write lock",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=registry,
)
event_loop_lag = Histogram(
    "agentsms_event_loop_lag_seconds",
    "How late this process's event loop woke a timer (a stall shows as a large value)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
    registry=registry,
)

LOOP_LAG_INTERVAL_SECONDS = 0.05
STALL_SECONDS = 0.2
"""A loop this late is stalled: logged as ``event_loop.stall`` with where it was held."""


async def watch_event_loop(
    interval: float = LOOP_LAG_INTERVAL_SECONDS, stall: float = STALL_SECONDS
) -> None:
    """Forever: sleep ``interval`` and record how much later than asked the loop woke up.
    A wake-up ``stall`` seconds late or more is also logged, with the process's CPU time
    meanwhile and the stacks a ``StallSampler`` took while the loop was held."""
    loop = asyncio.get_running_loop()
    sampler = StallSampler(stall)
    sampler.start()
    try:
        while True:
            asked = loop.time()
            cpu = time.process_time()
            sampler.expect(interval)
            await asyncio.sleep(interval)
            lag = max(0.0, loop.time() - asked - interval)
            event_loop_lag.observe(lag)
            if lag >= stall:
                log.warning(
                    "event_loop.stall",
                    seconds=round(lag, 3),
                    pid=os.getpid(),
                    # Far less CPU than seconds: the process waited for a core (a busy
                    # machine), not for its own work.
                    cpu_seconds=round(time.process_time() - cpu, 3),
                    held_at=["\n".join(stack) for stack in sampler.expect(interval)],
                )
    finally:
        sampler.stop()
