"""The search loop in process: budgets, dedup, failures, checkpoints."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from nasplat.config import SearchConfig
from nasplat.genotype import Genotype
from nasplat.registry import OPS, STRATEGIES
from nasplat.run import drive, prepare, run_search
from nasplat.run.loop import MAX_CONSECUTIVE_DUPLICATES
from nasplat.store import Store
from nasplat.strategy import Observation, Strategy

TINY = {
    "layers": 2,
    "widths": [8],
    "ops": ["conv_3x3", "max_pool_3x3", "skip_connect"],
    "skip": False,
}


class _Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("shape mismatch in broken op")


def broken_op(c_in: int, c_out: int, stride: int) -> nn.Module:
    """An operator whose forward raises (registered only for these tests)."""
    return _Broken()


class ConstantStrategy(Strategy):
    """Always proposes the same genotype (to exercise deduplication)."""

    name = "test-constant"

    def __init__(self, space: Any, **kw: Any) -> None:
        super().__init__(space, **kw)
        self.told: list[Observation] = []

    def ask(self) -> Genotype:
        return self.space.sample(__import__("random").Random(0))

    def tell(self, observation: Observation) -> None:
        self.told.append(observation)


@pytest.fixture(autouse=True)
def _test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the test op and strategy for each test only (registry-driven tests elsewhere
    iterate over every registered op)."""
    for registry, name, obj in (
        (OPS, "broken_op", broken_op),
        (STRATEGIES, "test-constant", ConstantStrategy),
    ):
        monkeypatch.setitem(registry._items, name, obj)
        monkeypatch.setitem(registry._meta, name, {"family": "test", "description": "test only"})


def config(**kw: Any) -> SearchConfig:
    base = dict(
        study="s",
        space="chain",
        space_options=TINY,
        strategy="evolution",
        budget=5,
        epochs=1,
        strategy_options={"population_size": 3, "tournament_size": 2},
    )
    base.update(kw)
    return SearchConfig.from_dict(base)


def test_search_stores_budgeted_trials_with_curves_and_checkpoint() -> None:
    store = Store("sqlite://")
    result = run_search(config(), store, progress=False)
    trials = store.trials("s", with_intermediate=True)
    assert result.trials_run == 5 and len(trials) == 5
    assert all(t.state == "COMPLETE" and len(t.intermediate) == 1 for t in trials)
    assert all(
        t.budget["epochs"] == 1 and {"params", "flops", "val_acc"} <= set(t.metrics) for t in trials
    )
    assert result.best is not None and result.best.value == max(t.value for t in trials)
    state = store.load_checkpoint(result.study.id)["strategy"]
    assert len(state["population"]) == 3 and state["asked"] >= 5
    assert len({t.arch_hash for t in trials}) == 5  # no architecture evaluated twice


def test_duplicates_are_skipped_and_told_from_the_store(caplog: pytest.LogCaptureFixture) -> None:
    store = Store("sqlite://")
    run = prepare(config(strategy="test-constant", strategy_options={}, budget=3), store)
    with caplog.at_level("INFO", logger="nasplat"):
        result = drive(run, progress=False)
    assert result.trials_run == 1  # the only architecture it proposes is evaluated once
    told = run.strategy.told
    assert len(told) == MAX_CONSECUTIVE_DUPLICATES + 1
    assert not told[0].cached and all(o.cached and o.value == told[0].value for o in told[1:])
    assert "already evaluated as trial 0" in caplog.text


def test_a_failing_trial_is_stored_failed_and_the_search_goes_on() -> None:
    store = Store("sqlite://")
    options = {**TINY, "ops": ["conv_3x3", "max_pool_3x3", "broken_op"]}
    run_search(
        config(space_options=options, strategy="random", strategy_options={}, budget=4),
        store,
        progress=False,
    )
    trials = store.trials("s")
    assert len(trials) == 4
    failed = [t for t in trials if t.state == "FAILED"]
    complete = [t for t in trials if t.state == "COMPLETE"]
    assert failed and complete
    for t in failed:
        assert "broken_op" in {t.genotype["layer0.op"], t.genotype["layer1.op"]}
        assert t.error == "RuntimeError: shape mismatch in broken op" and t.value is None


def test_nan_loss_fails_the_trial_with_its_message() -> None:
    store = Store("sqlite://")
    cfg = config(strategy="random", strategy_options={}, budget=2, evaluator_options={"lr": 1e30})
    run_search(cfg, store, progress=False)
    trials = store.trials("s")
    assert [t.state for t in trials] == ["FAILED", "FAILED"]
    assert all("non-finite loss" in t.error for t in trials)


@pytest.mark.serial  # 10 ms of wall time: the first ask must come before it runs out
def test_time_limit_stops_asking() -> None:
    store = Store("sqlite://")
    run_search(config(budget=100, time_limit=0.01), store, progress=False)
    assert 1 <= len(store.trials("s")) < 100


def test_minimize_objective_orders_best_accordingly() -> None:
    store = Store("sqlite://")
    result = run_search(
        config(objective="params", strategy="random", strategy_options={}, budget=4),
        store,
        progress=False,
    )
    assert result.study.direction == "minimize"
    assert result.best.value == min(t.value for t in store.trials("s"))
