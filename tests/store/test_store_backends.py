"""The trial-store suite, run on every backend: SQLite file, SQLite in memory, PostgreSQL and the
in-memory store (``memory://``, the same protocol without SQL).

PostgreSQL is ``$NASPLAT_TEST_POSTGRES_URL`` or a private server that scripts/postgres.sh
installs (from Debian, when absent) and starts on 127.0.0.1 for this test session; each test
gets a fresh database.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from nasplat_support import (
    PostgresUnavailable,
    drop_postgres_database,
    fresh_postgres_database,
    postgres_server,
)

from nasplat import Budget, Genotype
from nasplat.errors import StorageError
from nasplat.store import (
    EVALUATED,
    FULL,
    INTERRUPTED,
    NEW,
    RUNNING_ELSEWHERE,
    MemoryStore,
    Store,
    StudyRecord,
    TrialStore,
    open_store,
)
from nasplat.store.owners import current_owner

BACKENDS = [
    "sqlite-file",
    "sqlite-memory",
    "memory",
    pytest.param("postgresql", marks=[pytest.mark.slow, pytest.mark.postgres]),
]
SQL_BACKENDS = [b for b in BACKENDS if b != "memory"]  # tests that look at the tables
SHARED_BACKENDS = [b for b in BACKENDS if b not in ("sqlite-memory", "memory")]  # processes


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot be installed here: {exc}")


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store on the backend named by the test's parameter."""
    backend = request.param
    if backend == "sqlite-memory":
        yield "sqlite://"
    elif backend == "memory":
        yield "memory://"
    elif backend == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        server = request.getfixturevalue("postgres_server_url")
        name = f"nasplat_test_{uuid.uuid4().hex[:12]}"
        yield fresh_postgres_database(server, name)
        drop_postgres_database(server, name)


@pytest.fixture
def store(store_url: str) -> Iterator[TrialStore]:
    s = open_store(store_url)
    assert isinstance(s, TrialStore)
    yield s
    s.close()


all_backends = pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
sql_backends = pytest.mark.parametrize("store_url", SQL_BACKENDS, indirect=True)
shared_backends = pytest.mark.parametrize("store_url", SHARED_BACKENDS, indirect=True)


def make_study(store: Store, name: str = "s", direction: str = "maximize") -> StudyRecord:
    return store.create_study(
        name,
        space="chain",
        strategy="random",
        evaluator="train",
        objectives=[("val_acc", direction)],
        config={"seed": 1, "nested": {"ops": ["conv_3x3", "skip_connect"]}},
    )


def genotype(i: int) -> Genotype:
    return Genotype("chain", {"a": i, "b": None, "c": True, "d": 0.5, "e": "x"})


# --- studies ---------------------------------------------------------------------------------
@all_backends
def test_studies_round_trip_and_clear_errors(store: Store) -> None:
    created = make_study(store)
    make_study(store, "other", "minimize")
    got = store.get_study("s")
    assert got == created and got.config["nested"]["ops"] == ["conv_3x3", "skip_connect"]
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == UTC.utcoffset(None)
    assert store.has_study("s") and not store.has_study("nope")
    assert [s["name"] for s in store.list_studies()] == ["s", "other"]
    with pytest.raises(StorageError, match="already exists"):
        make_study(store)
    with pytest.raises(StorageError, match=r"no study 'nope'.*studies: s, other"):
        store.get_study("nope")
    with pytest.raises(StorageError, match="direction"):
        make_study(store, "bad", "upward")


@all_backends
def test_setdefault_study_config_keeps_the_first_value(store: Store) -> None:
    study = make_study(store)
    other = make_study(store, "other")
    assert store.setdefault_study_config(study.id, "reference_point", [0.0, 2.5]) == [0.0, 2.5]
    assert store.setdefault_study_config(study.id, "reference_point", [9.0, 9.0]) == [0.0, 2.5]
    config = store.get_study("s").config
    assert config["reference_point"] == [0.0, 2.5] and config["nested"]["ops"][0] == "conv_3x3"
    assert "reference_point" not in store.get_study("other").config
    assert store.setdefault_study_config(other.id, "reference_point", [1.0, 1.0]) == [1.0, 1.0]


@all_backends
def test_delete_study_removes_only_that_study(store: Store) -> None:
    for name in ("gone", "kept"):
        study = make_study(store, name)
        trial = store.create_trial(study.id, genotype(1), Budget())
        store.report_intermediate(trial.id, 0, 0.1)
        store.finish_trial(
            trial.id,
            state="COMPLETE",
            value=0.5,
            metrics={"m": 1.0},
            weights=b"w",
            checkpoint={"k": 1},
        )
    store.delete_study("gone")
    assert [s["name"] for s in store.list_studies()] == ["kept"]
    kept = store.trials("kept", with_intermediate=True)
    assert len(kept) == 1 and kept[0].intermediate == ((0, 0.1),)
    assert store.trial_weights(kept[0].id) == b"w"


# --- trials ----------------------------------------------------------------------------------
@all_backends
def test_trials_numbers_architectures_and_records(store: Store) -> None:
    study = make_study(store)
    budget = Budget(epochs=2, data_fraction=0.5)
    t0 = store.create_trial(study.id, genotype(1), budget, worker="w0", tag="retrain")
    t1 = store.create_trial(study.id, genotype(2), budget)
    t2 = store.create_trial(study.id, genotype(1), budget)  # same architecture, new trial
    assert [t.number for t in (t0, t1, t2)] == [0, 1, 2]
    assert t0.state == "RUNNING" and t0.arch_hash == t2.arch_hash != t1.arch_hash
    trials = store.trials("s")
    assert [t.genotype for t in trials] == [genotype(1), genotype(2), genotype(1)]
    assert trials[0].genotype["b"] is None and trials[0].genotype["c"] is True
    assert trials[0].budget == budget.to_dict() and trials[0].worker == "w0"
    assert trials[0].tag == "retrain" and trials[0].finished_at is None
    assert store.get_trial(t1.id).number == 1
    with pytest.raises(StorageError, match="no trial"):
        store.get_trial(10_000)


@all_backends
def test_finish_trial_records_values_metrics_and_checkpoint(store: Store) -> None:
    study = make_study(store)
    trial = store.create_trial(study.id, genotype(1), Budget())
    store.finish_trial(
        trial.id, state="COMPLETE", value=0.25, metrics={"val_acc": 0.25, "params": 7}
    )
    store.finish_trial(
        trial.id,
        state="COMPLETE",
        value=0.75,
        metrics={"val_acc": 0.75},
        worker="host:1",
        checkpoint={"strategy": {"rng": [3, [1, 2], None]}},
    )
    record = store.get_trial(trial.id)
    assert (record.state, record.value, record.metrics) == ("COMPLETE", 0.75, {"val_acc": 0.75})
    assert record.worker == "host:1" and record.duration is not None and record.duration >= 0
    assert store.load_checkpoint(study.id) == {"strategy": {"rng": [3, [1, 2], None]}}
    with pytest.raises(ValueError, match="finish state"):
        store.finish_trial(trial.id, state="RUNNING")
    with pytest.raises(StorageError, match="no trial"):
        store.finish_trial(10_000, state="FAILED")


@all_backends
def test_retries_and_interrupted_trials(store: Store) -> None:
    study = make_study(store)
    running = store.create_trial(study.id, genotype(1), Budget())
    done = store.create_trial(study.id, genotype(2), Budget())
    store.finish_trial(done.id, state="COMPLETE", value=1.0)
    store.mark_retry(running.id, "worker died: ActorDiedError")
    store.mark_retry(running.id, "worker died again")
    record = store.get_trial(running.id)
    assert (record.state, record.retries, record.error) == ("RUNNING", 2, "worker died again")
    assert store.interrupt_running(study.id) == 1
    record = store.get_trial(running.id)
    assert record.state == "INTERRUPTED" and record.error.startswith("interrupted")
    assert store.get_trial(done.id).state == "COMPLETE"
    assert store.interrupt_running(study.id) == 0
    assert store.count_trials(study.id) == 1  # the interrupted trial does not count


@all_backends
def test_only_the_named_trials_are_interrupted(store: Store) -> None:
    study = make_study(store)
    mine = store.create_trial(study.id, genotype(1), Budget())
    other = store.create_trial(study.id, genotype(2), Budget())  # another process's
    done = store.create_trial(study.id, genotype(3), Budget())
    store.finish_trial(done.id, state="COMPLETE", value=1.0)
    assert store.interrupt_running(study.id, trial_ids=[mine.id, done.id]) == 1
    assert store.interrupt_running(study.id, trial_ids=[]) == 0
    states = [store.get_trial(t.id).state for t in (mine, other, done)]
    assert states == ["INTERRUPTED", "RUNNING", "COMPLETE"]
    assert [t.number for t in store.trials(study.id, states=["INTERRUPTED"])] == [mine.number]


@all_backends
def test_intermediate_values_overwrite_steps_and_keep_keys(store: Store) -> None:
    study = make_study(store)
    trial = store.create_trial(study.id, genotype(1), Budget())
    for step, value in ((1, 0.4), (0, 0.2), (1, 0.5)):
        store.report_intermediate(trial.id, step, value)
    store.report_intermediate(trial.id, 0, 2.5, key="loss")
    assert store.intermediate_values(trial.id) == [(0, 0.2), (1, 0.5)]
    assert store.intermediate_series(trial.id) == {
        "loss": [(0, 2.5)],
        "value": [(0, 0.2), (1, 0.5)],
    }
    assert store.trials("s", with_intermediate=True)[0].intermediate == ((0, 0.2), (1, 0.5))


@all_backends
def test_find_evaluated_counts_and_best_trial(store: Store) -> None:
    study = make_study(store, direction="minimize")
    budget = Budget(epochs=1)
    states = [
        ("COMPLETE", 0.3),
        ("PRUNED", 0.9),
        ("FAILED", None),
        ("COMPLETE", 0.1),
        ("COMPLETE", 0.1),
    ]
    for i, (state, value) in enumerate(states):
        trial = store.create_trial(study.id, genotype(i), budget, tag="rung" if i == 4 else None)
        store.finish_trial(trial.id, state=state, value=value)
    store.create_trial(study.id, genotype(9), budget)  # still running
    assert store.find_evaluated(study.id, genotype(0), budget).number == 0
    assert store.find_evaluated(study.id, genotype(1), budget).state == "PRUNED"
    assert store.find_evaluated(study.id, genotype(2), budget) is None  # failed
    assert store.find_evaluated(study.id, genotype(0), Budget(epochs=2)) is None  # other budget
    assert store.count_trials(study.id, tag=None) == 4  # finished, untagged
    assert store.count_trials(study.id) == 5  # finished, any tag
    assert store.count_trials(study.id, tag="rung") == 1
    assert store.count_trials(study.id, states=["RUNNING"]) == 1
    assert store.best_trial("s").number == 3  # minimise; the earliest of equal values
    assert store.best_trial(study.id, tag="rung").number == 4
    summary = store.list_studies()[0]
    assert (summary["trials"], summary["complete"], summary["running"]) == (6, 3, 1)
    assert summary["best_value"] == 0.1 and summary["direction"] == "minimize"
    empty = make_study(store, "empty")
    with pytest.raises(StorageError, match="no completed trial"):
        store.best_trial(empty.id)


@all_backends
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_weights_policy_keeps_the_best_trials_weights(store: Store, direction: str) -> None:
    study = make_study(store, direction=direction)
    ids = []
    for i, value in enumerate((0.5, 0.9, 0.1)):
        trial = store.create_trial(study.id, genotype(i), Budget())
        store.finish_trial(trial.id, state="COMPLETE", value=value, weights=f"w{i}".encode())
        ids.append(trial.id)
    kept = [store.trial_weights(i) for i in ids]
    assert kept == ([None, b"w1", None] if direction == "maximize" else [None, None, b"w2"])
    other = store.create_trial(study.id, genotype(5), Budget())
    store.finish_trial(other.id, state="COMPLETE", value=0.3, weights=b"all", keep_weights="all")
    none = store.create_trial(study.id, genotype(6), Budget())
    store.finish_trial(none.id, state="COMPLETE", value=0.3, weights=b"x", keep_weights="none")
    assert store.trial_weights(other.id) == b"all" and store.trial_weights(none.id) is None


@all_backends
def test_on_a_tie_the_best_trial_keeps_the_weights(store: Store) -> None:
    """``best_trial`` picks the earliest of equal values; the kept weights must be its own, so
    ``nasplat export`` finds them."""
    study = make_study(store)
    ids = []
    for i in range(3):
        trial = store.create_trial(study.id, genotype(i), Budget())
        store.finish_trial(trial.id, state="COMPLETE", value=0.5, weights=f"w{i}".encode())
        ids.append(trial.id)
    best = store.best_trial(study.id)
    assert best.number == 0 and store.trial_weights(best.id) == b"w0"
    assert [store.trial_weights(i) for i in ids] == [b"w0", None, None]


@sql_backends
def test_checkpoints_newest_wins_and_prune_keeps_three(store: Store) -> None:
    study = make_study(store)
    assert store.load_checkpoint(study.id) is None
    for i in range(6):
        store.save_checkpoint(study.id, {"strategy": {"step": i, "pop": [[{"a": i}, 0.5]]}})
    store.prune_checkpoints(study.id)
    assert store.load_checkpoint(study.id) == {"strategy": {"step": 5, "pop": [[{"a": 5}, 0.5]]}}
    from sqlalchemy import func, select

    from nasplat.store.models import strategy_checkpoints

    with store._writing() as connection:
        assert connection.scalar(select(func.count()).select_from(strategy_checkpoints)) == 3


@all_backends
def test_trials_dataframe(store: Store) -> None:
    study = make_study(store)
    trial = store.create_trial(study.id, genotype(1), Budget())
    store.finish_trial(trial.id, state="COMPLETE", value=0.5, metrics={"params": 10.0})
    frame = store.trials_dataframe("s")
    assert list(frame["number"]) == [0] and frame.loc[0, "metric_params"] == 10.0
    assert Genotype.from_json(frame.loc[0, "genotype"]) == genotype(1)


# --- persistence and concurrency -------------------------------------------------------------
@shared_backends
def test_a_second_store_on_the_same_url_sees_everything(store_url: str) -> None:
    first = Store(store_url)
    study = make_study(first)
    trial = first.create_trial(study.id, genotype(1), Budget())
    first.finish_trial(trial.id, state="COMPLETE", value=0.5)
    first.close()
    second = Store(store_url)  # schema already there: reused, not recreated
    assert second.best_trial("s").genotype == genotype(1)
    second.close()


WRITER = textwrap.dedent(
    """
    import sys
    from nasplat import Budget, Genotype
    from nasplat.store import Store

    url, study_id, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = Store(url)
    for i in range(n):
        g = Genotype("chain", {"a": i % 5})  # architectures shared across processes
        trial = store.create_trial(study_id, g, Budget(), worker=f"p{worker}")
        store.report_intermediate(trial.id, 0, float(worker))
        store.finish_trial(
            trial.id, state="COMPLETE", value=float(worker * 1000 + i), checkpoint={"w": worker}
        )
    """
)


@shared_backends
def test_four_processes_writing_one_store_lose_nothing(store_url: str) -> None:
    store = Store(store_url)
    study = make_study(store)
    n = 15
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, store_url, str(study.id), str(w), str(n)])
        for w in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    trials = store.trials("s", with_intermediate=True)
    assert sorted(t.number for t in trials) == list(range(4 * n))
    assert len({t.arch_hash for t in trials}) == 5
    for t in trials:
        worker = int(t.worker[1:])
        assert t.state == "COMPLETE" and t.value // 1000 == worker
        assert t.intermediate == ((0, float(worker)),)
    values = sorted(t.value for t in trials)
    assert values == sorted(w * 1000.0 + i for w in range(4) for i in range(n))
    store.close()


def test_in_memory_sqlite_is_private_to_its_store() -> None:
    one, two = Store("sqlite://"), Store("sqlite://")
    make_study(one)
    assert one.has_study("s") and not two.has_study("s")


# --- the loop's calls ------------------------------------------------------------------------
def live_owner_elsewhere() -> str:
    """The owner string of a live process other than this one (the test runner's parent)."""
    from nasplat.store.owners import _start_time, host

    return f"{host()}/{os.getppid()}/{_start_time(os.getppid())}"


DEAD_OWNER = "nowhere-host/123/1"  # another machine's process with no heartbeat: dead


@all_backends
def test_claim_trial_finds_evaluated_and_running_trials(store: Store) -> None:
    study = make_study(store)
    budget, other = Budget(epochs=1), Budget(epochs=2)
    me, peer = current_owner(), live_owner_elsewhere()
    first = store.claim_trial(study.id, genotype(1), budget, owner=me)
    assert first.status == NEW and first.trial.number == 0 and first.trial.worker == me
    shared = not isinstance(store, MemoryStore)  # one process holds a memory store
    elsewhere = store.claim_trial(study.id, genotype(1), budget, owner=peer)
    if shared:  # a live process evaluates it: that trial, nothing created
        assert (elsewhere.status, elsewhere.trial.id) == (RUNNING_ELSEWHERE, first.trial.id)
    again = store.claim_trial(study.id, genotype(1), budget, owner=me)  # its own: a new trial
    assert again.status == NEW and again.trial.number == (1 if shared else 2)
    store.finish_trial(first.trial.id, state="FAILED", error="x")
    store.finish_trial(again.trial.id, state="COMPLETE", value=0.5, metrics={"m": 2.0})
    reused = store.claim_trial(study.id, genotype(1), budget, owner=peer)
    assert reused.status == EVALUATED
    assert (reused.trial.id, reused.trial.value, reused.trial.metrics) == (
        again.trial.id,
        0.5,
        {"m": 2.0},
    )
    assert store.claim_trial(study.id, genotype(1), other, owner=me).status == NEW


@sql_backends
def test_claim_trial_takes_over_an_orphan(store: Store) -> None:
    study = make_study(store)
    orphan = store.claim_trial(study.id, genotype(1), Budget(), owner=DEAD_OWNER).trial
    claim = store.claim_trial(study.id, genotype(1), Budget(), owner=current_owner())
    assert claim.status == NEW and claim.trial.id != orphan.id
    assert store.get_trial(orphan.id).state == INTERRUPTED


@sql_backends
def test_a_heartbeat_keeps_another_machines_trial_alive(store: Store) -> None:
    study = make_study(store)
    remote = "other-host/42/7"
    store.beat(remote)
    running = store.claim_trial(study.id, genotype(1), Budget(), owner=remote).trial
    claim = store.claim_trial(study.id, genotype(1), Budget(), owner=current_owner())
    assert claim.status == RUNNING_ELSEWHERE and claim.trial.id == running.id
    store.end_beat(remote)  # it stopped: its trial is an orphan now
    assert store.interrupt_orphans(study.id) == 1
    assert store.get_trial(running.id).state == INTERRUPTED


@all_backends
def test_claim_trial_stops_at_the_limit(store: Store) -> None:
    study = make_study(store)
    claim = functools.partial(store.claim_trial, study.id, budget=Budget(), limit=3)
    assert claim(genotype(0), owner=current_owner()).status == NEW
    store.create_trial(study.id, genotype(9), Budget(), tag="retrain")  # another tag: not counted
    assert claim(genotype(1), owner=live_owner_elsewhere()).status == NEW
    assert claim(genotype(2), owner=DEAD_OWNER).status == NEW
    if not isinstance(store, MemoryStore):  # the dead owner's trial is interrupted: room again
        assert claim(genotype(3), owner=current_owner()).status == NEW
    assert claim(genotype(4), owner=current_owner()).status == FULL
    assert store.claim_trial(study.id, genotype(4), Budget(), limit=4).status == NEW


@all_backends
def test_trial_index_and_trials_since(store: Store) -> None:
    study = make_study(store)
    budget = Budget(epochs=1)
    for i in range(4):
        trial = store.create_trial(study.id, genotype(i), budget)
        if i % 2 == 0:
            store.finish_trial(trial.id, state="COMPLETE", value=float(i))
    store.create_trial(study.id, genotype(9), Budget(epochs=2))
    index = store.trial_index(study.id, budget)
    assert index == [
        (0, genotype(0).sha, "COMPLETE"),
        (1, genotype(1).sha, "RUNNING"),
        (2, genotype(2).sha, "COMPLETE"),
        (3, genotype(3).sha, "RUNNING"),
    ]
    assert [t.number for t in store.trials(study.id, since=2)] == [2, 3, 4]


@sql_backends
def test_a_loop_trial_is_three_statements_to_create_and_three_to_finish(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's calls run prebuilt statements: a new architecture needs no "evaluated
    already?" query, and finishing looks the trial up only for weights or a checkpoint."""
    from sqlalchemy import event

    study = make_study(store)
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")):
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    run = store._run

    def on_driver(connection: Any, statement: Any, params: Any, **kw: Any) -> Any:
        if store._driver:  # SQLite: hot statements run on the driver, SQLAlchemy sees none
            seen.append(str(statement))
        return run(connection, statement, params, **kw)

    monkeypatch.setattr(store, "_run", on_driver)
    lock = 1 if store.engine.dialect.name == "postgresql" else 0  # the study row (SQLite: BEGIN)
    trial = store.claim_trial(study.id, genotype(1), Budget(), limit=10).trial
    assert len(seen) == 3 + lock, seen  # architecture upsert, next number, trial insert
    seen.clear()
    store.finish_trial(trial.id, state="COMPLETE", value=0.5, metrics={"val_acc": 0.5})
    assert len(seen) == 3, seen  # update, delete old values, insert values
    seen.clear()
    again = store.claim_trial(study.id, genotype(1), Budget()).trial
    assert again.id == trial.id and again.metrics == {"val_acc": 0.5}
    event.remove(store.engine, "before_cursor_execute", record)
