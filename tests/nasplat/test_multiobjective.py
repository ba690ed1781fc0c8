"""Multi-objective searches on the NAS-Bench-201 table: constraints checked before a trial
exists, the hypervolume recorded per trial, resume, and ``nasplat pareto``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nasplat.run.loop
from nasplat.config import SearchConfig
from nasplat.pareto import hypervolume, orient, oriented_point, study_pareto_front
from nasplat.run.blackbox import run_black_box
from nasplat.run.study import prepare
from nasplat.store import MemoryStore, Store
from nasplat.strategy import INFEASIBLE, Observation
from tests.conftest import run_main

OBJECTIVES = [("val_acc", "maximize"), ("params", "minimize")]
TABLE = ["--space", "nb201", "--evaluator", "tabular", "--table", "nb201"]
TABLE += ["--metric", "cifar10_valid_acc", "--objective", "val_acc,params", "--no-progress"]


def config(**fields: Any) -> SearchConfig:
    """An NB201 table search for val_acc and params (built from each cell)."""
    options = {"table": "nb201", "metric": "cifar10_valid_acc"}
    options.update(fields.pop("evaluator_options", {}))
    return SearchConfig.from_dict(
        {
            "study": "mo",
            "space": "nb201",
            "evaluator": "tabular",
            "evaluator_options": options,
            "objective": "val_acc,params",
            "keep_weights": "none",
            **fields,
        }
    )


def test_constraints_cost_no_trial_and_the_strategy_is_told() -> None:
    store = MemoryStore()
    run = prepare(
        config(
            strategy="nsga2",
            budget=12,
            evaluator_options={"constraints": ["params<=2e5"]},
            strategy_options={"population_size": 4},
        ),
        store,
    )
    told: list[Observation] = []
    tell = run.strategy.tell

    def spy(observation: Observation) -> None:
        told.append(observation)
        tell(observation)

    run.strategy.tell = spy  # type: ignore[method-assign]
    run_black_box(run, progress=False)
    trials = store.trials(run.study.id)
    assert len(trials) == 12  # the whole budget went to feasible architectures
    assert all(t.state == "COMPLETE" and t.metrics["params"] <= 2e5 for t in trials)
    infeasible = [o for o in told if o.state == INFEASIBLE]
    assert infeasible and all(o.value is None for o in infeasible)
    evaluated = {t.arch_hash for t in trials}
    for observation in infeasible:
        canonical = run.space.canonicalize(observation.genotype)
        assert canonical.sha not in evaluated
        assert "params<=200000 violated" in run.evaluator.precheck(canonical, run.budget)


def test_no_feasible_architecture_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(nasplat.run.loop, "MAX_CONSECUTIVE_INFEASIBLE", 100)
    code, out, err = run_main(
        "-q",
        "search",
        *TABLE,
        "--strategy",
        "nsga2",
        "--budget",
        "5",
        "--constraint",
        "cifar10_valid_acc>=100",
        cwd=tmp_path,
    )
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(
        "nasplat: error: no architecture found that satisfies the constraints: 100 proposals "
        "in a row broke the constraints (last: constraint cifar10_valid_acc>=100 violated"
    )
    store = Store(f"sqlite:///{tmp_path / 'nasplat.db'}")
    assert store.trials("nb201-nsga2-tabular") == []  # not one trial was created


@pytest.mark.parametrize("strategy", ["nsga2", "evolution"])
def test_hypervolume_is_recorded_per_trial_and_never_decreases(strategy: str) -> None:
    store = MemoryStore()
    run = prepare(config(strategy=strategy, budget=30), store)
    run_black_box(run, progress=False)
    trials = store.trials(run.study.id)
    volumes = [t.metrics["hypervolume"] for t in trials]
    assert len(volumes) == 30
    assert all(b >= a for a, b in zip(volumes, volumes[1:], strict=False))
    assert volumes[-1] > volumes[0] > 0
    # the default reference point: the first trial, each objective made worse by its size, at
    # least 1 (val_acc is a fraction)
    reference = store.get_study("mo").config["reference_point"]
    assert reference == [trials[0].metrics["val_acc"] - 1.0, 2 * trials[0].metrics["params"]]
    front = study_pareto_front(store, "mo")
    points = [oriented_point(t.metrics, OBJECTIVES) for t in front]
    assert len(front) > 1
    assert volumes[-1] == pytest.approx(hypervolume(points, orient(reference, OBJECTIVES)))


@pytest.mark.parametrize("strategy", ["nsga2", "evolution"])
def test_a_resumed_study_continues_as_an_uninterrupted_one(tmp_path: Path, strategy: str) -> None:
    def search(url: str, budget: int, resume: bool = False) -> Store:
        store = Store(url)
        fields = {
            "strategy": strategy,
            "strategy_options": {"population_size": 6},
            "evaluator_options": {"constraints": ["params<=1.5e5"]},  # what was infeasible stays so
        }
        override = ("budget",) if resume else ()  # the new total (else the stored 14)
        run = prepare(
            config(budget=budget, seed=3, **fields), store, resume=resume, override=override
        )
        run_black_box(run, progress=False)
        return store

    split = f"sqlite:///{tmp_path / 'split.db'}"
    search(split, 14)
    resumed = search(split, 30, resume=True)
    whole = search(f"sqlite:///{tmp_path / 'whole.db'}", 30)
    series = [
        [(t.arch_hash, t.metrics["hypervolume"]) for t in store.trials("mo")]
        for store in (resumed, whole)
    ]
    assert len(series[0]) == 30 and series[0] == series[1]


def test_cli_pareto_states_the_hypervolume_and_reference_point(tmp_path: Path) -> None:
    code, _, err = run_main(
        "search",
        *TABLE,
        "--strategy",
        "evolution",
        "--budget",
        "8",
        "--reference-point",
        "0,1.6e6",
        cwd=tmp_path,
    )
    assert code == 0, err
    code, out, err = run_main(
        "pareto", "--study", "nb201-evolution-tabular", "--format", "csv", cwd=tmp_path
    )
    assert code == 0 and out.splitlines()[0] == "number,val_acc,params,hypervolume,genotype"
    store = Store(f"sqlite:///{tmp_path / 'nasplat.db'}")
    front = study_pareto_front(store, "nb201-evolution-tabular")
    volume = hypervolume(
        [oriented_point(t.metrics, OBJECTIVES) for t in front], orient([0, 1.6e6], OBJECTIVES)
    )
    assert err.strip() == (
        f"hypervolume {volume:.6g} of {len(front)} non-dominated trial(s); "
        "reference point val_acc=0, params=1.6e+06"
    )
    assert store.trials("nb201-evolution-tabular")[-1].metrics["hypervolume"] == pytest.approx(
        volume
    )
    code, _, err = run_main(
        "pareto", "--study", "nb201-evolution-tabular", "--reference-point", "0", cwd=tmp_path
    )
    assert code == 2 and err.strip() == (
        "nasplat: error: reference point must be 2 finite numbers, one per objective "
        "(val_acc, params), got '0'"
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reference_point": "0,1e6"}, "a reference point is for multi-objective studies"),
        (
            {"objective": "val_acc,params", "reference_point": [0, "x"]},
            "reference point must be 2 finite numbers",
        ),
    ],
)
def test_bad_reference_points(fields: dict, message: str) -> None:
    from nasplat.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        SearchConfig.from_dict(fields)
