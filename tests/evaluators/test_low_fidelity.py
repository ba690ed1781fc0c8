"""The low-fidelity evaluator: cheaper budgets, proxy tasks, and budgets stored per trial."""

from __future__ import annotations

from typing import Any

import pytest
from evaluator_helpers import TINY

from evaluators.low_fidelity import LowFidelityEvaluator
from nasplat.budget import Budget
from nasplat.config import SearchConfig
from nasplat.errors import ConfigError
from nasplat.evaluator import Reporter
from nasplat.run import run_search


def test_defaults_fill_only_fields_the_search_left_alone(tiny: Any) -> None:
    evaluator = LowFidelityEvaluator(tiny, data_fraction=0.25, width_mult=0.5)
    assert evaluator.resolve_budget(Budget()) == Budget(
        epochs=3, data_fraction=0.25, width_mult=0.5
    )
    given = Budget(epochs=1, data_fraction=0.8, resolution=6)
    assert evaluator.resolve_budget(given) == Budget(
        epochs=1, data_fraction=0.8, width_mult=0.5, resolution=6
    )


def test_proxy_task_keeps_classes_and_caps_samples(tiny: Any) -> None:
    evaluator = LowFidelityEvaluator(tiny, epochs=1, data_fraction=1.0, classes=3, samples=60)
    budget = evaluator.resolve_budget(Budget())
    assert budget.extra == {"proxy_of": "digits", "classes": [0, 1, 2], "samples": 60}
    splits = evaluator.load_splits(budget)
    assert splits.num_classes == 3 and 55 <= len(splits.train) <= 65
    assert set(splits.val.tensors[1].tolist()) == {0, 1, 2}
    result = evaluator.evaluate(tiny.sample(__import__("random").Random(0)), budget, Reporter())
    assert result.epochs_run == 1 and 0 <= result.metrics["val_acc"] <= 1


def test_width_and_resolution_shrink_the_network(tiny: Any) -> None:
    import random

    evaluator = LowFidelityEvaluator(tiny, epochs=0)
    genotype = tiny.sample(random.Random(1))
    full = evaluator.evaluate(genotype, Budget(width_mult=1.0, data_fraction=1.0), Reporter())
    cheap = evaluator.evaluate(
        genotype, Budget(width_mult=0.5, resolution=4, data_fraction=0.5), Reporter()
    )
    assert cheap.metrics["params"] < full.metrics["params"]
    assert cheap.metrics["flops"] < full.metrics["flops"]


def test_bad_options_are_config_errors(tiny: Any) -> None:
    with pytest.raises(ConfigError, match="no cells to reduce"):
        LowFidelityEvaluator(tiny, cells=2)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        LowFidelityEvaluator(tiny, classes=[3])
    with pytest.raises(ConfigError, match="unknown option"):
        LowFidelityEvaluator(tiny, colour="red")


def test_cells_map_to_the_space_option(nb201: Any) -> None:
    import random

    evaluator = LowFidelityEvaluator(nb201, epochs=0, cells=2)
    budget = evaluator.resolve_budget(Budget())
    genotype = nb201.sample(random.Random(0))
    deeper = evaluator.evaluate(genotype, budget, Reporter()).metrics["params"]
    shallow = evaluator.evaluate(genotype, budget.replace(cells=1), Reporter()).metrics["params"]
    assert budget.cells == 2 and shallow < deeper


def test_search_stores_the_budget_each_trial_ran_at_and_never_mixes_budgets() -> None:
    from nasplat.store import Store

    store = Store("sqlite://")
    base = {
        "space": "chain",
        "space_options": TINY,
        "strategy": "random",
        "evaluator": "low-fidelity",
        "budget": 2,
    }
    run_search(SearchConfig.from_dict({**base, "study": "a"}), store, progress=False)
    run_search(
        SearchConfig.from_dict({**base, "study": "b", "data_fraction": 0.3, "epochs": 1}),
        store,
        progress=False,
    )
    a, b = store.trials("a"), store.trials("b")
    assert all(t.budget["epochs"] == 3 and t.budget["data_fraction"] == 0.5 for t in a)
    assert all(t.budget["epochs"] == 1 and t.budget["data_fraction"] == 0.3 for t in b)
    assert (
        store.find_evaluated(store.get_study("a").id, a[0].genotype, Budget.from_dict(b[0].budget))
        is None
    )
