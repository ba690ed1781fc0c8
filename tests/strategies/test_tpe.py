"""The ``tpe`` strategy (Optuna's TPESampler as an in-memory engine)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from optuna.samplers import TPESampler
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
from strategies.tpe import TPEStrategy, UnseenFirstTPESampler


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


class PlainTPE(TPEStrategy):
    """The same strategy on Optuna's own sampler (argmax over every candidate)."""

    def make_sampler(self) -> TPESampler:
        return TPESampler(n_startup_trials=self.n_startup_trials, multivariate=True,
                          constant_liar=True, seed=self.seed)  # fmt: skip


def closed_seen_proposals(cls: type[TPEStrategy], trials: int) -> int:
    """Optuna trials closed as FAIL because they proposed a genotype the study had seen."""
    strategy = cls(ToySpace(), seed=3, n_startup_trials=5)
    told: set = set()
    strategy.avoid(told.__contains__)
    for _ in range(trials):
        genotype = strategy.ask()
        told.add(genotype)
        strategy.tell(observe(genotype, objective(genotype)))
    return sum(t.state is TrialState.FAIL for t in strategy.study.trials)


def test_seen_candidates_lose_the_acquisition_argmax() -> None:
    sampler = UnseenFirstTPESampler(lambda params: params["d0"] == 0, seed=0)

    class Flat:
        def log_pdf(self, samples: dict) -> np.ndarray:
            return np.zeros(len(samples["d0"]))

    samples = {"d0": np.array([0.0, 1.0, 0.0, 2.0]), "d1": np.array([1.0, 1.0, 0.0, 3.0])}
    values = sampler._compute_acquisition_func(samples, Flat(), Flat())
    # equal acquisition: the first candidate is seen, so the argmax moves to the first new one
    assert int(np.argmax(values)) == 1 and values[0] == -np.inf


def test_only_candidates_above_the_best_unseen_are_checked() -> None:
    checked: list[int] = []

    def seen(params: dict) -> bool:
        checked.append(params["d0"])
        return params["d0"] in (0, 3)

    sampler = UnseenFirstTPESampler(seen, seed=0)

    class Ranked:  # acquisition = d0's rank: candidate 3 is the best, then 2, 1, 0
        def __init__(self, sign: float) -> None:
            self.sign = sign

        def log_pdf(self, samples: dict) -> np.ndarray:
            return self.sign * samples["d0"]

    samples = {"d0": np.array([0.0, 1.0, 2.0, 3.0])}
    values = sampler._compute_acquisition_func(samples, Ranked(1.0), Ranked(-1.0))
    assert int(np.argmax(values)) == 2  # 3 is seen; 2 is the best new candidate
    assert checked == [3, 2]  # 1 and 0 were never looked up


def test_tpe_spends_fewer_fits_on_seen_architectures() -> None:
    ours, plain = closed_seen_proposals(TPEStrategy, 150), closed_seen_proposals(PlainTPE, 150)
    assert plain > 20 and ours < plain / 4


class Drawing:
    """A Parzen estimator stand-in: flat density; ``sample`` draws the next of ``draws``."""

    def __init__(self, draws: list[float]) -> None:
        self.draws = draws

    def log_pdf(self, samples: dict) -> np.ndarray:
        return np.zeros(len(samples["d0"]))

    def sample(self, rng: object, size: int) -> dict:
        return {"d0": np.array([self.draws.pop(0) for _ in range(size)])}


def test_all_seen_candidates_draw_more_from_the_same_fit() -> None:
    sampler = UnseenFirstTPESampler(lambda params: params["d0"] < 5, seed=0, n_ei_candidates=2)
    samples = {"d0": np.array([0.0, 1.0])}
    below = Drawing([2.0, 3.0, 4.0, 7.0])
    values = sampler._compute_acquisition_func(samples, below, Drawing([]))
    # two more batches were drawn into the caller's dict; the argmax is the first unseen one
    assert samples["d0"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 7.0]
    assert len(values) == 6 and samples["d0"][int(np.argmax(values))] == 7.0


def test_all_seen_after_every_extra_round_gives_the_plain_argmax() -> None:
    sampler = UnseenFirstTPESampler(lambda params: True, seed=0, n_ei_candidates=1)
    sampler.extra_rounds = 2
    samples = {"d0": np.array([0.0])}
    values = sampler._compute_acquisition_func(samples, Drawing([1.0, 2.0]), Drawing([]))
    assert samples["d0"].tolist() == [0.0, 1.0, 2.0] and np.isfinite(values).all()


def test_seen_genotypes_are_looked_up_once() -> None:
    looked_up: list = []
    strategy = TPEStrategy(ToySpace(), seed=0)
    first = strategy.space.decisions()[0].choices[0]
    strategy.avoid(lambda genotype: looked_up.append(genotype) or genotype["d0"] == first)
    params = {name: 0 for name in strategy.distributions}
    assert strategy._params_seen(params) and strategy._params_seen(params)
    assert len(looked_up) == 1  # seen stays seen: the second answer came from memory
    unseen = {**params, "d0": 1}
    assert not strategy._params_seen(unseen) and not strategy._params_seen(unseen)
    assert len(looked_up) == 3  # an unseen genotype may be evaluated since: asked each time
