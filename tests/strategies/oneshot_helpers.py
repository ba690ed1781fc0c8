"""Shared helpers of the one-shot strategy tests (DARTS, ENAS): tiny searches on digits.

Imported by the tests as ``oneshot_helpers`` (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nasplat.config import SearchConfig
from nasplat.run import SearchResult
from nasplat.run import run_search as run_study
from nasplat.run.oneshot import OneShotContext
from nasplat.store import Store

TINY_NB201 = {"cells_per_stage": 1, "channels": 4}


def tiny_config(strategy: str, space: str = "nb201", **strategy_options: Any) -> SearchConfig:
    """A search that trains a tiny supernet for a few batches and retrains one epoch."""
    space_options = {
        "nb201": TINY_NB201,
        "cell": {"layers": 2, "channels": 4, "ops": "none,skip_connect,sep_conv_3x3,max_pool_3x3"},
        "chain": {"layers": 2, "widths": [8], "ops": "conv_3x3,skip_connect"},
    }[space]
    options = {"epochs": 2, "max_batches": 2, "batch_size": 32, "retrain_epochs": 1}
    return SearchConfig(
        space=space,
        strategy=strategy,
        space_options=space_options,
        strategy_options={**options, **strategy_options},
        device="cpu",
    )


def run_search(config: SearchConfig, store: Store, resume: bool = False) -> SearchResult:
    return run_study(config, store, resume=resume, progress=False)


class Killed(KeyboardInterrupt):
    """Stands in for a kill between two epochs (not an Exception: the trial stays RUNNING)."""


def epochs_recorded(monkeypatch: pytest.MonkeyPatch, kill_after: int | None = None) -> list[int]:
    """Record the epochs each search ends (into the returned list); with ``kill_after``, raise
    :class:`Killed` right after that epoch's checkpoint is written."""
    seen: list[int] = []
    original: Callable[..., None] = OneShotContext.end_epoch

    def end_epoch(self: OneShotContext, epoch: int, *args: Any) -> None:
        original(self, epoch, *args)
        seen.append(epoch)
        if kill_after is not None and epoch == kill_after:
            raise Killed(f"killed after epoch {epoch}")

    monkeypatch.setattr(OneShotContext, "end_epoch", end_epoch)
    return seen


def check_end_to_end(result: SearchResult, store: Store, epochs: int) -> tuple[Any, Any]:
    """The study holds a COMPLETE supernet trial (no value, per-epoch values, the final genotype)
    and a COMPLETE retrain trial of the same genotype, which is the result."""
    trials = store.trials(result.study.id)
    assert [t.tag for t in trials] == ["supernet", "retrain"]
    supernet, retrain = trials
    assert supernet.state == "COMPLETE" and supernet.value is None
    assert 0.0 <= supernet.metrics["supernet_val_acc"] <= 1.0
    assert [step for step, _ in store.intermediate_values(supernet.id)] == list(
        range(1, epochs + 1)
    )
    assert retrain.state == "COMPLETE" and retrain.value is not None
    assert retrain.genotype == supernet.genotype
    assert retrain.budget["epochs"] == 1
    assert result.best is not None and result.best.id == retrain.id
    checkpoint = store.load_checkpoint(result.study.id)
    assert checkpoint["one_shot"]["epoch"] == epochs
    return supernet, retrain


def check_exact_resume(
    store_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, config: Callable[[], Any]
) -> dict[str, Any]:
    """A search killed after epoch 2 of 4 and resumed ends in exactly the state of an
    uninterrupted one (weights, architecture/controller parameters, optimiser and RNG states),
    and the resumed session trains epochs 3 and 4 only. Returns the final checkpoint."""
    straight = Store(store_url("straight"))
    run_search(config(), straight)
    expected = straight.load_checkpoint(
        straight.get_study(config().space + "-" + config().strategy).id
    )

    seen = epochs_recorded(monkeypatch, kill_after=2)
    killed = Store(store_url("killed"))
    with pytest.raises(Killed):
        run_search(config(), killed)
    assert seen == [1, 2]
    assert [t.state for t in killed.trials(1)] == ["RUNNING"]
    seen.clear()
    resumed = run_search(config(), killed, resume=True)
    assert seen == [3, 4]
    actual = killed.load_checkpoint(resumed.study.id)
    assert actual["one_shot"]["epoch"] == 4
    assert actual == expected  # bit-exact tensors (base64), optimiser and RNG states included
    trials = killed.trials(resumed.study.id)
    assert [t.tag for t in trials] == ["supernet", "retrain"]
    assert trials[0].genotype == straight.trials(1)[0].genotype
    return actual
