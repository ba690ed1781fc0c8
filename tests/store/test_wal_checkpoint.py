"""A writing SQLite store checkpoints its WAL on its own thread, not inside the loop's commits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from nasplat_support import make_study

from nasplat import Budget, Genotype
from nasplat.store import Store
from nasplat.store.wal import WAL_BOUND_PAGES


def _fill(store: Store, trials: int) -> None:
    study = make_study(store)
    for i in range(trials):
        trial = store.create_trial(study.id, Genotype("chain", {"a": i}), Budget())
        store.finish_trial(trial.id, state="COMPLETE", value=i / trials, metrics={"val_acc": i})


def _log_frames(path: Path) -> int:
    with sqlite3.connect(path) as raw:
        return raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def test_the_thread_checkpoints_so_the_next_commit_restarts_the_log(tmp_path: Path) -> None:
    frames = {}
    for name, every in (("thread", 20), ("none", 10**9)):
        path = tmp_path / f"{name}.db"
        store = Store(f"sqlite:///{path}")
        store._checkpointer.every = every
        with store.engine.connect() as connection:
            bound = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert bound == WAL_BOUND_PAGES  # commits checkpoint only past the bound
        _fill(store, 150)  # about 2,000 log pages: under the bound
        if every == 20:
            assert store._checkpointer.flush()  # the commits since the last wake-up too
            assert store._checkpointer.checkpoints >= 2
        make_study(store, "t")
        frames[name] = _log_frames(path)
        store.close()
    # checkpointed by the thread, the log restarted at the last commit: only its pages are
    # in it; without the thread every commit's pages still are
    assert frames["thread"] < 50 < 500 < frames["none"], frames


def test_checkpointed_and_closed_store_keeps_every_trial(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(f"sqlite:///{path}")
    store._checkpointer.every = 7
    _fill(store, 120)
    assert store._checkpointer.flush() and store._checkpointer.checkpoints >= 1
    thread = store._checkpointer._thread
    store.close()
    assert thread is not None and not thread.is_alive()  # close() stops the thread
    assert not (tmp_path / "s.db-wal").exists()  # the last close checkpointed the rest
    with sqlite3.connect(path) as raw:
        count = raw.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()
    assert count == (120,)
    reopened = Store(f"sqlite:///{path}", create=False)
    assert reopened._checkpointer is None  # a read-only store writes nothing
    assert len(reopened.trials("s")) == 120
    reopened.close()


def test_memory_store_has_no_checkpointer() -> None:
    store = Store("sqlite://")
    assert store._checkpointer is None
    store.close()
