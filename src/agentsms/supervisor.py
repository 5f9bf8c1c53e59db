"""``agentsms serve`` on every core: a supervisor, API processes sharing one socket, a worker.

The supervisor binds the listening socket, prepares the database once (SQLite migrations,
the credentials key, the bootstrap key), then forks the children: ``api_processes`` API
servers that all accept on that socket (each with its own event loop, connection pool and
group commit), and a dispatch worker process. Forking after the imports shares the start-up
objects (frozen out of the garbage collector's sight, see ``runtime.tune_gc``) between them.

SIGTERM or SIGINT to the supervisor is passed on once to every child as SIGTERM: API
processes finish their requests, the worker finishes the jobs in hand, then the supervisor
exits. A child that dies on its own after its start-up is started again; one that dies
during start-up stops everything (a crash loop helps no one). Children are in a process
group of their own (a terminal's Ctrl-C reaches only the supervisor, which then signals
each child once) and die with it: on Linux the kernel sends them SIGKILL when it dies
(``PR_SET_PDEATHSIG``), elsewhere a thread in each child watches for its parent to go.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

import structlog

log = structlog.get_logger("agentsms.supervisor")

STARTUP_SECONDS = 10.0
"""A child that exits sooner than this after its start failed to start: stop everything."""
STOP_GRACE_SECONDS = 60.0
"""How long children get to drain after SIGTERM before they are killed."""
PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ProcessPlan:
    """How many API processes to run, and whether the worker gets a process of its own."""

    api_processes: int
    worker_process: bool

    @property
    def supervised(self) -> bool:
        """More than one process: a supervisor and its children."""
        return self.api_processes > 1 or self.worker_process


def usable_cores() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def plan_processes(requested: int | None, *, run_worker: bool, cores: int) -> ProcessPlan:
    """The processes ``serve`` runs.

    ``requested`` API processes if given (1: API and worker in one process, as a single
    ``serve`` always was); by default one per core but one, plus the worker in a process of
    its own, and everything in one process on a single core.
    """
    if requested == 1 or (requested is None and cores < 2):
        return ProcessPlan(api_processes=1, worker_process=False)
    api = requested if requested is not None else max(1, cores - 1)
    return ProcessPlan(api_processes=api, worker_process=run_worker)


Target = Callable[[], None]


@dataclass
class _Child:
    role: str
    target: Target
    process: BaseProcess
    started: float


class Supervisor:
    """Runs ``api`` in ``plan.api_processes`` children and ``worker`` in one (if planned)."""

    def __init__(
        self, plan: ProcessPlan, listener: socket.socket, *, api: Target, worker: Target
    ) -> None:
        self.plan = plan
        self.listener = listener
        self._api = api
        self._worker = worker
        self._context = multiprocessing.get_context("fork")
        self._children: list[_Child] = []
        self._stop_signal: int | None = None

    def run(self) -> int:
        """Start the children, keep them running until SIGTERM/SIGINT; the exit status."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            if self.plan.worker_process:
                self._start("worker", self._worker_main)
            for _ in range(self.plan.api_processes):
                self._start("api", self._api)
            log.info(
                "serve.processes",
                supervisor=os.getpid(),
                children={child.process.pid: child.role for child in self._children},
            )
            status = self._watch()
            self._stop_children()
            return status
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _worker_main(self) -> None:
        self.listener.close()  # only API processes accept connections
        self._worker()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_signal = signum

    def _start(self, role: str, target: Target) -> None:
        process = self._context.Process(
            target=_child_main, args=(target, os.getpid()), name=f"agentsms-{role}"
        )
        process.start()
        self._children.append(_Child(role, target, process, time.monotonic()))

    def _watch(self) -> int:
        """Until a stop signal (0) or a child failing at start-up (1)."""
        while self._stop_signal is None:
            wait([child.process.sentinel for child in self._children], timeout=0.2)
            for child in list(self._children):
                if child.process.is_alive() or self._stop_signal is not None:
                    continue
                self._children.remove(child)
                lived = time.monotonic() - child.started
                log.error(
                    "serve.child_exited",
                    role=child.role,
                    pid=child.process.pid,
                    exitcode=child.process.exitcode,
                    lived_seconds=round(lived, 1),
                )
                if lived < STARTUP_SECONDS:
                    return 1
                self._start(child.role, child.target)
        log.info("serve.stopping", signal=signal.Signals(self._stop_signal).name)
        return 0

    def _stop_children(self) -> None:
        for child in self._children:
            if child.process.is_alive() and child.process.pid is not None:
                os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self._children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                log.error("serve.child_killed", role=child.role, pid=child.process.pid)
                child.process.kill()
                child.process.join()
        log.info("serve.stopped")


def _child_main(target: Target, parent: int) -> None:
    """A child's start: default signal handling, its own process group, dying with
    ``parent``; then ``target``."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else signal.default_int_handler)
    os.setpgid(0, 0)
    _die_with(parent)
    target()


def _die_with(parent: int) -> None:
    """End this process when ``parent`` ends (even by ``kill -9``)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)
