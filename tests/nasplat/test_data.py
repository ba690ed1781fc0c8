"""Tests of nasplat.ml.data: the registered datasets, their splits and the DataSplits views."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasplat.errors import ConfigError, DatasetError, UnknownNameError
from nasplat.ml.data import FASHION_MNIST_DIR, DataSplits, clear_cache, load_dataset
from nasplat.registry import DATASETS

SPLITS = ("train", "val", "test")


def _labels(dataset: torch.utils.data.TensorDataset) -> torch.Tensor:
    return dataset.tensors[1]


def _class_fractions(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(y, minlength=num_classes).double() / len(y)


def _assert_well_formed(splits: DataSplits, channels: int, size: int, classes: int) -> None:
    """Shapes, dtypes, label range and train-split normalisation."""
    assert (splits.in_channels, splits.input_size, splits.num_classes) == (channels, size, classes)
    for split in SPLITS:
        x, y = getattr(splits, split).tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (channels, size, size) and len(x) == len(y) > 0
        assert 0 <= int(y.min()) and int(y.max()) < classes
    x_train = splits.train.tensors[0]
    assert torch.allclose(x_train.mean(dim=(0, 2, 3)), torch.zeros(channels), atol=1e-4)
    assert torch.allclose(x_train.std(dim=(0, 2, 3)), torch.ones(channels), atol=1e-3)
    assert len(splits.mean) == len(splits.std) == channels


def _assert_stratified(splits: DataSplits, tolerance: float) -> None:
    overall = _class_fractions(
        torch.cat([_labels(getattr(splits, s)) for s in SPLITS]), splits.num_classes
    )
    for split in SPLITS:
        fractions = _class_fractions(_labels(getattr(splits, split)), splits.num_classes)
        assert torch.allclose(fractions, overall, atol=tolerance), split


def _assert_same(a: DataSplits, b: DataSplits) -> None:
    for split in SPLITS:
        for ta, tb in zip(getattr(a, split).tensors, getattr(b, split).tensors, strict=True):
            assert torch.equal(ta, tb)


# --------------------------------------------------------------------------- registry + cache


def test_builtin_datasets_are_registered_with_descriptions() -> None:
    for name in ("digits", "fashion-mnist", "cifar10", "synthetic"):
        assert name in DATASETS
        assert DATASETS.meta(name)["description"]


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(UnknownNameError, match="digits"):
        load_dataset("imagenet-99")


def test_unknown_option_is_config_error() -> None:
    with pytest.raises(ConfigError, match="colour.*accepted: n, channels"):
        load_dataset("synthetic", colour=True)


def test_load_dataset_caches_per_arguments() -> None:
    first = load_dataset("synthetic", n=100, seed=3)
    assert load_dataset("synthetic", n=100, seed=3) is first
    assert load_dataset("synthetic", n=100, seed=4) is not first
    clear_cache()
    again = load_dataset("synthetic", n=100, seed=3)
    assert again is not first
    _assert_same(again, first)


# --------------------------------------------------------------------------- digits


def test_digits_shapes_normalisation_and_split_sizes() -> None:
    splits = load_dataset("digits")
    _assert_well_formed(splits, channels=1, size=8, classes=10)
    sizes = [len(getattr(splits, s)) for s in SPLITS]
    assert sum(sizes) == 1797
    assert sizes == pytest.approx([0.6 * 1797, 0.2 * 1797, 0.2 * 1797], abs=10)
    _assert_stratified(splits, tolerance=0.01)


def test_digits_split_is_fixed_by_seed() -> None:
    loader = DATASETS.get("digits")
    _assert_same(loader(seed=7), loader(seed=7))
    other = loader(seed=8)
    assert not torch.equal(loader(seed=7).train.tensors[1], other.train.tensors[1])


# --------------------------------------------------------------------------- synthetic


def test_synthetic_options_shapes_and_balance() -> None:
    splits = load_dataset("synthetic", n=300, channels=2, size=6, classes=3)
    _assert_well_formed(splits, channels=2, size=6, classes=3)
    assert sum(len(getattr(splits, s)) for s in SPLITS) == 300
    _assert_stratified(splits, tolerance=0.01)


def test_synthetic_splits_are_disjoint() -> None:
    splits = load_dataset("synthetic", n=200)
    rows = torch.cat([getattr(splits, s).tensors[0].flatten(1) for s in SPLITS])
    assert len(torch.unique(rows, dim=0)) == 200


def test_synthetic_is_deterministic_and_seed_dependent() -> None:
    loader = DATASETS.get("synthetic")
    _assert_same(loader(seed=1, n=120), loader(seed=1, n=120))
    assert not torch.equal(
        loader(seed=1, n=120).train.tensors[0], loader(seed=2, n=120).train.tensors[0]
    )


def test_synthetic_is_learnable_by_nearest_class_mean() -> None:
    splits = load_dataset("synthetic")
    x, y = splits.train.tensors
    centroids = torch.stack([x[y == c].flatten(1).mean(0) for c in range(splits.num_classes)])
    x_val, y_val = splits.val.tensors
    predicted = torch.cdist(x_val.flatten(1), centroids).argmin(1)
    assert (predicted == y_val).double().mean() > 0.6  # chance is 0.25


def test_synthetic_rejects_bad_options() -> None:
    with pytest.raises(ConfigError, match="classes >= 2"):
        load_dataset("synthetic", classes=1)


# --------------------------------------------------------------------------- fashion-mnist


def _write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def _fake_mnist(
    folder: Path, n_train: int = 200, n_test: int = 50, *, compress: bool = True
) -> Path:
    """IDX files with 6x6 images whose brightness depends on the label."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 50, size=(n, 6, 6)) + 20 * labels[:, None, None]
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
    return folder


def test_fashion_mnist_from_generated_idx_files(tmp_path: Path) -> None:
    folder = _fake_mnist(tmp_path / "fm")
    splits = load_dataset("fashion-mnist", data_dir=str(folder))
    _assert_well_formed(splits, channels=1, size=6, classes=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (180, 20, 50)
    assert torch.equal(torch.bincount(_labels(splits.val)), torch.full((10,), 2))
    assert torch.equal(_labels(splits.test), torch.arange(50) % 10)  # file order kept


def test_fashion_mnist_limit_caps_train_only(tmp_path: Path) -> None:
    folder = _fake_mnist(tmp_path / "fm")
    splits = load_dataset("fashion-mnist", data_dir=str(folder), limit=90)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (90, 20, 50)
    assert torch.equal(torch.bincount(_labels(splits.train)), torch.full((10,), 9))


def test_fashion_mnist_accepts_uncompressed_files(tmp_path: Path) -> None:
    folder = _fake_mnist(tmp_path / "raw", compress=False)
    assert len(load_dataset("fashion-mnist", data_dir=str(folder)).test) == 50


def test_fashion_mnist_validation_split_depends_on_seed(tmp_path: Path) -> None:
    folder = str(_fake_mnist(tmp_path / "fm"))
    loader = DATASETS.get("fashion-mnist")
    _assert_same(loader(data_dir=folder, seed=1), loader(data_dir=folder, seed=1))
    a, b = loader(data_dir=folder, seed=1), loader(data_dir=folder, seed=2)
    assert not torch.equal(a.val.tensors[0], b.val.tensors[0])


def test_fashion_mnist_missing_folder_names_path_and_package(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist") as info:
        load_dataset("fashion-mnist", data_dir=str(missing))
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_fashion_mnist_missing_file_names_it(tmp_path: Path) -> None:
    folder = _fake_mnist(tmp_path / "fm")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", data_dir=str(folder))


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("train-images-idx3-ubyte.gz", b"not gzip at all"),
        (
            "train-images-idx3-ubyte.gz",
            gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 1, 7]), mtime=0),
        ),  # 1-d
        (
            "train-labels-idx1-ubyte.gz",
            gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]), mtime=0),
        ),  # short
    ],
)
def test_fashion_mnist_malformed_file_names_it(tmp_path: Path, file: str, content: bytes) -> None:
    folder = _fake_mnist(tmp_path / "fm")
    (folder / file).write_bytes(content)
    with pytest.raises(DatasetError, match=file):
        load_dataset("fashion-mnist", data_dir=str(folder))


def test_fashion_mnist_image_label_count_mismatch(tmp_path: Path) -> None:
    folder = _fake_mnist(tmp_path / "fm")
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(150) % 10)
    with pytest.raises(DatasetError, match="200 images.*150 labels"):
        load_dataset("fashion-mnist", data_dir=str(folder))


@pytest.mark.skipif(
    not Path(FASHION_MNIST_DIR).is_dir(),
    reason=f"{FASHION_MNIST_DIR} absent (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_real_debian_files() -> None:
    splits = load_dataset("fashion-mnist", limit=1000)
    _assert_well_formed(splits, channels=1, size=28, classes=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1000, 6000, 10000)
    _assert_stratified(splits, tolerance=0.01)


# --------------------------------------------------------------------------- cifar10


def _cifar_batch(path: Path, n: int, rng: np.random.Generator) -> None:
    """A batch whose red, green and blue planes hover around 10, 100 and 200."""
    planes = np.repeat(np.array([10, 100, 200]), 1024)
    data = (planes + rng.integers(0, 5, size=(n, 3072))).astype(np.uint8)
    batch = {
        b"batch_label": b"fake",
        b"labels": [int(i) % 10 for i in range(n)],
        b"data": data,
        b"filenames": [b"x.png"] * n,
    }
    with path.open("wb") as f:
        pickle.dump(batch, f, protocol=2)


def _fake_cifar(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _cifar_batch(folder / f"data_batch_{i}", 40, rng)
    _cifar_batch(folder / "test_batch", 30, rng)
    return folder


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_from_generated_batches(tmp_path: Path, nested: bool) -> None:
    _fake_cifar(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    splits = load_dataset("cifar10", data_dir=str(tmp_path))
    _assert_well_formed(splits, channels=3, size=32, classes=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (180, 20, 30)
    assert splits.mean == pytest.approx((12, 102, 202), abs=0.1)  # channel-major layout
    _assert_stratified(splits, tolerance=0.02)


def test_cifar10_limit(tmp_path: Path) -> None:
    _fake_cifar(tmp_path)
    assert len(load_dataset("cifar10", data_dir=str(tmp_path), limit=50).train) == 50


def test_cifar10_requires_data_dir() -> None:
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("cifar10")


def test_cifar10_missing_batch_names_it(tmp_path: Path) -> None:
    _fake_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match=r"data_batch_3.*--data-dir"):
        load_dataset("cifar10", data_dir=str(tmp_path))


def test_cifar10_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=str(tmp_path / "absent")):
        load_dataset("cifar10", data_dir=str(tmp_path / "absent"))


def test_cifar10_malformed_batches(tmp_path: Path) -> None:
    _fake_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="test_batch"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    with (tmp_path / "test_batch").open("wb") as f:
        pickle.dump({b"data": np.zeros((3, 10), np.uint8), b"labels": [0, 1, 2]}, f)
    with pytest.raises(DatasetError, match="test_batch.*3072"):
        load_dataset("cifar10", data_dir=str(tmp_path))


class _Payload:
    """Unpickling this would call ``Path.touch`` on a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))


def test_cifar10_batches_may_not_call_arbitrary_globals(tmp_path: Path) -> None:
    _fake_cifar(tmp_path)
    marker = tmp_path / "executed"
    with (tmp_path / "data_batch_1").open("wb") as f:
        pickle.dump({b"data": _Payload(marker), b"labels": []}, f)
    with pytest.raises(DatasetError, match="data_batch_1.*not allowed"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    assert not marker.exists()


# --------------------------------------------------------------------------- views


def test_subset_is_stratified_and_leaves_val_test() -> None:
    splits = load_dataset("digits")
    small = splits.subset(0.25, seed=0)
    assert len(small.train) == pytest.approx(0.25 * len(splits.train), abs=5)
    assert small.val is splits.val and small.test is splits.test
    full_counts = torch.bincount(_labels(splits.train)).double()
    assert torch.allclose(
        torch.bincount(_labels(small.train)).double(), 0.25 * full_counts, atol=0.51
    )


def test_subset_seed_fraction_one_and_validation() -> None:
    splits = load_dataset("digits")
    assert splits.subset(1.0, seed=3) is splits
    a, b, c = splits.subset(0.1, seed=1), splits.subset(0.1, seed=1), splits.subset(0.1, seed=2)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])
    assert len(torch.unique(_labels(splits.subset(0.001, seed=0).train))) == 10  # >= 1 per class
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError):
            splits.subset(bad, seed=0)


@pytest.mark.parametrize("resolution", [4, 16])
def test_resized_changes_every_split(resolution: int) -> None:
    splits = load_dataset("digits")
    resized = splits.resized(resolution)
    assert resized.input_size == resolution
    for split in SPLITS:
        x, y = getattr(resized, split).tensors
        assert x.shape[1:] == (1, resolution, resolution)
        assert torch.equal(y, _labels(getattr(splits, split)))
    assert splits.resized(8) is splits


def test_resized_downsampling_is_antialiased() -> None:
    splits = load_dataset("digits")
    x = splits.train.tensors[0]
    # 8 -> 2: plain bilinear sees only the centre 2x2 of each 4x4 block, antialiasing all of it
    pooled = F.avg_pool2d(x, 4)
    plain = F.interpolate(x, size=(2, 2), mode="bilinear", antialias=False)
    got = splits.resized(2).train.tensors[0]
    assert (got - pooled).abs().mean() < 0.5 * (plain - pooled).abs().mean()


def test_classes_subset_relabels_in_given_order() -> None:
    splits = load_dataset("digits")
    proxy = splits.classes_subset([3, 1])
    assert proxy.num_classes == 2
    for split in SPLITS:
        old_y, new_y = _labels(getattr(splits, split)), _labels(getattr(proxy, split))
        assert torch.equal(
            torch.bincount(new_y), torch.stack([(old_y == 3).sum(), (old_y == 1).sum()])
        )
        old_x = getattr(splits, split).tensors[0]
        assert torch.equal(getattr(proxy, split).tensors[0][new_y == 0], old_x[old_y == 3])


@pytest.mark.parametrize("classes", [[], [1, 1], [10], [-1]])
def test_classes_subset_rejects_bad_lists(classes: list[int]) -> None:
    with pytest.raises(ConfigError):
        load_dataset("digits").classes_subset(classes)


def test_repr_is_short() -> None:
    text = repr(load_dataset("digits"))
    assert text.startswith("DataSplits('digits', train=") and len(text) < 200
