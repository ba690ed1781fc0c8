"""What the one-shot strategies (DARTS, ENAS) share: data halves, minibatch streams, the
epoch loop with per-epoch records and checkpoints, and exact (de)serialisation of their state.

A :class:`SupernetStrategy` trains a weight-sharing supernet for ``epochs`` epochs. After every
epoch it hands the context its derived genotype, its intermediate values and its full state
(supernet weights and architecture parameters, optimiser states, RNG states) so a killed search
resumes from the last finished epoch exactly.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.ml.data import tensors_of
from nasplat.space import SearchSpace
from nasplat.strategy import OneShotStrategy
from strategies.rl import from_jsonable, to_jsonable

__all__ = [
    "BatchStream",
    "SupernetStrategy",
    "alpha_values",
    "cosine_lr",
    "frozen_batchnorm_stats",
    "split_halves",
]


def search_net(space: SearchSpace) -> dict[str, Any]:
    """The default supernet options of a space (``net`` option unset): the space's
    ``search_net_options()``, smaller than the retrained network, except options the space was
    given explicitly (``--space-opt channels=4`` is kept)."""
    defaults = space.net_defaults()
    return {
        key: value
        for key, value in space.search_net_options().items()
        if space.options.get(key) == defaults.get(key)
    }


def split_halves(dataset: Dataset, seed: int) -> tuple[TensorDataset, TensorDataset]:
    """Two disjoint random halves of a dataset (fixed by ``seed``), in memory (see
    :func:`~nasplat.ml.data.tensors_of`): weights and architecture."""
    x, y = tensors_of(dataset)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    half = len(y) // 2
    first, second = order[:half].sort().values, order[half:].sort().values
    return TensorDataset(x[first], y[first]), TensorDataset(x[second], y[second])


class BatchStream:
    """Shuffled minibatches of one dataset (in memory, see :func:`~nasplat.ml.data.tensors_of`)
    on a device, from a dedicated generator.

    ``epoch()`` yields one pass (at most ``max_batches`` batches); ``next()`` yields batches
    forever, reshuffling after each pass. The generator's state is part of ``state_dict``.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        device: torch.device,
        max_batches: int | None = None,
    ) -> None:
        self.x, self.y = (t.to(device) for t in tensors_of(dataset))
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.generator = torch.Generator().manual_seed(seed)
        self._queue: list[torch.Tensor] = []

    def _pass(self) -> list[torch.Tensor]:
        n = len(self.y)
        batches = list(torch.randperm(n, generator=self.generator).split(self.batch_size))
        if len(batches) > 1 and len(batches[-1]) < 2:  # BatchNorm needs two samples
            batches.pop()
        return batches[: self.max_batches] if self.max_batches else batches

    def _take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = index.to(self.x.device)
        return self.x[index], self.y[index]

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in self._pass():
            yield self._take(index)

    def __len__(self) -> int:
        full = math.ceil(len(self.y) / self.batch_size)
        return min(full, self.max_batches) if self.max_batches else full

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._queue:
            self._queue = self._pass()
        return self._take(self._queue.pop(0))

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "queue": list(self._queue)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._queue = list(state["queue"])


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """Cosine annealing from ``lr`` (epoch 1) towards ``lr_min`` (as DARTS, per epoch)."""
    progress = (epoch - 1) / max(epochs, 1)
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * progress))


def alpha_values(weights: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Softmaxed architecture weights as intermediate-value keys ``alpha.<edge>.<op>``."""
    return {f"alpha.{edge}.{op}": w for edge, ops in weights.items() for op, w in ops.items()}


@contextmanager
def frozen_batchnorm_stats(module: nn.Module) -> Iterator[None]:
    """Forward passes inside leave BatchNorm running statistics as they were."""
    saved = {
        name: buffer.clone()
        for name, buffer in module.named_buffers()
        if name.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    try:
        yield
    finally:
        buffers = dict(module.named_buffers())
        with torch.no_grad():
            for name, value in saved.items():
                buffers[name].copy_(value)


def logits_of(output: Any) -> torch.Tensor:
    """Logits of a network's output (networks with auxiliary heads return them first)."""
    return output[0] if isinstance(output, tuple | list) else output


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(dim=1) == y).float().mean().item()


class SupernetStrategy(OneShotStrategy):
    """A one-shot strategy that trains a supernet epoch by epoch (the shared DARTS/ENAS loop).

    Common options:

    - ``epochs``: search epochs; ``batch_size``: minibatch size of both halves;
    - ``max_batches`` (None): cap on weight steps per epoch (quick runs and tests);
    - ``net`` (None: the space's ``search_net_options()``, see :func:`search_net`): supernet network
      options given to ``space.supernet`` (e.g. ``{"channels": 8, "layers": 3}``); the
      retrained network uses the space's own options;
    - ``retrain_epochs`` (None: the study's trial budget, ``--epochs`` or the evaluator's
      default): epochs of the from-scratch retraining of the final genotype;
    - ``search_data_fraction``, ``search_resolution`` (None: the study's ``--data-fraction``
      and ``--resolution``): the supernet trains on this share of the training data at this
      input size, while the retraining uses the study's (search cheaply, retrain on all of it).

    Subclasses implement ``setup``, ``train_epoch``, ``derived``, ``final_genotype`` and the
    ``extra_state``/``load_extra_state`` pair.
    """

    mode = "continuous"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        epochs: int = 10,
        batch_size: int = 64,
        max_batches: int | None = None,
        net: Mapping[str, Any] | None = None,
        retrain_epochs: int | None = None,
        search_data_fraction: float | None = None,
        search_resolution: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(space, seed=seed, direction=direction, **options)
        if not space.has_supernet():
            raise ConfigError(f"{self.name}: space {space.name!r} has no weight-sharing supernet")
        checks = {
            "epochs must be >= 1": int(epochs) >= 1,
            "batch_size must be >= 2": int(batch_size) >= 2,
            "max_batches must be >= 1": max_batches is None or int(max_batches) >= 1,
            "retrain_epochs must be >= 0": retrain_epochs is None or int(retrain_epochs) >= 0,
            "search_data_fraction must be in (0, 1]": search_data_fraction is None
            or 0 < float(search_data_fraction) <= 1,
            "search_resolution must be >= 1": search_resolution is None
            or int(search_resolution) >= 1,
            "net must be a mapping of network options": net is None or isinstance(net, Mapping),
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ConfigError(f"{self.name}: {'; '.join(failed)}")
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.max_batches = None if max_batches is None else int(max_batches)
        self.net_options = search_net(space) if net is None else dict(net)
        self.retrain_epochs = None if retrain_epochs is None else int(retrain_epochs)
        self.search_data_fraction = (
            None if search_data_fraction is None else float(search_data_fraction)
        )
        self.search_resolution = None if search_resolution is None else int(search_resolution)
        self.supernet: Any = None
        self.epoch = 0

    # --- the loop -----------------------------------------------------------------------------
    def search(self, context: Any) -> Genotype:
        """Train for ``epochs`` epochs (from the last checkpoint when there is one)."""
        self.build(context)
        checkpoint = context.load_checkpoint()
        if checkpoint is not None:
            self.load_state_dict(checkpoint)
            context.log(f"resuming after epoch {self.epoch} of {self.epochs}")
        while self.epoch < self.epochs:
            self.epoch += 1
            started = time.perf_counter()
            values = self.train_epoch(self.epoch, context)
            values["seconds"] = time.perf_counter() - started
            context.end_epoch(self.epoch, self.derived(), values, self.state_dict())
        return self.final_genotype(context)

    def build(self, context: Any) -> None:
        """Build the supernet (seeded, on the context's device), data streams and optimisers."""
        torch.manual_seed(self.seed)
        splits = context.splits
        self.supernet = self.space.supernet(
            splits.shape, mode=self.mode, **self.supernet_options(), **self.net_options
        ).to(context.device)
        weights_half, arch_half = split_halves(splits.train, self.seed)
        self.weight_data = BatchStream(
            weights_half, self.batch_size, self.seed, context.device, self.max_batches
        )
        self.arch_data = BatchStream(arch_half, self.batch_size, self.seed + 1, context.device)
        self.setup(context)
        context.prepared(self)

    def loss(
        self, batch: tuple[torch.Tensor, torch.Tensor], genotype: Genotype | None = None
    ) -> Any:
        """Cross-entropy of the supernet on a batch: ``(loss, logits)``."""
        x, y = batch
        logits = logits_of(self.supernet(x, genotype=genotype))
        return F.cross_entropy(logits, y), logits

    def supernet_options(self) -> dict[str, Any]:
        """Keyword options of ``space.supernet`` beyond the mode and the network options (such
        as DARTS's ``partial_channels``); only non-default ones, so any space takes none."""
        return {}

    @abstractmethod
    def setup(self, context: Any) -> None:
        """Create optimisers and any other training state (after the supernet exists)."""

    @abstractmethod
    def train_epoch(self, epoch: int, context: Any) -> dict[str, float]:
        """One search epoch; returns its intermediate values (``value``: validation accuracy)."""

    @abstractmethod
    def derived(self) -> Genotype:
        """The genotype the search currently points to (recorded after every epoch)."""

    @abstractmethod
    def final_genotype(self, context: Any) -> Genotype:
        """The genotype to retrain, once the epochs are done."""

    def extra_state(self) -> dict[str, Any]:
        """Subclass state beyond supernet, streams and epoch (tensors allowed)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`extra_state`."""

    # --- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after the current epoch, as exact JSON data."""
        state = {
            "epoch": self.epoch,
            "supernet": self.supernet.state_dict(),
            "weight_data": self.weight_data.state_dict(),
            "arch_data": self.arch_data.state_dict(),
            **self.extra_state(),
        }
        return {**super().state_dict(), "torch": to_jsonable(state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        data = from_jsonable(state["torch"])
        self.epoch = int(data.pop("epoch"))
        self.supernet.load_state_dict(data.pop("supernet"))
        self.weight_data.load_state_dict(data.pop("weight_data"))
        self.arch_data.load_state_dict(data.pop("arch_data"))
        self.load_extra_state(data)
