import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from nasplat_support import make_study
from sqlalchemy import select, update

from nasplat import Budget, Genotype
from nasplat.errors import StorageError
from nasplat.store import Store
from nasplat.store.models import SCHEMA_VERSION, nasplat_schema


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path: Path) -> Store:
    url = "sqlite://" if request.param == "memory" else f"sqlite:///{tmp_path / 's.db'}"
    s = Store(url)
    yield s
    s.close()


def test_round_trip_of_study_trials_values_and_checkpoints(store: Store) -> None:
    study = make_study(store)
    g1 = Genotype("chain", {"a": 1})
    g2 = Genotype("chain", {"a": 2})
    t1 = store.create_trial(study.id, g1, Budget(epochs=2))
    t2 = store.create_trial(study.id, g2, Budget(epochs=2), worker="w1")
    assert (t1.number, t2.number) == (0, 1) and t1.state == "RUNNING"
    store.report_intermediate(t1.id, 1, 0.4)
    store.report_intermediate(t1.id, 2, 0.6)
    store.report_intermediate(t1.id, 2, 0.65)  # a repeated step overwrites
    store.finish_trial(
        t1.id,
        state="COMPLETE",
        value=0.65,
        metrics={"val_acc": 0.65, "params": 10.0},
        checkpoint={"strategy": {"k": [1, 2]}},
    )
    store.finish_trial(t2.id, state="FAILED", error="ValueError: boom")
    trials = store.trials("s", with_intermediate=True)
    assert [t.state for t in trials] == ["COMPLETE", "FAILED"]
    assert trials[0].genotype == g1 and trials[0].metrics == {"val_acc": 0.65, "params": 10.0}
    assert trials[0].intermediate == ((1, 0.4), (2, 0.65))
    assert trials[0].budget["epochs"] == 2 and trials[0].finished_at >= trials[0].started_at
    assert trials[1].error == "ValueError: boom" and trials[1].worker == "w1"
    assert store.load_checkpoint(study.id) == {"strategy": {"k": [1, 2]}}
    assert store.best_trial("s").number == 0
    assert store.find_evaluated(study.id, g1, Budget(epochs=2)).number == 0
    assert store.find_evaluated(study.id, g1, Budget(epochs=3)) is None  # other budget
    assert store.find_evaluated(study.id, g2, Budget(epochs=2)) is None  # failed: not evaluated
    summary = store.list_studies()[0]
    assert summary["trials"] == 2 and summary["complete"] == 1 and summary["failed"] == 1
    frame = store.trials_dataframe("s")
    assert list(frame["number"]) == [0, 1] and frame.loc[0, "metric_params"] == 10.0


def test_architectures_are_shared_across_trials(store: Store) -> None:
    study = make_study(store)
    g = Genotype("chain", {"a": 1})
    a = store.create_trial(study.id, g, Budget(epochs=1))
    b = store.create_trial(study.id, g, Budget(epochs=2))
    assert a.arch_hash == b.arch_hash == g.sha


def test_best_respects_direction_and_weights_policy(store: Store) -> None:
    study = make_study(store, direction="minimize")
    values = [0.5, 0.2, 0.9]
    ids = []
    for i, v in enumerate(values):
        t = store.create_trial(study.id, Genotype("chain", {"a": i}), Budget())
        store.finish_trial(
            t.id, state="COMPLETE", value=v, metrics={"val_acc": v}, weights=f"w{i}".encode()
        )
        ids.append(t.id)
    assert store.best_trial("s").value == 0.2
    # "best" keeps only the best trial's weights
    assert [store.trial_weights(i) for i in ids] == [None, b"w1", None]


def test_duplicate_study_and_unknown_study_are_clear_errors(store: Store) -> None:
    make_study(store)
    with pytest.raises(StorageError, match="already exists"):
        make_study(store)
    with pytest.raises(StorageError, match="no study 'x'"):
        store.get_study("x")
    with pytest.raises(StorageError, match="no completed trial"):
        store.best_trial("s")


def test_interrupted_trials_are_on_record_and_not_counted(store: Store) -> None:
    study = make_study(store)
    store.create_trial(study.id, Genotype("chain", {"a": 1}), Budget())
    assert store.interrupt_running(study.id) == 1
    (trial,) = store.trials("s")
    assert trial.state == "INTERRUPTED" and trial.error.startswith("interrupted")
    assert store.count_trials(study.id) == 0 and store.count_trials(study.id, tag=None) == 0
    assert store.count_trials(study.id, states=["INTERRUPTED"]) == 1
    assert store.list_studies()[0]["interrupted"] == 1


def test_bad_urls_are_storage_errors(tmp_path: Path) -> None:
    for url in ("nonsense", "sqlite:////no/such/folder/x.db", "mysqlx://u@h/db"):
        with pytest.raises(StorageError):
            Store(url)


def test_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    with store._writing() as connection:
        connection.execute(update(nasplat_schema).values(version=999))
    store.close()
    with pytest.raises(StorageError, match="schema version 999"):
        Store(url)


def test_two_processes_writing_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store(url)
    make_study(store)
    writer = textwrap.dedent(
        f"""
        import sys
        from nasplat import Budget, Genotype
        from nasplat.store import Store
        store = Store({url!r})
        study = store.get_study("s")
        tag = sys.argv[1]
        for i in range(60):
            t = store.create_trial(study.id, Genotype("chain", {{"w": tag, "i": i}}), Budget(), worker=tag)
            store.report_intermediate(t.id, 1, i / 100)
            store.finish_trial(t.id, state="COMPLETE", value=i / 100, metrics={{"val_acc": i / 100}})
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", writer, tag]) for tag in ("p1", "p2")]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    trials = store.trials("s", with_intermediate=True)
    assert sorted(t.number for t in trials) == list(range(120))
    for t in trials:  # each value belongs to the genotype that produced it
        assert t.state == "COMPLETE" and t.value == t.genotype["i"] / 100 == t.intermediate[0][1]
        assert t.worker == t.genotype["w"]


@pytest.mark.serial  # asserts on wall time
def test_reads_do_not_wait_for_the_write_lock(tmp_path) -> None:
    """In WAL mode a method that only reads opens a deferred transaction: while another
    connection holds the write lock (a search writing a trial), listing still answers at once."""
    import sqlite3
    import time

    path = tmp_path / "store.db"
    store = Store(f"sqlite:///{path}")
    store.create_study(
        "s",
        space="chain",
        strategy="random",
        evaluator="train",
        objectives=[("val_acc", "maximize")],
        config={},
    )
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")
    try:
        started = time.perf_counter()
        assert store.study_names() == ["s"] and store.get_study("s").name == "s"
        assert store.count_trials(store.get_study("s").id) == 0
        assert time.perf_counter() - started < 1.0  # a writing transaction would wait 60 s
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        store.close()


def query_plan(store: Store, sql: str, *params) -> str:
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
    return " | ".join(str(row[-1]) for row in rows)


def test_the_loop_queries_are_index_seeks(tmp_path: Path) -> None:
    """find_evaluated, the trial number and the best trial never scan a study's trials."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    study = make_study(store)
    evaluated = query_plan(
        store,
        "SELECT * FROM trials WHERE study_id = ? AND architecture_id = ? AND budget_key = ? "
        "AND state IN ('COMPLETE', 'PRUNED') ORDER BY number LIMIT 1",
        study.id,
        1,
        "{}",
    )
    assert "USING INDEX ix_trials_study_arch_budget" in evaluated, evaluated
    number = query_plan(store, "SELECT max(number) FROM trials WHERE study_id = ?", study.id)
    assert "COVERING INDEX" in number and "SCAN" not in number, number
    best = query_plan(
        store,
        "SELECT * FROM trials WHERE study_id = ? AND state = 'COMPLETE' AND value IS NOT NULL "
        "ORDER BY value DESC, number LIMIT 1",
        study.id,
    )
    assert "ix_trials_study_state_value" in best, best


def test_a_version_1_store_is_upgraded_when_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    study = make_study(store)
    trial = store.create_trial(study.id, Genotype("chain", {"a": 1}), Budget())
    store.finish_trial(trial.id, state="COMPLETE", value=0.5)
    with store._writing() as connection:  # what a version-1 nasplat wrote: no loop indexes
        connection.execute(update(nasplat_schema).values(version=1))
        for name in ("ix_trials_study_arch_budget", "ix_trials_study_state_value"):
            connection.exec_driver_sql(f"DROP INDEX {name}")
        connection.exec_driver_sql("DROP TABLE drivers")  # and no heartbeats (3)
        connection.exec_driver_sql("CREATE INDEX ix_trials_state ON trials (state)")  # (4)
    store.close()
    reopened = Store(url)
    with reopened._writing() as connection:
        assert connection.scalar(select(nasplat_schema.c.version)) == SCHEMA_VERSION == 4
    reopened.beat("host/1/1")  # the heartbeat table is there
    names = {
        row[1] for row in reopened.engine.connect().exec_driver_sql("PRAGMA index_list(trials)")
    }
    assert {"ix_trials_study_arch_budget", "ix_trials_study_state_value"} <= names
    assert "ix_trials_state" not in names
    assert reopened.find_evaluated(study.id, Genotype("chain", {"a": 1}), Budget()).value == 0.5


def test_trials_are_read_in_pages_of_short_transactions(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasplat.store import store as store_module

    study = make_study(store)
    for i in range(11):
        trial = store.create_trial(study.id, Genotype("chain", {"a": i % 4}), Budget(epochs=1))
        state = "FAILED" if i % 3 == 0 else "COMPLETE"
        store.finish_trial(trial.id, state=state, value=i / 10, metrics={"m": float(i)})
    whole = store.trials("s")
    transactions = []
    reading = store._reading

    def counted():
        transactions.append(1)
        return reading()

    monkeypatch.setattr(store_module, "TRIAL_PAGE", 4)
    monkeypatch.setattr(store, "_reading", counted)
    assert store.trials(study.id) == whole and len(transactions) == 3  # 4 + 4 + 3
    transactions.clear()
    done = store.trials(study.id, states=["COMPLETE"], since=2)
    assert [t.number for t in done] == [2, 4, 5, 7, 8, 10] and len(transactions) == 2
    assert [t.metrics for t in done] == [{"m": float(t.number)} for t in done]


def test_a_new_store_has_no_redundant_index(store: Store) -> None:
    """Version 4 dropped the single-column indexes that a wider index answers too."""
    from nasplat.store.models import DROPPED_INDEXES

    with store.engine.connect() as connection:
        names = {
            row[1]
            for table in ("trials", "trial_values")
            for row in connection.exec_driver_sql(f"PRAGMA index_list({table})")
        }
    assert names and not names & set(DROPPED_INDEXES)
    plan = query_plan(store, "SELECT key, value FROM trial_values WHERE trial_id = ?", 1)
    assert "uq_trial_value_key" in plan or "autoindex" in plan, plan
