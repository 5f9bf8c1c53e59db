"""A debugging aid for memory growth: periodic ``tracemalloc`` reports, off by default.

With ``AGENTSMS_MEMORY_TRACE_DIR`` set, every server process (API, worker) traces Python's
allocations and, every ``AGENTSMS_MEMORY_TRACE_SECONDS``, writes
``<dir>/memtrace-<pid>-<n>.txt``: the process's RSS, the memory Python and SQLite hold, the
allocation sites that grew most since the first report (by traceback) and the largest ones
now, and the most numerous object types. Growth of RSS that neither Python nor SQLite
accounts for is the allocator's (fragmentation). Tracing costs CPU and each report holds
the event loop while it is taken: never in production.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import os
import tracemalloc
from collections import Counter
from pathlib import Path

import structlog

log = structlog.get_logger("agentsms.memtrace")

FRAMES = 8
"""Frames kept per allocation (agentsms code lies a few frames below the library call
that allocated; more frames cost more on every allocation)."""
TOP = 25


def rss_mib() -> float:
    """This process's resident set size in MiB (0 where ``/proc`` is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sqlite_memory_mib() -> float | None:
    """Memory SQLite's allocator holds in this process (``sqlite3_memory_used``), when the
    SQLite library can be found."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)  # the copy already loaded by the sqlite3 module
    except OSError:
        return None
    library.sqlite3_memory_used.restype = ctypes.c_int64
    return int(library.sqlite3_memory_used()) / 2**20


def report(first: tracemalloc.Snapshot | None, now: tracemalloc.Snapshot) -> str:
    """The text of one report: totals, growth since ``first``, top sites, object types."""
    traced, peak = tracemalloc.get_traced_memory()
    sqlite = sqlite_memory_mib()
    lines = [
        f"pid {os.getpid()}: RSS {rss_mib():.1f} MiB, Python traced {traced / 2**20:.1f} MiB "
        f"(peak {peak / 2**20:.1f}), SQLite "
        + ("unknown" if sqlite is None else f"{sqlite:.1f} MiB"),
        "",
    ]
    if first is not None:
        lines.append(f"grown most since the first report (top {TOP}):")
        for diff in now.compare_to(first, "traceback")[:TOP]:
            lines.append(
                f"{diff.size_diff / 1024:+10.1f} KiB {diff.count_diff:+8d} blocks "
                f"(now {diff.size / 1024:.1f} KiB)"
            )
            lines.extend(_frames(diff.traceback))
        lines.append("")
    lines.append(f"largest now (top {TOP}):")
    for stat in now.statistics("traceback")[:TOP]:
        lines.append(f"{stat.size / 1024:10.1f} KiB {stat.count:8d} blocks")
        lines.extend(_frames(stat.traceback))
    lines += ["", "most numerous objects tracked by the collector:"]
    types = Counter(type(o).__name__ for o in gc.get_objects())
    lines.extend(f"{count:10d} {name}" for name, count in types.most_common(TOP))
    return "\n".join(lines) + "\n"


def start(directory: str | None, every: float) -> asyncio.Task[None] | None:
    """The reporting task when ``directory`` is set (the caller cancels it at the end)."""
    if not directory:
        return None
    return asyncio.create_task(trace_memory(directory, every), name="agentsms-memtrace")


def _frames(traceback: tracemalloc.Traceback) -> list[str]:
    return [f"      {line}" for line in traceback.format(most_recent_first=True)]


async def trace_memory(directory: str, every: float) -> None:
    """Forever: every ``every`` seconds write a report of this process into ``directory``."""
    if not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)
    log.warning("memtrace.on", directory=directory, every=every)
    first: tracemalloc.Snapshot | None = None
    for n in range(1, 10**9):
        await asyncio.sleep(every)
        snapshot = await asyncio.to_thread(_write_report, Path(directory), n, first)
        first = first or snapshot


def _write_report(folder: Path, n: int, first: tracemalloc.Snapshot | None) -> tracemalloc.Snapshot:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"memtrace-{os.getpid()}-{n:03d}.txt").write_text(report(first, snapshot))
    return snapshot
