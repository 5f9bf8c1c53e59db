"""Where the event loop was while it stalled: a thread that samples the loop thread's stack.

The lag histogram (``metrics.watch_event_loop``) says that the loop woke up late, not what
held it. ``StallSampler`` runs beside the loop: when the loop is ``threshold`` seconds past
the moment it promised to check in, the thread records the loop thread's Python stack (a
few more times while the stall lasts), so that the stall's log line can say which
statement or function held the loop. It holds the GIL only to copy a stack, a few times
per stall; between stalls it wakes ``threshold / 2`` apart and compares two numbers.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from types import FrameType

FRAMES = 12
"""Innermost frames kept of each sample."""
SAMPLES = 4
"""Samples kept per stall (the first at ``threshold``, then one per ``threshold``)."""


class StallSampler:
    """Samples the stack of the thread that created it when it misses its check-in."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._target = threading.get_ident()
        self._due = time.monotonic() + threshold
        self._samples: list[list[str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="agentsms-stall-sampler", daemon=True
        )

    def start(self) -> None:
        """Start the sampling thread."""
        self._thread.start()

    def stop(self) -> None:
        """End the sampling thread (does not wait for it)."""
        self._stop.set()

    def expect(self, seconds: float) -> list[list[str]]:
        """The loop checks in: it will again within ``seconds``. Returns the stacks sampled
        since the last check-in (empty unless the loop was late by ``threshold`` or more)."""
        with self._lock:
            samples, self._samples = self._samples, []
            self._due = time.monotonic() + seconds
        return samples

    def _run(self) -> None:
        while not self._stop.wait(self.threshold / 2):
            with self._lock:
                taken = len(self._samples)
                late = time.monotonic() - self._due
                if taken >= SAMPLES or late < self.threshold * (taken + 1):
                    continue
                frame = sys._current_frames().get(self._target)
                if frame is not None:
                    self._samples.append(_stack(frame))


def _stack(frame: FrameType) -> list[str]:
    """The innermost ``FRAMES`` frames, outermost first, without reading source files."""
    summary = traceback.StackSummary.extract(
        traceback.walk_stack(frame), limit=FRAMES, lookup_lines=False
    )
    return [f"{entry.filename}:{entry.lineno} {entry.name}" for entry in reversed(summary)]
