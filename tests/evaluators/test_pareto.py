"""Multi-objective studies and their Pareto fronts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from evaluator_helpers import TINY

from nasplat.config import SearchConfig
from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.pareto import non_dominated_sort, pareto_front, study_pareto_front
from nasplat.run import run_search
from nasplat.store import Store
from nasplat.store.records import TrialRecord


def record(number: int, acc: float, flops: float, state: str = "COMPLETE") -> TrialRecord:
    return TrialRecord(
        id=number,
        study_id=1,
        number=number,
        state=state,
        genotype=Genotype("chain", {"n": number}),
        arch_hash=str(number),
        budget={},
        value=acc,
        metrics={"val_acc": acc, "flops": flops},
        started_at=datetime.now(UTC),
        finished_at=None,
        worker=None,
        error=None,
    )


def test_non_dominated_sorting() -> None:
    trials = [
        record(0, 0.9, 100),
        record(1, 0.8, 50),
        record(2, 0.7, 80),
        record(3, 0.95, 200),
        record(4, 0.99, 10, "FAILED"),
        record(5, 0.8, 50),
    ]
    objectives = [("val_acc", "maximize"), ("flops", "minimize")]
    fronts = non_dominated_sort(trials, objectives)
    assert [[t.number for t in f] for f in fronts] == [[0, 1, 3, 5], [2]]
    assert [t.number for t in pareto_front(trials, [("val_acc", "maximize")])] == [3]
    assert pareto_front([], objectives) == []


def test_objective_and_direction_lists() -> None:
    config = SearchConfig(objective="val_acc,flops,latency_ms", direction="maximize")
    assert config.objective_list() == [
        ("val_acc", "maximize"),
        ("flops", "minimize"),
        ("latency_ms", "minimize"),
    ]
    assert SearchConfig(objective="val_loss").objective_list()[0][1] == "minimize"
    with pytest.raises(ConfigError, match="3 directions for 2"):
        SearchConfig(objective="a,b", direction="maximize,minimize,minimize")
    with pytest.raises(ConfigError, match="direction must be maximize or minimize"):
        SearchConfig(objective="a,b", direction="maximize,down")
    with pytest.raises(ConfigError, match="distinct metric names"):
        SearchConfig(objective="a,a")


def test_multi_objective_search_keeps_every_objective_and_its_front() -> None:
    store = Store("sqlite://")
    config = SearchConfig.from_dict(
        {
            "study": "mo",
            "space": "chain",
            "space_options": {**TINY, "widths": [4, 8, 16]},
            "strategy": "random",
            "budget": 4,
            "epochs": 1,
            "objective": "val_acc,flops",
        }
    )
    run_search(config, store, progress=False)
    study = store.get_study("mo")
    assert study.objectives == (("val_acc", "maximize"), ("flops", "minimize"))
    trials = store.trials("mo")
    assert all(t.value == t.metrics["val_acc"] and "flops" in t.metrics for t in trials)
    front = study_pareto_front(store, "mo")
    assert front and all(
        not any(
            o.metrics["val_acc"] >= t.metrics["val_acc"]
            and o.metrics["flops"] <= t.metrics["flops"]
            and (o.metrics["val_acc"], o.metrics["flops"])
            != (t.metrics["val_acc"], t.metrics["flops"])
            for o in trials
        )
        for t in front
    )
