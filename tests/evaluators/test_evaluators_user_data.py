"""User data (a registered loader returning DataSplits of a plain Dataset) through the
evaluators, the one-shot streams, a search and its export."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from evaluator_helpers import TINY
from torch.utils.data import Dataset

from evaluators.early_stop import EarlyStopEvaluator
from evaluators.low_fidelity import LowFidelityEvaluator
from evaluators.train import TrainEvaluator
from nasplat.budget import Budget
from nasplat.errors import ConfigError
from nasplat.evaluator import Reporter
from nasplat.ml.data import make_splits, tensors_of
from nasplat.registry import DATASETS
from nasplat.shape import NetShape
from strategies.oneshot_common import BatchStream, split_halves


class Rectangles(Dataset):
    """1x8x12 images whose brightness depends on the label; no ``.tensors``."""

    def __init__(self, n: int = 150) -> None:
        generator = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 3
        self.x = torch.randn(n, 1, 8, 12, generator=generator) + self.y.view(-1, 1, 1, 1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.x[index], int(self.y[index])


@pytest.fixture(autouse=True)
def _user_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the test datasets for each test only, as the API layer registers user data."""
    rectangles = make_splits(Rectangles(), name="rectangles")
    vectors = make_splits((np.random.default_rng(0).normal(size=(80, 30)), np.arange(80) % 2))
    for name, splits in (("test-rectangles", rectangles), ("test-vectors", vectors)):
        monkeypatch.setitem(DATASETS._items, name, lambda splits=splits: splits)
        monkeypatch.setitem(DATASETS._meta, name, {"description": "test only"})


def test_train_evaluator_trains_a_chain_on_rectangular_images(tiny: Any) -> None:
    evaluator = TrainEvaluator(tiny, dataset="test-rectangles", epochs=2, device="cpu")
    assert evaluator.data_shape() == NetShape(num_classes=3, sample_shape=(1, 8, 12))
    reporter = Reporter()
    result = evaluator.evaluate(tiny.sample(random.Random(0)), Budget(), reporter)
    assert result.epochs_run == 2 and len(reporter.history) == 2
    assert 0 <= result.metrics["val_acc"] <= 1 and result.metrics["flops"] > 0
    assert 0 <= result.metrics["test_acc"] <= 1


def test_low_fidelity_subsets_and_resizes_a_dataset(tiny: Any) -> None:
    evaluator = LowFidelityEvaluator(
        tiny, dataset="test-rectangles", epochs=1, data_fraction=0.5, resolution=6, device="cpu"
    )
    budget = evaluator.resolve_budget(Budget())
    splits = evaluator.load_splits(budget)
    assert splits.shape.input_shape == (1, 4, 6) and len(splits.train) == 60
    assert tensors_of(splits.train)[0].shape == (60, 1, 4, 6)
    result = evaluator.evaluate(tiny.sample(random.Random(1)), budget, Reporter())
    assert result.epochs_run == 1
    proxy = LowFidelityEvaluator(tiny, dataset="test-rectangles", epochs=1, classes=2, samples=30)
    assert proxy.load_splits(proxy.resolve_budget(Budget())).num_classes == 2


def test_early_stop_trains_on_a_dataset(tiny: Any) -> None:
    evaluator = EarlyStopEvaluator(
        tiny, dataset="test-rectangles", epochs=2, pruner="patience", patience=1, device="cpu"
    )
    result = evaluator.evaluate(tiny.sample(random.Random(2)), Budget(), Reporter())
    assert 1 <= result.epochs_run <= 2 and 0 <= result.metrics["val_acc"] <= 1


def test_a_resolution_on_vector_data_is_a_config_error(tiny: Any) -> None:
    evaluator = LowFidelityEvaluator(tiny, dataset="test-vectors", resolution=8)
    assert evaluator.data_shape().input_shape == (30,)
    with pytest.raises(ConfigError, match="applies to images"):
        evaluator.load_splits(evaluator.resolve_budget(Budget()))


def test_one_shot_streams_read_a_dataset_like_its_tensors() -> None:
    splits = make_splits(Rectangles())
    halves = split_halves(splits.train, seed=0)
    in_memory = split_halves(splits.materialized().train, seed=0)
    for half, reference in zip(halves, in_memory, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(half.tensors, reference.tensors, strict=True))
    stream = BatchStream(splits.train, 16, seed=0, device=torch.device("cpu"))
    x, y = stream.next()
    assert x.shape == (16, 1, 8, 12) and y.dtype == torch.int64


@pytest.mark.slow
def test_search_and_export_at_the_datasets_shape(tmp_path: Path) -> None:
    from nasplat.config import SearchConfig
    from nasplat.run import run_search
    from nasplat.run.export import export_best
    from nasplat.store import Store

    store = Store("sqlite://")
    config = SearchConfig.from_dict(
        dict(study="s", space="chain", space_options=TINY, strategy="random", budget=2,
             epochs=1, dataset="test-rectangles", device="cpu")
    )  # fmt: skip
    result = run_search(config, store, progress=False)
    assert result.best is not None and result.best.state == "COMPLETE"
    export_best(store, "s", str(tmp_path))
    shape = json.loads((tmp_path / "genotype.json").read_text())["shape"]
    assert shape["sample_shape"] == [1, 8, 12]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(tmp_path / "model.ts"))
    assert scripted(torch.randn(2, 1, 8, 12)).shape == (2, 3)
