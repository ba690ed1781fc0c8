"""The fidelity ladder: successive-halving promotion across evaluators, one row per rung."""

from __future__ import annotations

from typing import Any

import pytest
from evaluator_helpers import TINY

from evaluators.ladder import LadderEvaluator, parse_rungs
from nasplat.config import SearchConfig
from nasplat.errors import ConfigError
from nasplat.run import run_search
from nasplat.run.ladder import plan
from nasplat.store import Store


def test_plan_and_rung_parsing(tiny: Any) -> None:
    assert (
        plan(9, 3, 3) == [9, 3, 1] and plan(10, 2, 3) == [10, 5, 2] and plan(2, 3, 3) == [2, 1, 1]
    )
    assert [r["evaluator"] for r in parse_rungs("proxy,train")] == ["proxy", "train"]
    with pytest.raises(ConfigError, match="at least 2 rungs"):
        parse_rungs(["train"])
    with pytest.raises(ConfigError, match="cannot be a ladder"):
        parse_rungs("proxy,ladder")
    with pytest.raises(ConfigError, match="eta must be >= 2"):
        LadderEvaluator(tiny, eta=1)
    ladder = LadderEvaluator(tiny, proxy="naswot", epochs=4)
    assert ladder.specs[0]["proxy"] == "naswot" and ladder.specs[-1]["epochs"] == 4


def test_ladder_search_climbs_and_links_every_rung_to_its_architecture() -> None:
    store = Store("sqlite://")
    rungs = [
        {"evaluator": "proxy", "proxy": "synflow", "batch_size": 16},
        {"evaluator": "low-fidelity", "epochs": 1, "data_fraction": 0.3},
        {"evaluator": "train"},
    ]
    config = SearchConfig.from_dict(
        {
            "study": "lad",
            "space": "chain",
            "space_options": TINY,
            "strategy": "random",
            "evaluator": "ladder",
            "evaluator_options": {"rungs": rungs, "eta": 2},
            "budget": 4,
            "epochs": 2,
        }
    )
    result = run_search(config, store, progress=False)
    trials = store.trials("lad")
    by_tag: dict[Any, list[Any]] = {}
    for t in trials:
        by_tag.setdefault(t.tag, []).append(t)
    assert [len(by_tag[k]) for k in ("rung0", "rung1", None)] == [4, 2, 1]
    assert {t.budget["epochs"] for t in by_tag["rung0"]} == {0}
    assert {t.budget["data_fraction"] for t in by_tag["rung1"]} == {0.3}
    assert by_tag[None][0].budget["epochs"] == 2
    # promoted = the best of the lower rung, and every row of an architecture shares its hash
    rung0 = sorted(by_tag["rung0"], key=lambda t: -t.metrics["rung_score"])
    assert {t.arch_hash for t in by_tag["rung1"]} == {t.arch_hash for t in rung0[:2]}
    rung1 = max(by_tag["rung1"], key=lambda t: t.metrics["rung_score"])
    assert by_tag[None][0].arch_hash == rung1.arch_hash
    assert all(t.value is None for t in by_tag["rung0"] + by_tag["rung1"])
    assert all(t.metrics["rung_score"] == t.metrics["synflow"] for t in by_tag["rung0"])
    assert result.best is not None and result.best.id == by_tag[None][0].id
    assert result.best.value == result.best.metrics["val_acc"]
