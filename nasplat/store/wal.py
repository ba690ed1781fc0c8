"""WAL checkpoints of a SQLite store, off the committing thread.

SQLite's automatic checkpoint runs inside the commit that takes the write-ahead log past 1,000
pages: that commit copies the log into the database file and syncs both, which was about a
fifth of a trivial trial's store time (benchmarks/overhead.py, "Seventh pass"). A writing
store's connections checkpoint on commit only past :data:`WAL_BOUND_PAGES`, and
:class:`WalCheckpointer`'s thread runs a ``PASSIVE`` checkpoint (which never waits for readers
or writers) every ``every`` commits on its own connection. When trials take longer than a
checkpoint, the thread's checkpoint completes between commits, the next commit starts the log
afresh and the loop's thread never checkpoints; a loop that commits faster than that falls
back to the commit's own checkpoint at the bound, which bounds the log (16 MB of 4 KB pages).
Durability is unchanged: a commit is in the log when it returns, as before; a checkpoint only
moves it into the database file. When the last connection closes, SQLite checkpoints what is
left and removes the log, as before.
"""

from __future__ import annotations

import sqlite3
import threading

WAL_BOUND_PAGES = 4000
"""A commit that takes the log past this many pages checkpoints it itself (SQLite's default:
1,000)."""


class WalCheckpointer:
    """Checkpoints ``path``'s WAL on a daemon thread, started on the ``every``-th commit."""

    def __init__(self, path: str, every: int = 100) -> None:
        self.path = path
        self.every = every
        self.checkpoints = 0  # completed checkpoint calls (for tests and benchmarks)
        self._commits = 0
        self._wake = threading.Event()
        self._state = threading.Condition()
        self._requested = 0  # wake-ups asked for; a checkpoint covers those before its start
        self._covered = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """Count a commit; every ``every``-th one wakes the thread (starting it if needed)."""
        self._commits += 1
        if self._commits % self.every == 0:
            self._request()

    def flush(self, timeout: float = 60) -> bool:
        """Checkpoint everything committed so far and wait for it; False on timeout."""
        target = self._request()
        with self._state:
            return self._state.wait_for(lambda: self._covered >= target, timeout)

    def _request(self) -> int:
        with self._state:
            if self._stopping:
                return 0
            self._requested += 1
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(
                    target=self._run, name="nasplat-wal-checkpoint", daemon=True
                )
                self._thread.start()
            target = self._requested
        self._wake.set()
        return target

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                with self._state:
                    if self._stopping:
                        return
                    target = self._requested
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy or gone: the next wake-up tries again
                with self._state:
                    self.checkpoints += 1
                    self._covered = target
                    self._state.notify_all()
        finally:
            connection.close()

    def close(self) -> None:
        """Stop the thread (its connection closes; a running checkpoint finishes first)."""
        with self._state:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
