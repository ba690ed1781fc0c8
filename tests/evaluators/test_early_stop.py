"""Pruners (Optuna's, fed from the store) and the early-stop evaluator."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

from evaluators.early_stop import EarlyStopEvaluator
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
    evaluator = EarlyStopEvaluator(
        tiny, epochs=8, pruner="patience", patience=2, lr=1e-12, momentum=0.0
    )
    reporter = Reporter()
    result = evaluator.evaluate(tiny.sample(random.Random(0)), Budget(), reporter)
    best, stopped = int(result.metrics["best_epoch"]), int(result.metrics["stopped_epoch"])
    assert stopped == best + 2 < 8 and len(reporter.history) == stopped == result.epochs_run
    values = [v for _, v in reporter.history]
    assert values[best - 1] == max(values) > max(values[best:])
    assert result.metrics["val_acc"] == pytest.approx(values[best - 1])  # best weights restored
    assert evaluator.pruner() is None


def test_early_stop_option_errors(tiny: Any) -> None:
    with pytest.raises(ConfigError, match="do not apply to pruner 'patience'"):
        EarlyStopEvaluator(tiny, pruner="patience", percentile=10)
    with pytest.raises(ConfigError, match="unknown option"):
        EarlyStopEvaluator(tiny, pruner="median", colour=1)
    with pytest.raises(ConfigError, match="patience must be >= 1"):
        EarlyStopEvaluator(tiny, pruner="patience", patience=0)
