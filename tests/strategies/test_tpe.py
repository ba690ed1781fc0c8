"""The ``tpe`` strategy (Optuna's TPESampler as an in-memory engine)."""

from __future__ import annotations

import random

import pytest
from optuna.trial import TrialState
from toy import (
    ToySpace,
    check_beats_random,
    check_deterministic,
    check_exact_resume,
    check_failures_and_order,
    check_minimize,
    objective,
    observe,
)

from nasplat.errors import ConfigError
from nasplat.registry import STRATEGIES
from nasplat.strategy import Observation
from strategies.tpe import TPEStrategy


def test_registered() -> None:
    assert STRATEGIES.get("tpe") is TPEStrategy


def test_beats_random_search() -> None:
    check_beats_random(TPEStrategy, n=60, seeds=range(3), margin=1.2)


def test_minimize() -> None:
    check_minimize(TPEStrategy, n=60, seeds=range(3), margin=1.2)


def test_deterministic_for_a_seed() -> None:
    check_deterministic(TPEStrategy)


def test_exact_resume_through_json() -> None:
    check_exact_resume(TPEStrategy)


def test_failed_pruned_and_out_of_order_results() -> None:
    strategy = check_failures_and_order(TPEStrategy)
    assert isinstance(strategy, TPEStrategy)
    states = [t.state for t in strategy.study.trials]
    assert states.count(TrialState.FAIL) > 0 and states.count(TrialState.COMPLETE) > 0
    assert TrialState.RUNNING not in states
    genotype = strategy.ask()
    strategy.tell(Observation(genotype, 1.0, "PRUNED"))
    assert strategy.study.trials[-1].state is TrialState.PRUNED


def test_tells_match_asks_by_genotype() -> None:
    strategy = TPEStrategy(ToySpace(), seed=1)
    asked = [strategy.ask() for _ in range(4)]
    for genotype in reversed(asked):
        strategy.tell(observe(genotype, objective(genotype)))
    trials = strategy.study.trials
    assert [t.value for t in trials] == pytest.approx([objective(g) for g in asked])


def test_unasked_genotype_becomes_a_finished_trial() -> None:
    strategy = TPEStrategy(ToySpace(), seed=1)
    genotype = ToySpace().sample(random.Random(0))
    strategy.tell(observe(genotype, 3.0))
    (trial,) = strategy.study.trials
    assert trial.state is TrialState.COMPLETE and trial.value == 3.0


def test_constant_liar_spreads_parallel_asks() -> None:
    strategy = TPEStrategy(ToySpace(), seed=2, n_startup_trials=5)
    for _ in range(10):
        genotype = strategy.ask()
        strategy.tell(observe(genotype, objective(genotype)))
    batch = [strategy.ask() for _ in range(4)]
    assert len(set(batch)) == 4


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        TPEStrategy(ToySpace(), n_startup_trials=-1)
    with pytest.raises(TypeError):
        TPEStrategy(ToySpace(), n_ei_candidates=3)  # type: ignore[call-arg]
