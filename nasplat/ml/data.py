"""Datasets: train/val/test splits of any data, and the registered loaders.

Importing this module registers the built-in datasets in :data:`nasplat.registry.DATASETS`:
``digits`` (scikit-learn's bundled 8x8 digits, the default), ``fashion-mnist`` (IDX files),
``cifar10`` (the python-pickle batches) and ``synthetic`` (generated, learnable); they return
normalised, stratified splits of in-memory tensors.

:func:`make_splits` turns user data (a torch Dataset, ``(x, y)`` arrays, a DataLoader
factory, explicit parts) into :class:`DataSplits`; a loader registered under a name makes it
available to evaluators. A loader is called as ``loader(data_dir=..., seed=..., **options)``
(the arguments its signature takes); use :func:`load_dataset`, which validates options and
caches results. :func:`tensors_of` is how the built-in training loop reads any split.
"""

from __future__ import annotations

import dataclasses
import gzip
import inspect
import pickle
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

from nasplat.errors import ConfigError, DatasetError
from nasplat.registry import DATASETS
from nasplat.shape import NetShape

__all__ = ["DataSplits", "clear_cache", "labels_of", "load_dataset", "make_splits", "tensors_of"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_FASHION_HINT = (
    "install it with `apt-get install dataset-fashion-mnist` "
    f"(files land in {FASHION_MNIST_DIR}) or pass --data-dir with the four IDX .gz files"
)
_CIFAR_HINT = (
    "download the CIFAR-10 python version (cifar-10-python.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html), extract it and pass --data-dir"
)


# --------------------------------------------------------------------------- splits

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataSplits:
    """Train/val/test splits of one dataset.

    Each split is a map-style ``torch.utils.data.Dataset`` of ``(input, label)`` pairs. The
    built-in loaders hold ``TensorDataset`` objects whose ``x`` is float32 NCHW, normalised with the
    per-channel mean and std of the train split (``mean``/``std``, in raw pixel units), and
    whose ``y`` holds int64 class indices; :func:`make_splits` wraps any other data.
    ``sample_shape`` is one input's shape when it is not a square image (see
    :class:`~nasplat.shape.NetShape`; ``in_channels`` and ``input_size`` then follow from it).
    The built-in training loop and the one-shot streams keep the data in memory
    (:meth:`materialized`). Splits may be shared through the process cache: never modify
    their tensors in place.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    in_channels: int
    num_classes: int
    input_size: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    sample_shape: tuple[int, ...] | None = None

    @property
    def shape(self) -> NetShape:
        """The network shape this data calls for (full width)."""
        return NetShape(
            self.in_channels, self.input_size, self.num_classes, sample_shape=self.sample_shape
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split}={len(getattr(self, split))}" for split in SPLITS)
        return (
            f"DataSplits({self.name!r}, {sizes}, sample_shape={self.shape.input_shape}, "
            f"num_classes={self.num_classes})"
        )

    def subset(self, fraction: float, seed: int) -> DataSplits:
        """A ``fraction`` of the train split: stratified (at least one sample per class) when
        the labels are class indices, else random. Val and test are unchanged;
        ``fraction == 1.0`` returns ``self``. A dataset other than a ``TensorDataset`` becomes
        a ``torch.utils.data.Subset``."""
        if not 0 < fraction <= 1:
            raise ConfigError(f"data fraction must be in (0, 1], got {fraction}")
        if fraction == 1:
            return self
        keep, _ = _take(labels_of(self.train), fraction, np.random.default_rng(seed))
        return dataclasses.replace(self, train=_select(self.train, keep))

    def resized(self, resolution: int) -> DataSplits:
        """All splits bilinearly resized so that the images' longer side is ``resolution``
        (squares stay square; other datasets than ``TensorDataset`` are resized lazily, per
        sample). ConfigError for data that is not an image (see
        :meth:`NetShape.at_resolution <nasplat.shape.NetShape.at_resolution>`)."""
        shape = self.shape.at_resolution(resolution)
        if shape == self.shape:
            return self
        size = shape.input_shape[1:]
        return dataclasses.replace(
            self,
            input_size=shape.input_size,
            sample_shape=shape.sample_shape,
            **{split: _resize(getattr(self, split), size) for split in SPLITS},
        )

    def classes_subset(self, classes: Sequence[int]) -> DataSplits:
        """Only the samples of ``classes``, relabelled ``0..k-1`` in the given order (as
        in-memory ``TensorDataset`` objects)."""
        classes = [int(c) for c in classes]
        if not classes or len(set(classes)) != len(classes):
            raise ConfigError(f"classes must be a non-empty list of distinct labels, got {classes}")
        bad = [c for c in classes if not 0 <= c < self.num_classes]
        if bad:
            raise ConfigError(
                f"classes {bad} out of range 0..{self.num_classes - 1} for {self.name}"
            )
        relabel = torch.full((self.num_classes,), -1, dtype=torch.int64)
        relabel[torch.tensor(classes)] = torch.arange(len(classes))
        return dataclasses.replace(
            self,
            num_classes=len(classes),
            **{split: _relabel(getattr(self, split), relabel, self.name) for split in SPLITS},
        )

    def materialized(self) -> DataSplits:
        """These splits as in-memory ``TensorDataset`` objects (``self`` when they already are);
        see :func:`tensors_of`."""
        if all(isinstance(getattr(self, split), TensorDataset) for split in SPLITS):
            return self
        return dataclasses.replace(
            self, **{split: TensorDataset(*tensors_of(getattr(self, split))) for split in SPLITS}
        )


# --------------------------------------------------------------------------- tensors of any data


class _Resized(Dataset):
    """A dataset of images bilinearly resized to ``size`` (H, W), one sample at a time."""

    def __init__(self, dataset: Dataset, size: tuple[int, int]) -> None:
        self.dataset = dataset
        self.size = size

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        x, y = self.dataset[index]
        return _interpolate(_as_inputs(torch.as_tensor(x))[None], self.size)[0], y


_TENSORS: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
_TENSORS_LOCK = threading.RLock()


def tensors_of(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of a whole dataset as two tensors: x float32, y int64 class indices (or
    float32 regression targets).

    A ``TensorDataset`` gives its own tensors (no copy); a ``Subset`` or a resized view is
    taken from its base dataset's tensors; any other dataset is loaded once (batched by a
    ``DataLoader``) and kept while it lives, cached by identity in this process.
    """
    if isinstance(dataset, TensorDataset):
        if len(dataset.tensors) != 2:
            raise DatasetError(
                f"a TensorDataset must hold (inputs, labels), got {len(dataset.tensors)} tensors"
            )
        return dataset.tensors[0], dataset.tensors[1]
    if isinstance(dataset, Subset):
        x, y = tensors_of(dataset.dataset)
        index = torch.as_tensor(dataset.indices, dtype=torch.int64)
        return x[index], y[index]
    if isinstance(dataset, _Resized):
        x, y = tensors_of(dataset.dataset)
        return _interpolate(x, dataset.size), y
    with _TENSORS_LOCK:
        key = id(dataset)
        if key not in _TENSORS:
            tensors = _collect(_loader(dataset), type(dataset).__name__)
            try:
                weakref.finalize(dataset, _TENSORS.pop, key, None)
            except TypeError:  # no weak references to it: not cached
                return tensors
            _TENSORS[key] = tensors
        return _TENSORS[key]


def labels_of(dataset: Dataset) -> torch.Tensor:
    """The labels of a dataset (see :func:`tensors_of`; a ``Subset`` indexes its base's)."""
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.int64)]
    if isinstance(dataset, _Resized):
        return labels_of(dataset.dataset)
    return tensors_of(dataset)[1]


def _loader(dataset: Dataset) -> DataLoader:
    return DataLoader(dataset, batch_size=256, shuffle=False)  # type: ignore[arg-type]


def _collect(batches: Iterable[Any], what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate ``(x, y)`` batches into two tensors (DatasetError for anything else)."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    try:
        for batch in batches:
            if not isinstance(batch, tuple | list) or len(batch) != 2:
                raise DatasetError(
                    f"{what}: expected (input, label) pairs, got {type(batch).__name__}"
                    + (f" of {len(batch)}" if isinstance(batch, tuple | list) else "")
                )
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
        if not xs:
            raise DatasetError(f"{what} is empty")
        x, y = torch.cat(xs), torch.cat(ys)
    except (RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{what}: cannot stack its samples: {first}") from None
    return _as_inputs(x), _as_labels(y, what)


def _as_inputs(x: torch.Tensor) -> torch.Tensor:
    """Inputs as float32 (no copy when they already are)."""
    return x if x.dtype == torch.float32 else x.float()


def _as_labels(y: torch.Tensor, what: str) -> torch.Tensor:
    """Labels as int64 class indices (integer or bool labels) or float32 targets."""
    if y.dtype.is_floating_point:
        return y if y.dtype == torch.float32 else y.float()
    if y.dtype.is_complex:
        raise DatasetError(f"{what}: labels must be integers or real numbers, got {y.dtype}")
    return y if y.dtype == torch.int64 else y.long()


def _is_class_labels(y: torch.Tensor) -> bool:
    return y.ndim == 1 and not y.dtype.is_floating_point


def _select(dataset: Dataset, index: np.ndarray) -> Dataset:
    """The samples at ``index``: a TensorDataset stays one, anything else becomes a Subset."""
    if isinstance(dataset, TensorDataset):
        rows = torch.from_numpy(index)
        return TensorDataset(*(t[rows] for t in dataset.tensors))
    if isinstance(dataset, Subset):
        return Subset(dataset.dataset, [dataset.indices[i] for i in index])
    return Subset(dataset, index.tolist())


def _take(
    y: torch.Tensor, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a ``fraction`` of the samples with labels ``y`` and of the rest, both sorted:
    stratified (:func:`_stratified_take`) for class labels, else random (at least one)."""
    if _is_class_labels(y):
        return _stratified_take(y.numpy(), fraction, rng)
    order = rng.permutation(len(y))
    k = min(len(y), max(1, round(fraction * len(y))))
    return np.sort(order[:k]), np.sort(order[k:])


def _interpolate(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    downsampling = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    resized = F.interpolate(
        x, size=tuple(size), mode="bilinear", align_corners=False, antialias=downsampling
    )
    return resized.contiguous()


def _resize(dataset: Dataset, size: tuple[int, ...]) -> Dataset:
    if isinstance(dataset, TensorDataset):
        x, y = tensors_of(dataset)
        return TensorDataset(_interpolate(x, size), y)
    return _Resized(dataset, (size[0], size[1]))


def _relabel(dataset: Dataset, relabel: torch.Tensor, name: str) -> TensorDataset:
    x, y = tensors_of(dataset)
    if not _is_class_labels(y):
        raise ConfigError(f"classes need class-index labels; {name} has {y.dtype} labels")
    new_y = relabel[y]
    keep = new_y >= 0
    return TensorDataset(x[keep], new_y[keep])


def _stratified_take(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random stratified ``fraction`` of ``y`` and of the rest, both sorted.

    Each class contributes ``round(fraction * count)`` samples, at least one.
    """
    taken: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        k = min(len(members), max(1, round(fraction * len(members))))
        taken.append(members[:k])
        rest.append(members[k:])
    return np.sort(np.concatenate(taken)), np.sort(np.concatenate(rest))


def _split_off(
    x: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x, y) of a stratified fraction, (x, y) of the rest)``."""
    taken, rest = _stratified_take(y, fraction, rng)
    return (x[taken], y[taken]), (x[rest], y[rest])


def _limit(
    x: np.ndarray, y: np.ndarray, limit: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A stratified sample of about ``limit`` rows (all of them when ``limit`` is None)."""
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}")
    if limit is None or limit >= len(y):
        return x, y
    (x, y), _ = _split_off(x, y, limit / len(y), rng)
    return x, y


def _check_fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ConfigError(f"{name} must be in (0, 1), got {value}")


def _make_splits(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    num_classes: int,
) -> DataSplits:
    """Normalise NCHW arrays with the train split's per-channel statistics and wrap them."""
    x_train = _float_tensor(train[0])
    mean, std = _channel_stats(x_train)

    def wrap(x: np.ndarray | torch.Tensor, y: np.ndarray) -> TensorDataset:
        x = x if isinstance(x, torch.Tensor) else _float_tensor(x)
        return TensorDataset(x.sub_(mean).div_(std), torch.from_numpy(y.astype(np.int64)))

    return DataSplits(
        name=name,
        train=wrap(x_train, train[1]),
        val=wrap(*val),
        test=wrap(*test),
        in_channels=x_train.shape[1],
        num_classes=num_classes,
        input_size=x_train.shape[-1],
        mean=tuple(mean.flatten().tolist()),
        std=tuple(std.flatten().tolist()),
    )


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` of a batch per channel (dimension 1; a vector's features), broadcastable."""
    std, mean = torch.std_mean(x, dim=(0, *range(2, x.ndim)), keepdim=True)
    return mean, std.clamp_min(1e-8)


def _float_tensor(x: np.ndarray) -> torch.Tensor:
    """A float32 copy of ``x`` (never aliasing the caller's array, which may be read-only)."""
    return torch.from_numpy(np.array(x, dtype=np.float32))


def _three_way(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> DataSplits:
    """Stratified train/val/test split of one pool of samples."""
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ConfigError("val_fraction + test_fraction must be < 1")
    rng = np.random.default_rng(seed)
    test, rest = _split_off(x, y, test_fraction, rng)
    val, train = _split_off(*rest, val_fraction / (1 - test_fraction), rng)
    return _make_splits(name, train, val, test, num_classes)


def _train_test(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    seed: int,
    val_fraction: float,
    limit: int | None,
) -> DataSplits:
    """Carve a stratified validation split from the train files, then cap train at ``limit``."""
    _check_fraction("val_fraction", val_fraction)
    rng = np.random.default_rng(seed)
    val, rest = _split_off(*train, val_fraction, rng)
    return _make_splits(name, _limit(*rest, limit, rng), val, test, num_classes)


# --------------------------------------------------------------------------- user data


def make_splits(
    data: Any,
    *,
    val: Any = None,
    test: Any = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    num_classes: int | None = None,
    name: str = "user-data",
    normalize: bool = False,
) -> DataSplits:
    """Train/val/test splits of any data, for searches and the built-in training loop.

    ``data`` is one of:

    - a map-style ``torch.utils.data.Dataset`` of ``(input, label)`` pairs, kept as it is
      (splits cut from it are ``Subset`` objects), or an ``IterableDataset``, read once;
    - ``(x, y)``: tensors, NumPy arrays or nested lists with one row per sample;
    - a zero-argument callable returning a ``DataLoader`` (or any iterable of ``(x, y)``
      batches), read once; a ``DataLoader`` itself works too;
    - explicit parts: ``{"train": ..., "val": ..., "test": ...}`` or ``(train, val, test)``,
      each part any of the above (``val``/``test`` may be missing); the ``val`` and ``test``
      arguments give parts too;
    - a :class:`DataSplits`, returned as it is.

    A missing test split is ``test_fraction`` of the data, then a missing val split is
    ``val_fraction`` of it, drawn with ``seed``: stratified when the labels are class indices,
    else random. Integer labels are class indices (``num_classes`` defaults to the largest
    label + 1); float labels are regression targets (``num_classes`` is then the number of
    outputs: 1 for one target per sample; the built-in training loop does classification
    only). The sample shape, e.g. ``(C, H, W)`` images of any size, ``(F,)`` vectors or
    ``(C, L)`` sequences, is read from the first sample and must agree across splits; inputs
    are used as float32. Labels are read once when splitting (every sample is loaded).

    The data is used as given: ``normalize=True`` loads it into memory and standardises each
    channel (each feature of a vector) with the train split's mean and std (the built-in
    datasets are always normalised). ConfigError for bad arguments, DatasetError for data
    that cannot be used, each one line.
    """
    if isinstance(data, DataSplits):
        if val is not None or test is not None:
            raise ConfigError("make_splits: a DataSplits already has its val and test splits")
        return data
    given = [
        None if part is None else _as_dataset(part, f"the {split} data of {name!r}")
        for split, part in zip(SPLITS, _parts(data, val, test), strict=True)
    ]
    parts = _fill_splits(given, val_fraction, test_fraction, seed, name)
    classes = _num_classes([labels_of(part) for part in parts], num_classes, name)
    sample = _sample_shape(parts, name)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    if normalize:
        parts, mean, std = _normalized(parts)
    shape = NetShape(num_classes=classes, sample_shape=sample)
    train, val_part, test_part = parts
    return DataSplits(
        name,
        train,
        val_part,
        test_part,
        in_channels=shape.in_channels,
        num_classes=classes,
        input_size=shape.input_size,
        mean=mean,
        std=std,
        sample_shape=shape.sample_shape,
    )


def _parts(data: Any, val: Any, test: Any) -> list[Any]:
    """``[train, val, test]`` as given (None where missing)."""
    if isinstance(data, Mapping):
        if "train" not in data or set(data) - set(SPLITS):
            raise ConfigError(
                "make_splits: a dict of parts needs 'train' and may have 'val' and 'test'; "
                f"got {', '.join(map(repr, data))}"
            )
        parts = [data.get(split) for split in SPLITS]
    elif isinstance(data, tuple | list) and len(data) == 3:
        parts = list(data)
    else:
        parts = [data, None, None]
    for index, extra in ((1, val), (2, test)):
        if extra is not None:
            if parts[index] is not None:
                raise ConfigError(f"make_splits: the {SPLITS[index]} split is given twice")
            parts[index] = extra
    return parts


def _as_dataset(part: Any, what: str) -> Dataset:
    """One part as a map-style Dataset (data read from iterables held in memory)."""
    if isinstance(part, TensorDataset):
        return TensorDataset(*_pair(*tensors_of(part), what))
    if isinstance(part, DataLoader):
        return TensorDataset(*_collect(part, what))
    if isinstance(part, IterableDataset):
        return TensorDataset(*_collect(_loader(part), what))
    if isinstance(part, Dataset):
        if len(part) == 0:  # type: ignore[arg-type]
            raise DatasetError(f"{what} is empty")
        return part
    if isinstance(part, tuple | list) and len(part) == 2:
        return TensorDataset(*_pair(*part, what))
    if callable(part):
        return TensorDataset(*_collect(part(), what))
    raise ConfigError(
        f"cannot make data splits from {type(part).__name__} ({what}); pass a torch Dataset, "
        "(x, y) arrays, a DataLoader factory, {'train': ..., 'val': ..., 'test': ...} "
        "or DataSplits"
    )


def _pair(x: Any, y: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` rows as float32 inputs and labels (NumPy data copied, tensors shared)."""
    if isinstance(x, Dataset) or isinstance(y, Dataset):
        raise ConfigError(
            "make_splits: give explicit parts as {'train': ..., 'val': ..., 'test': ...} "
            "or (train, val, test), not a pair of datasets"
        )
    try:
        x = _as_inputs(x) if isinstance(x, torch.Tensor) else _float_tensor(np.asarray(x))
        y = y if isinstance(y, torch.Tensor) else torch.tensor(np.asarray(y))
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{what}: x and y must be numeric arrays ({exc})") from None
    if x.ndim == 0 or y.ndim == 0:
        raise DatasetError(f"{what}: x and y need one row per sample")
    if len(x) != len(y):
        raise DatasetError(f"{what}: x has {len(x)} samples but y has {len(y)}")
    if len(x) == 0:
        raise DatasetError(f"{what} is empty")
    return x, _as_labels(y, what)


def _fill_splits(
    parts: list[Dataset | None],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    name: str,
) -> list[Dataset]:
    """Cut the missing test, then val, split from train (see :func:`make_splits`)."""
    train, val, test = parts
    rng = np.random.default_rng(seed)
    if test is None:
        _check_fraction("test_fraction", test_fraction)
    if val is None:
        _check_fraction("val_fraction", val_fraction)
        if test is None and val_fraction + test_fraction >= 1:
            raise ConfigError("val_fraction + test_fraction must be < 1")

    def cut(pool: Dataset, fraction: float) -> tuple[Dataset, Dataset]:
        taken, rest = _take(labels_of(pool), fraction, rng)
        if len(rest) == 0:
            raise DatasetError(f"the train split of {name!r} is empty: too few samples")
        return _select(pool, rest), _select(pool, taken)

    assert train is not None
    if test is None:
        train, test = cut(train, test_fraction)
        val_fraction = val_fraction / (1 - test_fraction)
    if val is None:
        train, val = cut(train, val_fraction)
    return [train, val, test]  # type: ignore[list-item]


def _num_classes(labels: list[torch.Tensor], given: int | None, name: str) -> int:
    """Classes of class-index labels (checked against ``given``), or outputs of targets."""
    if all(_is_class_labels(y) for y in labels):
        low, high = min(int(y.min()) for y in labels), max(int(y.max()) for y in labels)
        if low < 0:
            raise DatasetError(f"class labels of {name!r} must be >= 0, found {low}")
        if given is not None and high >= given:
            raise DatasetError(f"label {high} of {name!r} is out of range for {given} classes")
        return high + 1 if given is None else given
    if given is not None:
        raise DatasetError(
            f"num_classes={given} needs integer class labels; {name!r} has "
            f"{labels[0].dtype} labels (convert them, or leave num_classes unset for targets)"
        )
    outputs = {int(np.prod(y.shape[1:])) for y in labels if not _is_class_labels(y)}
    if len(outputs) != 1 or any(_is_class_labels(y) for y in labels):
        raise DatasetError(f"labels of {name!r} differ in kind or shape between splits")
    return outputs.pop()


def _sample_shape(parts: list[Dataset], name: str) -> tuple[int, ...]:
    """The shape of one input, the same in every split."""
    shapes = [
        tuple(part.tensors[0].shape[1:])
        if isinstance(part, TensorDataset)
        else tuple(torch.as_tensor(part[0][0]).shape)
        for part in parts
    ]
    if len(set(shapes)) != 1:
        found = ", ".join(f"{s} {shape}" for s, shape in zip(SPLITS, shapes, strict=True))
        raise DatasetError(f"inputs of {name!r} differ in shape between splits: {found}")
    if not shapes[0]:
        raise DatasetError(f"inputs of {name!r} are scalars; give each sample a dimension")
    return shapes[0]


def _normalized(
    parts: list[Dataset],
) -> tuple[list[Dataset], tuple[float, ...], tuple[float, ...]]:
    """In-memory splits standardised per channel with the train split's statistics."""
    tensors = [tensors_of(part) for part in parts]
    mean, std = _channel_stats(tensors[0][0])
    normalized: list[Dataset] = [TensorDataset((x - mean) / std, y) for x, y in tensors]
    return normalized, tuple(mean.flatten().tolist()), tuple(std.flatten().tolist())


# --------------------------------------------------------------------------- loading + cache

_CACHE: dict[tuple[Any, ...], DataSplits] = {}
_CACHE_LOCK = threading.Lock()


def load_dataset(
    name: str, *, data_dir: str | None = None, seed: int = 0, **options: Any
) -> DataSplits:
    """Load a registered dataset; the split is fixed by ``seed`` and cached per process.

    The loader gets ``data_dir`` and ``seed`` when its signature takes them (a loader of
    fixed user data may take neither) and must return :class:`DataSplits`.
    Raises :class:`~nasplat.errors.UnknownNameError` for an unknown name,
    :class:`~nasplat.errors.ConfigError` for an unknown option or a loader that returns
    something else, and :class:`~nasplat.errors.DatasetError` for missing or malformed files.
    """
    loader = DATASETS.get(name)
    accepted, takes_any = _parameters(loader)
    _check_options(name, accepted, takes_any, options)
    common = {"data_dir": data_dir, "seed": seed}
    common = {k: v for k, v in common.items() if takes_any or k in accepted}
    # the loader's identity is part of the key: a dataset registered again (a re-run notebook
    # cell, another study's data under the same name) is loaded again, never served stale
    key = (
        name,
        loader,  # held by the key, so its id is never reused
        None if data_dir is None else str(data_dir),
        seed,
        repr(sorted(options.items())),
    )
    with _CACHE_LOCK:
        if key not in _CACHE:
            splits = loader(**common, **options)
            if not isinstance(splits, DataSplits):
                raise ConfigError(
                    f"dataset loader {name!r} returned {type(splits).__name__}, not DataSplits "
                    "(wrap the data with nasplat.ml.data.make_splits)"
                )
            _CACHE[key] = splits
        return _CACHE[key]


def clear_cache() -> None:
    """Forget every dataset loaded in this process (and every dataset read into memory)."""
    with _CACHE_LOCK:
        _CACHE.clear()
    with _TENSORS_LOCK:
        _TENSORS.clear()


def _parameters(loader: Callable[..., Any]) -> tuple[list[str], bool]:
    """The keyword parameters of a loader, and whether it takes any (``**options``)."""
    params = inspect.signature(loader).parameters.values()
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [p.name for p in params if p.kind in keywords]
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _check_options(
    name: str, accepted: list[str], takes_any: bool, options: dict[str, Any]
) -> None:
    accepted = [p for p in accepted if p not in ("data_dir", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown and not takes_any:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for dataset {name!r}; "
            f"accepted: {', '.join(accepted) or '(none)'}"
        )


# --------------------------------------------------------------------------- digits


@DATASETS.register(
    "digits", description="scikit-learn's bundled 8x8 handwritten digits (1x8x8, 10 classes)"
)
def load_digits(
    *,
    data_dir: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> DataSplits:
    """scikit-learn's bundled 8x8 digits, split 60/20/20 by default (``data_dir`` is ignored)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = bunch.images.astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    return _three_way("digits", x, y, 10, seed, val_fraction, test_fraction)


# --------------------------------------------------------------------------- fashion-mnist

_IDX_UBYTE = 0x08


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzip-compressed when its name ends in ``.gz``)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:4] != bytes([0, 0, _IDX_UBYTE, ndim]):
        raise DatasetError(f"malformed IDX file {path}: expected a {ndim}-d unsigned-byte header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(shape)):
        raise DatasetError(
            f"malformed IDX file {path}: header says {shape} but holds {len(raw) - header} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_file(folder: Path, stem: str) -> Path:
    """``folder/stem.gz``, or an uncompressed ``folder/stem``; DatasetError when neither exists."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"fashion-mnist file not found: {folder / stem}.gz; {_FASHION_HINT}")


def _read_mnist_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = _read_idx(images_path, 3), _read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise DatasetError(
            f"malformed fashion-mnist files: {images_path} holds {len(images)} images "
            f"but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= 10:
        raise DatasetError(
            f"malformed fashion-mnist labels in {labels_path}: label {labels.max()} > 9"
        )
    return images[:, None], labels.astype(np.int64)


def _existing_folder(data_dir: str, what: str, hint: str) -> Path:
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{what} folder not found: {folder}; {hint}")
    return folder


@DATASETS.register(
    "fashion-mnist", description="Fashion-MNIST from IDX files (1x28x28, 10 classes)"
)
def load_fashion_mnist(
    *,
    data_dir: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    limit: int | None = None,
) -> DataSplits:
    """Fashion-MNIST; validation is a stratified ``val_fraction`` of the train files.

    ``data_dir`` defaults to the Debian package's folder; ``limit`` caps the train split.
    """
    folder = _existing_folder(data_dir or FASHION_MNIST_DIR, "fashion-mnist", _FASHION_HINT)
    train = _read_mnist_pair(folder, "train")
    test = _read_mnist_pair(folder, "t10k")
    return _train_test("fashion-mnist", train, test, 10, seed, val_fraction, limit)


# --------------------------------------------------------------------------- cifar10

_CIFAR_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches: plain containers and numpy arrays, no other globals."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"cifar10 file not found: {path}; {_CIFAR_HINT}")
    try:
        with path.open("rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # any unpickling or layout problem means a malformed file
        raise DatasetError(f"malformed cifar10 batch {path}: {type(exc).__name__}: {exc}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"malformed cifar10 batch {path}: data must be N x 3072 uint8")
    if labels.shape != (len(data),) or (labels.size and not 0 <= labels.min() <= labels.max() < 10):
        raise DatasetError(
            f"malformed cifar10 batch {path}: labels must be {len(data)} ints in 0..9"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _read_cifar_batches(folder: Path, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    parts = [_read_cifar_batch(folder / name) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@DATASETS.register(
    "cifar10", description="CIFAR-10 python batches (3x32x32, 10 classes); needs --data-dir"
)
def load_cifar10(
    *,
    data_dir: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    limit: int | None = None,
) -> DataSplits:
    """CIFAR-10 from ``data_batch_1..5`` and ``test_batch`` (in ``data_dir`` or its
    ``cifar-10-batches-py/``); validation is a stratified ``val_fraction`` of train."""
    if data_dir is None:
        raise DatasetError(f"cifar10 has no default location: {_CIFAR_HINT}")
    folder = _existing_folder(data_dir, "cifar10", _CIFAR_HINT)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    train = _read_cifar_batches(folder, [f"data_batch_{i}" for i in range(1, 6)])
    test = _read_cifar_batches(folder, ["test_batch"])
    return _train_test("cifar10", train, test, 10, seed, val_fraction, limit)


# --------------------------------------------------------------------------- synthetic


@DATASETS.register(
    "synthetic", description="generated class patterns plus noise, for tests and benchmarks"
)
def load_synthetic(
    *,
    data_dir: str | None = None,
    seed: int = 0,
    n: int = 1000,
    channels: int = 3,
    size: int = 8,
    classes: int = 4,
    noise: float = 3.0,
    task_seed: int = 0,
) -> DataSplits:
    """Balanced samples ``pattern[class] * gain + noise``, split 60/20/20 (``data_dir`` ignored).

    The smooth class patterns come from ``task_seed`` (the same task for every ``seed``); gains,
    noise and the split come from ``seed``. At the default noise a tiny CNN passes 0.9 accuracy
    on four classes within a few epochs; raise ``noise`` (or ``classes``) for a harder task.
    """
    if n < 5 * classes or channels < 1 or size < 1 or classes < 2 or noise < 0:
        raise ConfigError(
            "synthetic needs classes >= 2, n >= 5 * classes, channels >= 1, size >= 1, noise >= 0"
        )
    patterns = _smooth_patterns(classes, channels, size, np.random.default_rng(task_seed))
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % classes)
    gain = rng.uniform(0.7, 1.3, size=(n, 1, 1, 1))
    x = patterns[y] * gain + noise * rng.standard_normal((n, channels, size, size))
    return _three_way("synthetic", x.astype(np.float32), y, classes, seed, 0.2, 0.2)


def _smooth_patterns(
    classes: int, channels: int, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Unit-variance patterns: coarse random grids bilinearly upsampled to ``size``."""
    coarse = torch.from_numpy(rng.standard_normal((classes, channels, 3, 3)))
    fine = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=True)
    fine = fine / fine.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
    return fine.numpy()
