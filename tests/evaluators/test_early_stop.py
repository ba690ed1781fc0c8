"""Pruners (Optuna's, fed from the store) and the early-stop evaluator."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

import evaluators.pruners as pruners_module
from evaluators.early_stop import EarlyStopEvaluator, PatienceReporter
from evaluators.pruners import OptunaPruner
from nasplat.budget import Budget
from nasplat.errors import ConfigError
from nasplat.evaluator import Reporter
from nasplat.executor import TrialTask
from nasplat.genotype import Genotype
from nasplat.run.trial import run_trial, store_reporter


def make_study(store: Any) -> int:
    return store.create_study(
        "s",
        space="chain",
        strategy="random",
        evaluator="early-stop",
        objectives=[("val_acc", "maximize")],
        config={},
    ).id


def finished_trial(store: Any, study: int, curve: list[float], n: int) -> None:
    trial = store.create_trial(study, Genotype("chain", {"x": n}), Budget())
    for step, value in enumerate(curve, start=1):
        store.report_intermediate(trial.id, step, value)
    store.finish_trial(trial.id, state="COMPLETE", value=curve[-1], metrics={"val_acc": curve[-1]})


def running_trial(store: Any, study: int, n: int) -> int:
    return store.create_trial(study, Genotype("chain", {"x": n}), Budget()).id


def test_median_prunes_below_the_median_of_finished_curves(store: Any) -> None:
    study = make_study(store)
    for n, level in enumerate([0.5, 0.6, 0.7]):
        finished_trial(store, study, [level, level + 0.1, level + 0.2], n)
    pruner = OptunaPruner("median", 3, n_startup_trials=2)
    good, bad = running_trial(store, study, 10), running_trial(store, study, 11)
    store.report_intermediate(good, 1, 0.65)
    store.report_intermediate(bad, 1, 0.55)
    assert not pruner.should_prune(store, study, good, 1, 0.65)
    assert pruner.should_prune(store, study, bad, 1, 0.55)


def test_percentile_prunes_below_the_percentile(store: Any) -> None:
    study = make_study(store)
    for n in range(6):
        finished_trial(store, study, [0.1 * n + 0.1, 0.1 * n + 0.2, 0.1 * n + 0.3], n)
    trial = running_trial(store, study, 99)
    store.report_intermediate(trial, 1, 0.05)
    pruner = OptunaPruner("percentile", 3, percentile=50.0, n_startup_trials=1)
    assert pruner.should_prune(store, study, trial, 1, 0.05)


@pytest.mark.parametrize("name", ["asha", "hyperband"])
def test_halving_pruners_stop_the_worse_of_later_trials(store: Any, name: str) -> None:
    study = make_study(store)
    pruned = []
    for n, value in enumerate([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]):
        trial = running_trial(store, study, n)
        store.report_intermediate(trial, 1, value)
        pruner = OptunaPruner(name, 4, reduction_factor=2)  # fresh: all state comes from the store
        pruned.append(pruner.should_prune(store, study, trial, 1, value))
        store.finish_trial(trial, state="PRUNED" if pruned[-1] else "COMPLETE", value=value)
    assert not pruned[0] and any(pruned[1:])


def test_asha_rung_values_are_written_back_to_the_store(store: Any) -> None:
    study = make_study(store)
    pruner = OptunaPruner("successive-halving", 4, reduction_factor=2)
    first = running_trial(store, study, 0)
    store.report_intermediate(first, 1, 0.9)
    assert not pruner.should_prune(store, study, first, 1, 0.9)  # first to reach rung 0: promoted
    assert store.intermediate_series(first)["optuna:completed_rung_0"] == [(0, 0.9)]
    second = running_trial(store, study, 1)
    store.report_intermediate(second, 1, 0.2)
    # a fresh pruner object (as in another worker) sees the first trial's rung value via the store
    assert OptunaPruner("asha", 4, reduction_factor=2).should_prune(store, study, second, 1, 0.2)


def test_pruner_pickles_and_rejects_bad_names_and_options() -> None:
    pruner = pickle.loads(pickle.dumps(OptunaPruner("median", 5, n_warmup_steps=2)))
    assert pruner.name == "median" and pruner.options == {"n_warmup_steps": 2}
    with pytest.raises(ConfigError, match="unknown pruner 'mean'; known: asha, hyperband, median"):
        OptunaPruner("mean", 5)
    with pytest.raises(ConfigError, match="unknown option.*'median': percentile"):
        OptunaPruner("median", 5, percentile=3)


def test_a_pruned_trial_really_stops_training(store: Any, tiny: Any) -> None:
    study = make_study(store)
    for n in range(3):
        finished_trial(store, study, [1.0] * 5, n)
    evaluator = EarlyStopEvaluator(tiny, epochs=5, pruner="median", n_startup_trials=1)
    genotype = tiny.sample(random.Random(0))
    trial = store.create_trial(
        study, tiny.canonicalize(genotype), evaluator.resolve_budget(Budget())
    )
    reporter = store_reporter(store, study, trial.id, evaluator.pruner())
    outcome = run_trial(
        TrialTask(trial.id, trial.number, genotype, Budget()), evaluator, reporter, "val_acc"
    )
    assert outcome.state == "PRUNED" and outcome.metrics == {"pruned_at_step": 1.0}
    assert len(reporter.history) == 1 and len(store.intermediate_values(trial.id)) == 1
    assert evaluator.resolve_budget(Budget()).extra == {"pruner": "median"}


def test_patience_stops_and_restores_the_best_epoch(tiny: Any) -> None:
    # the weights barely move (lr 1e-12): validation changes only through the drifting running
    # BatchNorm statistics, so this test keeps them (no re-estimation)
    evaluator = EarlyStopEvaluator(
        tiny, epochs=8, pruner="patience", patience=2, lr=1e-12, momentum=0.0, bn_recalibration=0
    )
    reporter = Reporter()
    result = evaluator.evaluate(tiny.sample(random.Random(0)), Budget(), reporter)
    best, stopped = int(result.metrics["best_epoch"]), int(result.metrics["stopped_epoch"])
    assert stopped == best + 2 < 8 and len(reporter.history) == stopped == result.epochs_run
    values = [v for _, v in reporter.history]
    assert values[best - 1] == max(values) > max(values[best:])
    assert result.metrics["val_acc"] == pytest.approx(values[best - 1])  # best weights restored
    assert evaluator.pruner() is None


def test_the_patience_reporter_passes_a_time_limit_cut_on() -> None:
    plans: list[int] = []
    watcher = PatienceReporter(Reporter(on_replan=plans.append), None, 3, 0.0)
    watcher.replan(4)
    assert plans == [4]


def test_early_stop_option_errors(tiny: Any) -> None:
    with pytest.raises(ConfigError, match="do not apply to pruner 'patience'"):
        EarlyStopEvaluator(tiny, pruner="patience", percentile=10)
    with pytest.raises(ConfigError, match="unknown option"):
        EarlyStopEvaluator(tiny, pruner="median", colour=1)
    with pytest.raises(ConfigError, match="patience must be >= 1"):
        EarlyStopEvaluator(tiny, pruner="patience", patience=0)


# --- the pruner's study mirror: same decisions as a rebuild, constant store reads per call ----


def rebuilt_decision(optuna_pruner: Any, store: Any, study_id: int, trial_id: int) -> bool:
    """The pruner before the mirror: a throwaway Optuna study rebuilt from the store (one query
    per trial) on every call. The mirror must decide exactly as this does."""
    import optuna
    from optuna.trial import TrialState, create_trial

    states = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAILED": "FAIL", "RUNNING": "RUNNING"}
    study = optuna.create_study(study_name=f"nasplat-study-{study_id}", direction="maximize")
    current = None
    for record in store.trials(study_id):
        series = store.intermediate_series(record.id)
        values = dict(series.get("value", []))
        attrs = {k[7:]: p[-1][1] for k, p in series.items() if k.startswith("optuna:")}
        state = TrialState[states[record.state]]
        final = values[max(values)] if state == TrialState.COMPLETE and values else None
        if state == TrialState.COMPLETE and final is None:
            state = TrialState.FAIL
        study.add_trial(
            create_trial(state=state, value=final, intermediate_values=values, system_attrs=attrs)
        )
        if record.id == trial_id:
            current = study.get_trials(deepcopy=False)[-1]._trial_id
    assert current is not None
    frozen = study._storage.get_trial(current)
    before = dict(frozen.system_attrs)
    prune = bool(optuna_pruner.prune(study, frozen))
    for key, attr in study._storage.get_trial(current).system_attrs.items():
        if before.get(key) != attr:
            store.report_intermediate(trial_id, 0, float(attr), key="optuna:" + key)
    return prune


class PublicOnly:
    """A store seen only through its public methods (no ``engine``)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "engine":
            raise AttributeError(name)
        return getattr(self._store, name)


PRUNER_CASES = [
    ("median", {"n_startup_trials": 2}),
    ("percentile", {"percentile": 40.0, "n_startup_trials": 2, "n_warmup_steps": 1}),
    ("asha", {"reduction_factor": 2}),
    ("hyperband", {"reduction_factor": 2}),
]


@pytest.mark.parametrize(
    ("name", "options", "view"),
    [(n, o, "sql") for n, o in PRUNER_CASES] + [("asha", {"reduction_factor": 2}, "public")],
)
def test_the_mirror_decides_as_a_rebuild_with_concurrent_workers(
    sqlite_url: str, name: str, options: dict[str, Any], view: str
) -> None:
    """Three workers, each with its own Store object on one SQLite file (as Ray actors) and its
    own long-lived pruner, run interleaved trials: some fail, some complete without per-epoch
    values, some are retried (their values rewritten). Every decision matches a rebuild of the
    same history in a second store."""
    from nasplat.store import Store

    epochs, workers, n_trials = 4, 3, 36
    rng = random.Random(7)
    stores = [Store(sqlite_url) for _ in range(workers)]
    views = [s if view == "sql" else PublicOnly(s) for s in stores]
    reference = Store("sqlite://")
    try:
        study = make_study(stores[0])
        assert make_study(reference) == study
        pruners = [OptunaPruner(name, epochs, **options) for _ in range(workers)]
        rebuilt = [OptunaPruner(name, epochs, **options)._optuna for _ in range(workers)]
        running: list[dict[str, Any] | None] = [None] * workers
        started, decisions = 0, []
        while started < n_trials or any(running):
            w = rng.randrange(workers)
            job = running[w]
            if job is None:
                if started == n_trials:
                    continue
                genotype = Genotype("chain", {"x": started})
                trial = views[w].create_trial(study, genotype, Budget()).id
                assert reference.create_trial(study, genotype, Budget()).id == trial
                started += 1
                if rng.random() < 0.1:  # e.g. a cached or tabular result: no per-epoch values
                    for s in (views[w], reference):
                        s.finish_trial(trial, state="COMPLETE", value=0.5)
                    continue
                level = rng.random()
                curve = [min(1.0, level + 0.05 * e + 0.02 * rng.random()) for e in range(epochs)]
                running[w] = {"id": trial, "curve": curve, "step": 0}
                continue
            trial, step = job["id"], job["step"] + 1
            job["step"] = step
            value = job["curve"][step - 1]
            for s in (views[w], reference):
                s.report_intermediate(trial, step, value)
            decision = pruners[w].should_prune(views[w], study, trial, step, value)
            assert decision == rebuilt_decision(rebuilt[w], reference, study, trial), (trial, step)
            decisions.append(decision)
            if decision:
                state = "PRUNED"
            elif step == epochs and rng.random() < 0.15:
                state = "FAILED"
            elif step == epochs:
                state = "COMPLETE"
            elif rng.random() < 0.05:  # the worker died: the trial runs again from epoch 1
                for s in (views[w], reference):
                    s.mark_retry(trial, "worker died")
                job.update(step=0, curve=[v * 0.9 for v in job["curve"]])
                continue
            else:
                continue
            for s in (views[w], reference):
                s.finish_trial(trial, state=state, value=value)
            running[w] = None
        assert any(decisions) and not all(decisions)
    finally:
        for s in [*stores, reference]:
            s.close()


def _count_statements(engine: Any) -> list[str]:
    from sqlalchemy import event

    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    return statements


@pytest.mark.parametrize("name", ["median", "asha"])
def test_store_reads_per_call_do_not_grow_with_finished_trials(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasplat.store import Store

    read = pruners_module.read_learning_curves
    trials_read: list[int] = []

    def counting_read(*args: Any, **kwargs: Any) -> Any:
        curves = read(*args, **kwargs)
        trials_read.append(len(curves))
        return curves

    monkeypatch.setattr(pruners_module, "read_learning_curves", counting_read)
    per_call: dict[int, tuple[list[int], list[int]]] = {}
    for n_finished in (5, 200):
        store = Store("sqlite://")
        study = make_study(store)
        for n in range(n_finished):
            finished_trial(store, study, [0.5 + 0.001 * n] * 3, n)
        pruner = OptunaPruner(name, 3)
        statements = _count_statements(store.engine)
        queries, selects, rows = [], [], []
        for k in range(3):  # another worker's trials run and finish beside this worker's
            other = running_trial(store, study, 1000 + k)
            trial = running_trial(store, study, 2000 + k)
            for step in (1, 2, 3):
                store.report_intermediate(trial, step, 0.9)
                store.report_intermediate(other, step, 0.1)
                statements.clear()
                trials_read.clear()
                assert not pruner.should_prune(store, study, trial, step, 0.9)
                queries.append(len(statements))  # BEGIN, SELECT (+ ASHA's rung write-back)
                selects.append(sum(s.lstrip().upper().startswith("SELECT") for s in statements))
                rows.append(sum(trials_read))
            store.finish_trial(other, state="PRUNED", value=0.1)
            store.finish_trial(trial, state="COMPLETE", value=0.9)
        store.close()
        if name == "median":  # nothing to write: one query per call, the first (full) read too
            assert set(selects) == {1}, selects
        per_call[n_finished] = (queries, rows[1:])
    # the same statements per call; after the first call, a call reads the running trials and
    # those that finished since the last call
    assert per_call[5] == per_call[200]
    assert max(per_call[200][1]) == 4


def test_a_trial_seen_out_of_number_order_rebuilds_the_mirror(store: Any) -> None:
    """Optuna numbers must stay the store's: a trial that shows up behind a mirrored one (a
    late commit) makes the mirror start over."""
    study = make_study(store)
    first, late, third = (running_trial(store, study, n) for n in range(3))
    read = pruners_module.read_learning_curves

    def without_late(*args: Any, **kwargs: Any) -> Any:  # ``late`` is not committed yet
        return [c for c in read(*args, **kwargs) if c.id != late]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pruners_module, "read_learning_curves", without_late)
        mirror = pruners_module.StudyMirror(store, study)
    assert mirror.optuna_trial_id(late) is None
    mirror.refresh(store)
    numbers = {
        t: mirror.storage.get_trial(mirror.optuna_trial_id(t)).number for t in (first, late, third)
    }
    assert numbers == {first: 0, late: 1, third: 2}


def test_a_failed_read_drops_the_mirror(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    study = make_study(store)
    for n, level in enumerate([0.5, 0.6, 0.7]):
        finished_trial(store, study, [level] * 3, n)
    pruner = OptunaPruner("median", 3, n_startup_trials=2)
    trial = running_trial(store, study, 10)
    store.report_intermediate(trial, 1, 0.9)
    assert not pruner.should_prune(store, study, trial, 1, 0.9)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    with monkeypatch.context() as patch:
        patch.setattr(pruners_module, "read_learning_curves", broken)
        with pytest.raises(RuntimeError):
            pruner.should_prune(store, study, trial, 1, 0.9)
    assert pruner._mirror is None
    store.finish_trial(trial, state="COMPLETE", value=0.9)
    worse = running_trial(store, study, 11)
    store.report_intermediate(worse, 1, 0.62)
    assert pruner.should_prune(store, study, worse, 1, 0.62)  # median: 0.6 before, 0.65 now
