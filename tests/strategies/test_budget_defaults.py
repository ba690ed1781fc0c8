"""Strategy defaults scale with the study's trial budget; explicit options win."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasplat.config import SearchConfig
from nasplat.registry import load_builtins
from nasplat.run.study import build_plugins
from nasplat.store import Store
from strategies.evolution import RegularizedEvolution
from strategies.rl import ReinforceStrategy
from strategies.tpe import TPEStrategy
from tests.conftest import TINY_CHAIN, run_main
from tests.strategies.toy import ToySpace


@pytest.mark.parametrize(
    ("budget", "population", "tournament"),
    [(None, 20, 10), (8, 2, 2), (20, 5, 5), (50, 12, 10), (100, 20, 10), (1000, 20, 10)],
)
def test_evolution_population_scales(budget: int | None, population: int, tournament: int) -> None:
    strategy = RegularizedEvolution(ToySpace(), budget=budget)
    assert (strategy.population_size, strategy.tournament_size) == (population, tournament)


def test_explicit_options_win() -> None:
    assert RegularizedEvolution(ToySpace(), budget=20, population_size=10).population_size == 10
    assert ReinforceStrategy(ToySpace(), budget=10, batch_size=8).batch_size == 8
    assert TPEStrategy(ToySpace(), budget=10, n_startup_trials=7).n_startup_trials == 7


def test_rl_and_tpe_scale() -> None:
    assert [ReinforceStrategy(ToySpace(), budget=b).batch_size for b in (None, 5, 20, 100)] == [
        4,
        1,
        2,
        4,
    ]
    assert [TPEStrategy(ToySpace(), budget=b).n_startup_trials for b in (None, 5, 20, 100)] == [
        10,
        2,
        4,
        10,
    ]


def test_build_plugins_passes_the_budget_only_to_strategies_that_take_it() -> None:
    load_builtins()
    base = {"space": "chain", "budget": 20}
    _, evolution, _ = build_plugins(SearchConfig.from_dict({**base, "strategy": "evolution"}))
    assert evolution.budget == 20 and evolution.population_size == 5
    _, random_search, _ = build_plugins(SearchConfig.from_dict({**base, "strategy": "random"}))
    assert random_search.budget is None  # random does not declare takes_budget
    _, resumed, _ = build_plugins(
        SearchConfig.from_dict({**base, "strategy": "evolution"}), strategy_budget=100
    )
    assert resumed.population_size == 20


def test_readme_evolution_command_evolves(tmp_path: Path) -> None:
    """``nasplat search --space chain --strategy evolution --budget 20`` (tiny network, 1 epoch):
    5 random trials, then 15 children, each one decision away from an earlier trial."""
    args = ["search", "--space", "chain", "--strategy", "evolution", "--budget", "20"]
    code, _, err = run_main(
        *args, "--epochs", "1", "--study", "s", "--no-progress", *TINY_CHAIN, cwd=tmp_path
    )
    assert code == 0, err
    store = Store(f"sqlite:///{tmp_path / 'nasplat.db'}")
    trials = sorted(store.trials("s"), key=lambda t: t.number)
    assert len(trials) == 20
    state = store.load_checkpoint(store.get_study("s").id)["strategy"]
    assert len(state["population"]) == 5 and state["asked"] >= 20

    def distance(a: dict, b: dict) -> int:
        return sum(a[k] != b[k] for k in a)

    children = trials[5:]
    assert all(
        min(distance(dict(t.genotype), dict(p.genotype)) for p in trials[: t.number]) == 1
        for t in children
    ), [dict(t.genotype) for t in children]
