"""The ``nsga2`` strategy (Optuna's NSGAIISampler as an in-memory engine)."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState
from toy import (
    OBJECTIVES,
    ToySpace,
    check_deterministic,
    check_exact_resume,
    check_failures_and_order,
    check_front_beats_random,
    observe_both,
    roundtrip,
    run_both,
)

from nasplat.errors import ConfigError
from nasplat.registry import STRATEGIES
from nasplat.strategy import INFEASIBLE, Observation
from strategies.nsga2 import NSGA2Strategy


def nsga2(space: ToySpace, **options: object) -> NSGA2Strategy:
    return NSGA2Strategy(space, population_size=8, **options)


def test_registered_and_multi_objective() -> None:
    assert STRATEGIES.get("nsga2") is NSGA2Strategy and NSGA2Strategy.multi_objective


def test_front_beats_random_search() -> None:
    check_front_beats_random(nsga2, n=60, seeds=range(4), margin=5.0)


def test_single_objective_contract() -> None:
    check_deterministic(nsga2)
    check_exact_resume(nsga2)
    strategy = check_failures_and_order(nsga2)
    assert isinstance(strategy, NSGA2Strategy)
    assert TrialState.RUNNING not in [t.state for t in strategy.study.trials]


def test_exact_resume_of_a_multi_objective_search() -> None:
    """Generations and cached parent populations are restored with the history."""
    original = nsga2(ToySpace(), seed=5, objectives=OBJECTIVES)
    run_both(original, 30)  # several generations of 8
    outstanding = [original.ask() for _ in range(3)]
    state = roundtrip(original.state_dict())
    assert state["study_system_attrs"]  # the parent populations NSGA-II cached
    restored = nsga2(ToySpace(), seed=5, objectives=OBJECTIVES)
    restored.load_state_dict(state)
    assert roundtrip(restored.state_dict()) == state
    sequences = []
    for strategy in (original, restored):
        for genotype in reversed(outstanding):
            strategy.tell(observe_both(genotype))
        sequences.append(run_both(strategy, 20))
    assert sequences[0] == sequences[1]


def test_every_objective_is_told_and_infeasible_is_not_a_result() -> None:
    strategy = nsga2(ToySpace(), seed=1, objectives=OBJECTIVES)
    first, second = strategy.ask(), strategy.ask()
    strategy.tell(observe_both(first))
    strategy.tell(Observation(second, None, INFEASIBLE))
    done, rejected = strategy.study.trials
    assert done.state is TrialState.COMPLETE and done.values == [
        observe_both(first).metrics["score"],
        observe_both(first).metrics["cost"],
    ]
    assert rejected.state is TrialState.FAIL  # left out of every population
    missing = Observation(strategy.ask(), 1.0, "COMPLETE", metrics={"score": 1.0})
    strategy.tell(missing)  # an objective missing: not a result either
    assert strategy.study.trials[-1].state is TrialState.FAIL


@pytest.mark.parametrize(("budget", "population"), [(None, 50), (20, 4), (100, 10), (1000, 50)])
def test_population_scales_with_the_budget(budget: int | None, population: int) -> None:
    assert NSGA2Strategy(ToySpace(), budget=budget).population_size == population


@pytest.mark.parametrize(
    "options", [{"population_size": 1}, {"mutation_prob": 1.5}, {"crossover_prob": -0.1}]
)
def test_bad_options(options: dict) -> None:
    with pytest.raises(ConfigError, match="nsga2"):
        NSGA2Strategy(ToySpace(), **options)
