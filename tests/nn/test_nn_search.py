"""Searches over a nasplat.nn model space through the run layer: black-box and one-shot."""

from __future__ import annotations

from typing import Any

import pytest
from nn_models import PlainUse, ThreeBlockCNN

import nasplat.nn as nsn
from nasplat.config import SearchConfig
from nasplat.registry import SPACES, load_builtins
from nasplat.run import run_search
from nasplat.store import Store
from strategies.enas import Enas

SPACE = "nn-test-cnn"


def cnn_space(**options: Any) -> nsn.ModelSpace:
    return nsn.ModelSpace(ThreeBlockCNN, name=SPACE, **options)


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    load_builtins()
    monkeypatch.setitem(SPACES._items, SPACE, cnn_space)
    monkeypatch.setitem(SPACES._meta, SPACE, {"description": "test only"})


def search(strategy: str, **options: Any) -> tuple[Any, Store]:
    store = Store("sqlite://")
    config = SearchConfig(
        study=strategy,
        space=SPACE,
        strategy=strategy,
        strategy_options=options,
        budget=3,
        epochs=1,
        data_fraction=0.25,
        device="cpu",
    )
    return run_search(config, store, progress=False), store


@pytest.mark.parametrize(
    ("strategy", "options"),
    [("random", {}), ("evolution", {"population_size": 2, "tournament_size": 2})],
)
def test_black_box_search(strategy: str, options: dict[str, Any]) -> None:
    result, store = search(strategy, **options)
    trials = store.trials(result.study.id)
    assert len(trials) == 3 and all(t.state == "COMPLETE" for t in trials)
    assert result.best is not None and result.best.genotype.space == SPACE


ONE_SHOT = {"epochs": 1, "max_batches": 2, "batch_size": 32, "retrain_epochs": 1}


@pytest.mark.parametrize(
    ("strategy", "options"),
    [("darts", {}), ("enas", {"controller_steps": 2, "final_samples": 2})],
)
def test_one_shot_search(strategy: str, options: dict[str, Any]) -> None:
    result, store = search(strategy, **ONE_SHOT, **options)
    supernet, retrain = store.trials(result.study.id)
    assert (supernet.tag, supernet.state) == ("supernet", "COMPLETE")
    assert (retrain.tag, retrain.state) == ("retrain", "COMPLETE")
    assert retrain.genotype == supernet.genotype
    cnn_space().validate(retrain.genotype)
    values = dict(store.intermediate_values(supernet.id, "value"))
    assert list(values) == [1]
    if strategy == "darts":
        alphas = store.intermediate_values(supernet.id, "alpha.b0.op.sepconv")
        assert len(alphas) == 1


def test_enas_never_samples_values_the_supernet_cannot_vary() -> None:
    space = nsn.ModelSpace(PlainUse)
    enas = Enas(space, seed=0)
    samples = [enas.sample()[0] for _ in range(20)] + [enas.derived()]
    assert {(g["width"], g["depth"]) for g in samples} == {(4, 1)}
    assert {g["layerchoice_1"] for g in samples} == {"Conv2d_0", "Conv2d_1"}
