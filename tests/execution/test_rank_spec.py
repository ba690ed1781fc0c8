"""Each data-parallel rank builds its strategy and context from plain data (``RankSpec``), from
the study's stored config alone: the evaluator's data at the study's budget, not the whole
dataset (``--data-fraction`` and ``--resolution`` shrink a Ray one-shot search too)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from nasplat.config import SearchConfig
from nasplat.run import prepare
from nasplat.run.oneshot import supernet_trial
from nasplat.run.oneshot_ray import RankContext, RankSpec
from nasplat.store import Store


def test_a_rank_gets_the_studys_data_at_its_budget(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    config = SearchConfig(
        space="nb201",
        strategy="darts",
        space_options={"cells_per_stage": 1, "channels": 4},
        strategy_options={"epochs": 1, "max_batches": 1, "batch_size": 16},
        data_fraction=0.5,
        resolution=6,
        device="cpu",
    )
    run = prepare(config, store)
    trial, _ = supernet_trial(run)
    full = run.evaluator.load_splits(run.evaluator.resolve_budget(None))
    in_process = run.evaluator.load_splits(run.budget)  # what a local one-shot search trains on
    dp = SimpleNamespace(shard=lambda dataset: dataset, is_main=True)
    strategy, context = RankSpec(store.url, run.study.name, trial.id).build(dp)
    assert isinstance(context, RankContext) and context.trial.id == trial.id
    assert strategy.name == "darts" and context.study.name == run.study.name
    assert abs(len(context.splits.train) - 0.5 * len(full.train)) <= 1
    assert context.splits.input_size == 6 and full.input_size == 8
    assert torch.equal(context.splits.train.tensors[0], in_process.train.tensors[0])
    context.store.close()
    store.close()
