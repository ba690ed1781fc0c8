"""make_splits, DataSplits of any Dataset, tensors_of and NetShape for data that is not a
square image (nasplat.ml.data, nasplat.shape)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

from nasplat.errors import ConfigError, DatasetError
from nasplat.ml.data import DataSplits, labels_of, load_dataset, make_splits, tensors_of
from nasplat.ml.training import TrainConfig, train_model
from nasplat.registry import DATASETS
from nasplat.shape import NetShape

SPLITS = ("train", "val", "test")


class Images(Dataset):
    """``n`` images of ``shape`` with labels ``i % classes``, no ``.tensors``; counts reads."""

    def __init__(self, n: int = 120, shape: tuple[int, ...] = (1, 8, 12), classes: int = 3):
        generator = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % classes
        self.x = torch.randn(n, *shape, generator=generator) + self.y.view(-1, *[1] * len(shape))
        self.reads = 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self.reads += 1
        return self.x[index], int(self.y[index])


class Stream(IterableDataset):
    def __iter__(self) -> Any:
        for i in range(60):
            yield np.full(4, i, dtype=np.float64), i % 2


def one_line(exc: pytest.ExceptionInfo[Exception]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------- input kinds


def test_arrays_are_split_stratified_with_classes_and_shape_inferred() -> None:
    x = np.random.default_rng(0).normal(size=(200, 5))
    y = np.arange(200) % 4
    splits = make_splits((x, y), seed=1)
    assert [len(getattr(splits, s)) for s in SPLITS] == [160, 20, 20]
    assert splits.num_classes == 4 and splits.shape.input_shape == (5,)
    for split in SPLITS:
        assert isinstance(getattr(splits, split), TensorDataset)
        assert len(set(torch.bincount(labels_of(getattr(splits, split))).tolist())) == 1
    rows = torch.cat([tensors_of(getattr(splits, s))[0] for s in SPLITS])
    assert len(torch.unique(rows, dim=0)) == 200  # disjoint, nothing lost
    again = make_splits((torch.from_numpy(x), torch.from_numpy(y)), seed=1)
    assert torch.equal(tensors_of(again.val)[0], tensors_of(splits.val)[0])


def test_a_dataset_is_kept_and_split_into_stratified_subsets() -> None:
    data = Images()
    splits = make_splits(data, num_classes=5, name="rect")
    assert all(isinstance(getattr(splits, s), Subset) for s in SPLITS)
    assert splits.train.dataset is data  # type: ignore[attr-defined]
    assert splits.num_classes == 5 and splits.shape.input_shape == (1, 8, 12)
    assert (splits.in_channels, splits.input_size) == (1, 12)
    assert torch.equal(torch.bincount(labels_of(splits.test)), torch.tensor([4, 4, 4]))


def test_iterables_loaders_and_factories_are_read_once_into_memory() -> None:
    from_stream = make_splits(Stream())
    assert isinstance(from_stream.train, TensorDataset)
    assert from_stream.shape.input_shape == (4,) and from_stream.num_classes == 2
    assert tensors_of(from_stream.train)[0].dtype == torch.float32
    calls = []

    def factory() -> DataLoader:
        calls.append(1)
        return DataLoader(Images(), batch_size=7)

    assert len(make_splits(factory).train) == len(make_splits(DataLoader(Images())).train)
    assert calls == [1]


def test_explicit_parts_as_dict_tuple_and_arguments() -> None:
    x, y = np.ones((30, 2, 6)), np.arange(30) % 3
    part = (x, y)
    by_dict = make_splits({"train": part, "val": part, "test": (x[:9], y[:9])})
    assert [len(getattr(by_dict, s)) for s in SPLITS] == [30, 30, 9]
    assert by_dict.shape.input_shape == (2, 6)  # a sequence (C, L)
    by_tuple = make_splits((part, part, part))
    assert [len(getattr(by_tuple, s)) for s in SPLITS] == [30, 30, 30]
    train_test = make_splits(part, test=Images(12, (2, 6)), val_fraction=0.2)
    assert (len(train_test.train), len(train_test.val), len(train_test.test)) == (24, 6, 12)
    assert make_splits(by_dict) is by_dict
    with pytest.raises(ConfigError, match="test split is given twice"):
        make_splits({"train": part, "test": part}, test=part)
    with pytest.raises(ConfigError, match="needs 'train'"):
        make_splits({"training": part})


def test_normalisation_is_the_users_choice() -> None:
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(300, 3)) * [1, 10, 100]
    y = np.arange(300) % 2
    raw = make_splits((x, y))
    assert raw.mean == () and torch.allclose(
        tensors_of(raw.train)[0].mean(0), torch.tensor(x, dtype=torch.float32).mean(0), rtol=0.2
    )
    scaled = make_splits((x, y), normalize=True)
    x_train = tensors_of(scaled.train)[0]
    assert torch.allclose(x_train.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x_train.std(0), torch.ones(3), atol=1e-3)
    assert len(scaled.mean) == len(scaled.std) == 3


def test_breast_cancer_goes_through_as_30_feature_vectors() -> None:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    splits = make_splits((bunch.data, bunch.target), normalize=True, name="breast-cancer")
    assert splits.shape == NetShape(num_classes=2, sample_shape=(30,))
    assert splits.shape.example_input_shape(4) == (4, 30)
    assert sum(len(getattr(splits, s)) for s in SPLITS) == 569
    assert tensors_of(splits.val)[1].dtype == torch.int64


def test_float_labels_are_regression_targets() -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    splits = make_splits((x, x.sum(1)))
    assert splits.num_classes == 1 and tensors_of(splits.train)[1].dtype == torch.float32
    assert len(splits.subset(0.5, seed=0).train) == 20  # a random subset
    assert make_splits((x, np.stack([x[:, 0], x[:, 1]], 1))).num_classes == 2
    model = torch.nn.Linear(3, 1)
    with pytest.raises(ConfigError, match="trains classifiers") as info:
        train_model(model, splits, TrainConfig(epochs=1, device="cpu"))
    one_line(info)


# --------------------------------------------------------------------------- DataSplits views


def test_subset_of_a_dataset_is_a_stratified_subset() -> None:
    splits = make_splits(Images(300), seed=0)
    small = splits.subset(0.25, seed=3)
    assert isinstance(small.train, Subset) and small.train.dataset is splits.train.dataset
    assert torch.equal(torch.bincount(labels_of(small.train)), torch.tensor([20, 20, 20]))
    assert set(small.train.indices) <= set(splits.train.indices)  # type: ignore[attr-defined]
    assert small.val is splits.val


def test_resized_rectangular_images_lazily_and_in_memory_alike() -> None:
    lazy = make_splits(Images())
    eager = lazy.materialized()
    assert all(isinstance(getattr(eager, s), TensorDataset) for s in SPLITS)
    small_lazy, small_eager = lazy.resized(6), eager.resized(6)
    assert small_lazy.shape.input_shape == small_eager.shape.input_shape == (1, 4, 6)
    assert small_lazy.input_size == 6 and lazy.resized(12) is lazy
    x_lazy = tensors_of(small_lazy.val)[0]
    assert torch.allclose(x_lazy, tensors_of(small_eager.val)[0], atol=1e-6)
    assert torch.allclose(small_lazy.val[0][0], x_lazy[0], atol=1e-6)  # per sample too


def test_a_dataset_is_read_once_per_process() -> None:
    data = Images(90)
    splits = make_splits(data)
    reads = data.reads
    x1, _ = tensors_of(data)
    splits.materialized(), splits.subset(0.5, seed=1).materialized(), splits.resized(4)
    tensors_of(splits.resized(4).train)
    assert data.reads == reads and tensors_of(data)[0] is x1


def test_classes_subset_of_a_dataset() -> None:
    splits = make_splits(Images(90)).classes_subset([2, 0])
    assert splits.num_classes == 2
    assert set(tensors_of(splits.train)[1].tolist()) == {0, 1}


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        (Images(0), {}, DatasetError, "is empty"),
        ((np.ones((0, 3)), np.ones(0)), {}, DatasetError, "is empty"),
        ((np.ones((10, 3)), np.ones(9)), {}, DatasetError, "x has 10 samples but y has 9"),
        ((np.ones((10, 3)), np.linspace(0, 1, 10)), {"num_classes": 3}, DatasetError,
         "needs integer class labels"),
        ((np.ones((50, 3)), np.arange(50) % 5), {"num_classes": 3}, DatasetError, "out of range"),
        ((np.ones((50, 3)), -(np.arange(50) % 5)), {}, DatasetError, "must be >= 0"),
        ((np.ones(50), np.arange(50) % 2), {}, DatasetError, "scalars"),
        ((np.ones((10, 3)), ["a"] * 10), {}, DatasetError, "numeric"),
        ((np.ones((4, 3)), np.arange(4)), {}, DatasetError, "too few samples"),
        ((np.ones((9, 3)), np.arange(9)), {"val_fraction": 0.5, "test_fraction": 0.5},
         ConfigError, "must be < 1"),
        ({"train": (np.ones((9, 3)), np.arange(9) % 2), "val": (np.ones((9, 4)), np.arange(9) % 2)},
         {}, DatasetError, "differ in shape"),
        ("a file name", {}, ConfigError, "cannot make data splits from str"),
        ((Images(), Images()), {}, ConfigError, "explicit parts"),
    ],
)  # fmt: skip
def test_bad_data_is_one_clear_line(data: Any, kwargs: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match) as info:
        make_splits(data, **kwargs)
    one_line(info)


def test_samples_that_are_not_pairs_are_a_dataset_error() -> None:
    class Triples(Images):
        def __getitem__(self, index: int) -> Any:
            return self.x[index], 0, 1

    with pytest.raises(DatasetError, match=r"\(input, label\) pairs") as info:
        make_splits(Triples())
    one_line(info)


def test_a_resolution_on_vectors_is_a_config_error() -> None:
    splits = make_splits((np.ones((40, 30)), np.arange(40) % 2))
    with pytest.raises(ConfigError, match=r"applies to images .*\(30,\)") as info:
        splits.resized(8)
    one_line(info)
    with pytest.raises(ConfigError, match="applies to images"):
        splits.shape.at_budget({"resolution": 8})
    assert splits.resized(30) is splits


# --------------------------------------------------------------------------- NetShape


@pytest.mark.parametrize("sample", [(1, 8, 12), (30,), (3, 20), (20, 3), (2, 4, 4, 4)])
def test_net_shape_round_trips_through_json(sample: tuple[int, ...]) -> None:
    shape = NetShape(num_classes=3, width_mult=0.5, sample_shape=sample)
    data = json.loads(json.dumps(shape.to_dict()))
    assert data["sample_shape"] == list(sample)
    assert NetShape.from_dict(data) == shape
    assert shape.example_input_shape(2) == (2, *sample)
    assert shape.in_channels == sample[0]


def test_square_images_and_old_dicts_keep_the_old_form() -> None:
    old = {"in_channels": 3, "input_size": 8, "num_classes": 4, "width_mult": 1.0}
    shape = NetShape.from_dict(old)
    assert shape == NetShape(num_classes=4, sample_shape=(3, 8, 8))
    assert shape.to_dict() == old and shape.example_input_shape() == (1, 3, 8, 8)
    assert NetShape.of_study({"shape": {**old, "sample_shape": None}}) == shape


def test_net_shape_at_budget_scales_rectangular_images_by_the_longer_side() -> None:
    shape = NetShape(sample_shape=(1, 8, 12))
    assert shape.at_budget({"resolution": 6, "width_mult": 0.5}) == NetShape(
        width_mult=0.5, sample_shape=(1, 4, 6)
    )
    assert shape.at_budget({"resolution": 8}).input_shape == (1, 5, 8)
    with pytest.raises(ConfigError, match="sample_shape"):
        NetShape(sample_shape=(3, 0))


# --------------------------------------------------------------------------- registered loaders


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Register a dataset for one test only."""

    def register(name: str, loader: Any) -> None:
        monkeypatch.setitem(DATASETS._items, name, loader)
        monkeypatch.setitem(DATASETS._meta, name, {"description": "test only"})

    return register


def test_a_registered_loader_of_user_data_is_loaded_and_cached(registered: Any) -> None:
    splits = make_splits(Images(), name="rect")
    registered("test-fixed", lambda: splits)
    registered("test-seeded", lambda seed=0, **options: make_splits(Images(), seed=seed))
    assert load_dataset("test-fixed", seed=4) is splits
    seeded = load_dataset("test-seeded", seed=1, anything=True)
    assert load_dataset("test-seeded", seed=1, anything=True) is seeded
    with pytest.raises(ConfigError, match="unknown option"):
        load_dataset("test-fixed", colour=1)


def test_a_loader_must_return_data_splits(registered: Any) -> None:
    registered("test-raw", lambda **_: (np.ones((10, 2)), np.arange(10)))
    with pytest.raises(ConfigError, match="returned tuple, not DataSplits.*make_splits") as info:
        load_dataset("test-raw")
    one_line(info)


def test_data_splits_repr_names_the_sample_shape() -> None:
    splits: DataSplits = make_splits(Images())
    assert "sample_shape=(1, 8, 12)" in repr(splits)
