"""SQLite WAL checkpoints on a thread of their own, off the request path.

In WAL mode a commit only appends to the ``-wal`` file; a checkpoint copies those pages
back into the database file. By default SQLite does that inside whichever commit finds
the log over 1,000 pages, so one request in every few pays for the writes of several
(about half of a 1,000-recipient batch's commit: see the README's "Benchmarks"). SQLite's
documentation offers the
alternative used here: run the checkpoints "in a separate thread". The thread has its own
connection, checkpoints a moment after writes were committed (coalescing a burst of
commits into one checkpoint), and uses PASSIVE checkpoints, which never block readers or
writers. The sqlite3 module releases the GIL while SQLite works, so the copying runs
beside the event loop.

Connections that write keep SQLite's own automatic checkpoint with a higher threshold
(``SAFETY_AUTOCHECKPOINT_PAGES``) as a backstop: if this thread ever falls behind, the log
still stops growing there.
"""

from __future__ import annotations

import sqlite3
import threading

import structlog

log = structlog.get_logger("agentsms.store")

SAFETY_AUTOCHECKPOINT_PAGES = 10_000
"""The commit-time checkpoint threshold while a checkpointer runs (SQLite's default: 1,000)."""
COALESCE_SECONDS = 0.05
"""How long after a commit the checkpoint waits, so a burst of commits shares one."""


class WalCheckpointer:
    """Checkpoints the WAL of the SQLite file at ``path`` after writes, on its own thread.

    Call ``written()`` after each committed write transaction; ``stop()`` once at the end.
    The thread starts on the first ``written()``.
    """

    def __init__(self, path: str, *, coalesce_seconds: float = COALESCE_SECONDS) -> None:
        self.path = path
        self.coalesce_seconds = coalesce_seconds
        self.checkpoints = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the thread is alive (it starts on the first write)."""
        return self._thread is not None and self._thread.is_alive()

    def written(self) -> None:
        """A write transaction committed: a checkpoint is due soon."""
        if self._thread is None:
            self._start()
        self._wake.set()

    def stop(self) -> None:
        """Checkpoint what is left and end the thread (waits for it)."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="agentsms-wal-checkpoint", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # A PASSIVE checkpoint never waits on a lock; it does what it can now.
            connection.execute("PRAGMA busy_timeout=0")
            while True:
                self._wake.wait()
                self._wake.clear()
                # Let the burst of commits that woke us finish first (or stop at once).
                stopping = self._stopping.wait(self.coalesce_seconds)
                self._checkpoint(connection)
                if stopping:
                    return
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as error:  # e.g. another checkpoint running: the next one will do
            log.debug("sqlite.checkpoint_skipped", error=str(error))
