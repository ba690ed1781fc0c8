"""Every evaluator of this package is registered, picklable and rebuilt from name + options."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from evaluator_helpers import NB201

from nasplat.errors import ConfigError
from nasplat.registry import EVALUATORS

OPTIONS: dict[str, dict[str, Any]] = {
    "low-fidelity": {"epochs": 1, "classes": 4},
    "early-stop": {"pruner": "asha", "epochs": 3, "reduction_factor": 2},
    "proxy": {"proxy": "naswot"},
    "ladder": {"eta": 2, "epochs": 2},
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_pickles_and_rejects_unknown_options(tiny: Any, name: str) -> None:
    cls = EVALUATORS.get(name)
    evaluator = cls(tiny, dataset="digits", seed=1, **OPTIONS[name])
    clone = pickle.loads(pickle.dumps(evaluator))
    assert type(clone) is cls and clone.resolve_budget(None) == evaluator.resolve_budget(None)
    with pytest.raises(ConfigError, match="unknown option"):
        cls(tiny, dataset="digits", wobble=1)


def test_tabular_pickles_without_its_table(nb201: Any) -> None:
    evaluator = EVALUATORS.get("tabular")(nb201, table=NB201, metric="cifar10_valid_acc")
    assert len(pickle.dumps(evaluator)) < 10_000
