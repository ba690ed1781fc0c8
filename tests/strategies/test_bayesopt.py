"""Bayesian optimisation: the Gaussian process ranks what it should, the strategy proposes only
new architectures, keeps the strategy contract and runs from the CLI."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from toy import (
    CHOICES,
    TARGET,
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
from nasplat.registry import SPACES, STRATEGIES, load_builtins
from nasplat.store import Store
from nasplat.strategy import INFEASIBLE, Observation
from strategies._encoding import decode, encode
from strategies.bayesopt import BayesOpt, HammingGP, copula
from tests.conftest import run_main


def test_the_process_ranks_the_optimum_first_among_unseen_genotypes() -> None:
    space = ToySpace()
    rng = random.Random(0)
    train = [space.sample(rng) for _ in range(40)]
    target = decode(space, TARGET)
    assert target not in train
    others = [g for g in (space.sample(rng) for _ in range(200)) if g != target]
    model = HammingGP([len(c) for c in CHOICES])
    model.fit([encode(space, g) for g in train], [objective(g) for g in train])
    mean, sd = model.predict([encode(space, g) for g in [target, *others]])
    assert int(np.argmax(mean)) == 0  # never seen, predicted best of 201
    assert mean.shape == sd.shape == (201,) and (sd > 0).all()
    _, at_train = model.predict([encode(space, train[0])])
    assert at_train[0] < sd.mean()  # surer where it has a result


def test_copula_ranks_with_ties_and_keeps_the_order() -> None:
    y = copula(np.array([10.0, 84.0, 84.0, 50.0]))
    assert y[1] == y[2] and y[0] < y[3] < y[1]
    assert copula(np.array([3.0, 1.0, 2.0])).tolist() == pytest.approx(
        [0.9674, -0.9674, 0.0], abs=1e-4
    )


def test_beats_random_and_minimises() -> None:
    check_beats_random(BayesOpt, n=30, seeds=range(4), margin=1.0)
    check_minimize(BayesOpt, n=30, seeds=range(2), margin=1.0)


def test_contract_determinism_failures_and_exact_resume() -> None:
    check_deterministic(BayesOpt)
    check_exact_resume(BayesOpt)
    strategy = check_failures_and_order(BayesOpt)
    assert len(strategy.told) >= len(strategy.history) > 0


def nb201_score(genotype) -> float:  # noqa: ANN001 - a synthetic objective: convs count, 3x3 more
    return sum(
        {"nor_conv_3x3": 2.0, "nor_conv_1x1": 1.0}.get(str(v), 0.0) for v in genotype.values()
    )


def test_never_proposes_an_architecture_told_or_known_to_the_study() -> None:
    load_builtins()
    space = SPACES.create("nb201")
    rng = random.Random(1)
    known = {space.canonicalize(space.sample(rng)).sha for _ in range(300)}
    strategy = BayesOpt(space, seed=2, n_init=4)
    strategy.avoid(lambda g: space.canonicalize(g).sha in known)
    asked = []
    for _ in range(40):
        genotype = strategy.ask()
        asked.append(space.canonicalize(genotype).sha)
        strategy.tell(Observation(genotype, nb201_score(genotype), "COMPLETE"))
    assert len(set(asked)) == 40  # each ask a new class (4,930 of 15,625 cells)
    assert not set(asked) & known
    assert max(s for _, s in strategy.history) >= 10.0  # 12 is the optimum, random ~6


def test_infeasible_and_failed_are_not_results_and_not_asked_again() -> None:
    strategy = BayesOpt(ToySpace(), seed=0, n_init=2)
    first, second, third = (strategy.ask() for _ in range(3))
    strategy.tell(Observation(first, None, INFEASIBLE))
    strategy.tell(observe(second, None))
    strategy.tell(observe(third, objective(third)))
    strategy.tell(observe(third, objective(third)))  # a duplicate answered from the book
    assert [g for g, _ in strategy.history] == [third] and not strategy.pending
    for _ in range(20):
        genotype = strategy.ask()
        assert genotype not in (first, second, third)
        strategy.tell(observe(genotype, objective(genotype)))


def test_options_validate_and_scale_with_the_budget() -> None:
    assert [BayesOpt(ToySpace(), budget=b).n_init for b in (None, 10, 50, 100, 1000)] == [
        10,
        2,
        5,
        10,
        10,
    ]
    assert BayesOpt(ToySpace(), budget=50, n_init=7).n_init == 7
    for bad in (
        {"n_init": 0},
        {"parents": 0, "n_random": 0},
        {"neighbours": 0},
        {"acquisition": "pi"},
        {"beta": -1.0},
        {"max_points": 1},
    ):
        with pytest.raises(ConfigError, match="bayesopt"):
            BayesOpt(ToySpace(), **bad)
    load_builtins()
    assert STRATEGIES.get("bayesopt") is BayesOpt
    with pytest.raises(ConfigError, match="unknown option"):
        STRATEGIES.create("bayesopt", ToySpace(), n_inits=3)


def test_ucb_a_capped_model_and_fewer_neighbours_still_search() -> None:
    def factory(space, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return BayesOpt(
            space, acquisition="ucb", beta=0.5, max_points=12, n_random=20, neighbours=6, **kwargs
        )

    check_beats_random(factory, n=30, seeds=range(2), margin=0.5)


def test_cli_search_on_the_nb201_table(tmp_path: Path) -> None:
    code, _, err = run_main(
        "search", "--space", "nb201", "--strategy", "bayesopt", "--evaluator", "tabular",
        "--table", "nb201", "--metric", "cifar10_valid_acc", "--budget", "20",
        "--study", "bo", "--no-progress",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    store = Store(f"sqlite:///{tmp_path / 'nasplat.db'}")
    trials = store.trials("bo")
    assert len(trials) == 20 and all(t.state == "COMPLETE" for t in trials)
    assert len({t.arch_hash for t in trials}) == 20
    state = store.load_checkpoint(store.get_study("bo").id)["strategy"]
    assert state["asked"] >= 20 and len(state["history"]) == 20
