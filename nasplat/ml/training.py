"""The plain PyTorch training loop that evaluators share.

:func:`train_model` trains a classifier on :class:`~nasplat.ml.data.DataSplits` with per-epoch
validation, optional pruning through a :class:`~nasplat.evaluator.Reporter`, and is
deterministic for a seed on CPU. Any split is read into memory once
(:func:`~nasplat.ml.data.tensors_of`: a ``TensorDataset`` as it is, other datasets once per
process); its tensors are moved to the device once per call and batched by indexing (no
DataLoader). The loop trains classifiers (cross-entropy on class-index labels).

Before every validation the BatchNorm running statistics are re-estimated on a fixed, bounded
set of training batches (:func:`recalibrate_batchnorm`, ``TrainConfig.bn_recalibration``): the
running averages a short run accumulates mostly describe earlier weights (and the initial
mean 0 / variance 1), so without this a few-step trial can score chance while it fits the
training data.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from nasplat.errors import ConfigError
from nasplat.ml.data import tensors_of
from nasplat.ml.train_config import TrainConfig

if TYPE_CHECKING:
    from nasplat.evaluator import Reporter
    from nasplat.ml.data import DataSplits

__all__ = [
    "TrainConfig",
    "TrainResult",
    "evaluate_model",
    "recalibrate_batchnorm",
    "resolve_device",
    "seed_everything",
    "train_model",
]

log = logging.getLogger("nasplat")

_DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; otherwise the named device.

    Raises ConfigError for a malformed string or a device this machine does not have.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"invalid device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type not in _DEVICE_TYPES:
        raise ConfigError(f"unsupported device {device!r}; use auto, cpu, cuda or cuda:N")
    _check_available(resolved)
    return resolved


def _check_available(device: torch.device) -> None:
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {device} requested but CUDA is not available")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {device} requested but only {count} CUDA device(s) exist")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps requested but MPS is not available")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


# --------------------------------------------------------------------------- config


def _cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _constant(progress: float) -> float:
    return 1.0


_SCHEDULES: dict[str, Callable[[float], float]] = {"cosine": _cosine, "constant": _constant}
"""Learning-rate factors by the schedule's progress, from 0 (first step) to 1 (end)."""


@dataclass
class _StepSchedule:
    """The learning-rate factor of each step over ``total`` steps. :meth:`replan` gives the
    run a new ``total`` mid-way: the rest of the schedule is stretched or squeezed over the
    steps left from there, so the factor goes on from where it was, without a jump."""

    factor: Callable[[float], float]
    total: int
    start: int = 0  # the step of the last re-plan
    progress_at_start: float = 0.0

    def progress(self, step: int) -> float:
        left = self.total - self.start
        if left <= 0:
            return 1.0
        done = min(max(step - self.start, 0), left) / left
        return self.progress_at_start + (1.0 - self.progress_at_start) * done

    def __call__(self, step: int) -> float:
        return self.factor(self.progress(step))

    def replan(self, step: int, total: int) -> None:
        """From ``step`` on, end the schedule at ``total`` steps instead."""
        self.progress_at_start, self.start, self.total = self.progress(step), step, total


def _sgd(params: Any, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )


def _adam(params: Any, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _adamw(params: Any, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


_OPTIMIZERS: dict[str, Callable[[Any, TrainConfig], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
}


def augment_batch(xb: torch.Tensor, augment: str, generator: torch.Generator) -> torch.Tensor:
    """A batch of images (N, C, H, W) randomly changed per image: ``crop`` shifts each image
    by up to an eighth of its size (at least 1 pixel) in each direction, filling with zeros
    (the padded random crop of CIFAR training); ``flip`` mirrors half of them left to right.
    Other inputs (not 4-d) and ``none`` pass unchanged. Draws from ``generator`` (CPU)."""
    if augment == "none" or xb.dim() != 4:
        return xb
    n, _, height, width = xb.shape
    parts = augment.split("+")
    if "flip" in parts:
        flipped = torch.rand(n, generator=generator) < 0.5
        xb = torch.where(flipped.to(xb.device)[:, None, None, None], xb.flip(3), xb)
    if "crop" in parts:
        pad = max(1, min(height, width) // 8)
        padded = F.pad(xb, (pad, pad, pad, pad))
        dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(xb.device)
        rows = (torch.arange(height, device=xb.device)[None, :] + dy[:, None])[:, :, None]
        cols = (torch.arange(width, device=xb.device)[None, :] + dx[:, None])[:, None, :]
        picked = padded[torch.arange(n, device=xb.device)[:, None, None], :, rows, cols]
        xb = picked.permute(0, 3, 1, 2).contiguous()
    return xb


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`; accuracies are fractions in [0, 1].

    ``val_*`` and ``train_*`` describe the final weights (the best epoch's with
    ``restore_best``). ``train_*`` are running averages over the epoch's batches, or a plain
    evaluation of the train split when no epoch was run. ``best_epoch`` is 1-based (0: none).
    """

    val_acc: float
    val_loss: float
    test_acc: float | None
    train_loss: float
    train_acc: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int = 0


# --------------------------------------------------------------------------- evaluation


def _logits(output: Any) -> torch.Tensor:
    """The logits of a model's output; networks with auxiliary heads return them first."""
    return output[0] if isinstance(output, tuple | list) else output


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _class_data(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of a split in memory; ConfigError unless the labels are class indices."""
    x, y = tensors_of(dataset)
    if y.ndim != 1 or y.dtype.is_floating_point:
        raise ConfigError(
            "the built-in training loop trains classifiers: labels must be class indices, "
            f"got {y.dtype} labels of shape {tuple(y.shape[1:])} per sample"
        )
    return x, y


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    tta: str = "none",
) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``model`` on ``dataset`` in eval mode.

    ``device`` defaults to the model's; the model's train/eval mode is restored afterwards.
    ``tta="flip"``: each image (4-d input) is classified by the mean of its and its mirror
    image's class probabilities, and the loss is the cross-entropy of that mean.
    """
    x, y = _class_data(dataset)
    if len(y) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    device = _model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y), batch_size):
            xb = x[start : start + batch_size].to(device)
            yb = y[start : start + batch_size].to(device)
            out = _logits(model(xb))
            if tta == "flip" and xb.dim() == 4:
                mean = (out.softmax(dim=1) + _logits(model(xb.flip(3))).softmax(dim=1)) / 2
                out = mean.clamp_min(1e-12).log()  # log-probabilities: the same argmax and loss
            loss_sum += float(F.cross_entropy(out, yb, reduction="sum"))
            correct += int((out.argmax(dim=1) == yb).sum())
    finally:
        model.train(was_training)
    return correct / len(y), loss_sum / len(y)


_BatchNorm = nn.modules.batchnorm._BatchNorm


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    forward: Callable[[torch.Tensor], Any] | None = None,
) -> int:
    """Re-estimate every BatchNorm layer's running statistics from ``batches`` of inputs.

    Each layer's running mean and variance are reset and replaced by the cumulative (equally
    weighted) average of the per-batch statistics over ``batches`` (``momentum=None``), computed
    in training mode without gradients; momentum, the module's train/eval mode and all
    parameters are restored. ``forward(x)`` runs the model (default ``model(x)``; e.g. a
    supernet's path: ``lambda x: supernet(x, genotype=g)``). Returns the number of batches
    used: 0, and nothing run or changed, when the model has no BatchNorm with running
    statistics or ``batches`` is empty.
    """
    layers = batchnorm_layers(model)
    batches = list(batches)
    if not layers or not batches:  # nothing to estimate from: the statistics stay as they are
        return 0
    run = model if forward is None else forward
    momenta = [m.momentum for m in layers]
    was_training = model.training
    used = 0
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for xb in batches:
            run(xb)
            used += 1
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return used


# --------------------------------------------------------------------------- training


@contextmanager
def _intra_op_threads(num_threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        if num_threads is not None:
            torch.set_num_threads(previous)


def _batch_count(n: int, batch_size: int) -> int:
    """Batches per epoch; a trailing batch of one sample is dropped (BatchNorm needs two)."""
    full, rest = divmod(n, batch_size)
    return full + (rest > 1 or (rest == 1 and full == 0))


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches, :func:`_batch_count` of them."""
    batches = torch.randperm(n, generator=generator).split(batch_size)
    return list(batches[: _batch_count(n, batch_size)])


@dataclass
class _Run:
    """The state of one :func:`train_model` call."""

    model: nn.Module
    config: TrainConfig
    device: torch.device
    x: torch.Tensor
    y: torch.Tensor
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    schedule: _StepSchedule
    generator: torch.Generator
    calibration: list[torch.Tensor] = field(default_factory=list)
    augmenter: torch.Generator | None = None  # draws the batches' augmentations

    def evaluate(self, dataset: Dataset) -> tuple[float, float]:
        """``(accuracy, loss)`` of the model on ``dataset`` with the run's test-time
        augmentation."""
        return evaluate_model(self.model, dataset, device=self.device, tta=self.config.tta)

    def recalibrate(self) -> None:
        """Re-estimate BatchNorm statistics on the run's fixed calibration batches."""
        recalibrate_batchnorm(self.model, (self.x[index] for index in self.calibration))

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the train split: ``(mean loss, accuracy)``."""
        self.model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for index in _batches(len(self.y), self.config.batch_size, self.generator):
            index = index.to(self.device)
            xb, yb = self.x[index], self.y[index]
            if self.augmenter is not None:
                xb = augment_batch(xb, self.config.augment, self.augmenter)
            self.optimizer.zero_grad(set_to_none=True)
            out = _logits(self.model(xb))
            loss = F.cross_entropy(out, yb, label_smoothing=self.config.label_smoothing)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}")
            loss.backward()
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += value * len(yb)
            correct += int((out.argmax(dim=1) == yb).sum())
            seen += len(yb)
        return loss_sum / max(seen, 1), correct / max(seen, 1)


def _start_run(model: nn.Module, splits: DataSplits, config: TrainConfig) -> _Run:
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    x, y = (t.to(device) for t in _class_data(splits.train))
    optimizer = _OPTIMIZERS[config.optimizer](model.parameters(), config)
    schedule = _StepSchedule(
        _SCHEDULES[config.schedule], config.epochs * _batch_count(len(y), config.batch_size)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(config.seed)
    calibration: list[torch.Tensor] = []
    if config.bn_recalibration and batchnorm_layers(model):
        # its own generator: the training order does not depend on the option
        drawn = torch.Generator().manual_seed(config.seed + 1)
        batches = _batches(len(y), config.batch_size, drawn)[: config.bn_recalibration]
        calibration = [index.to(device) for index in batches]
    # its own generator too: the same batches in the same order with or without augmentation
    augmenter = None if config.augment == "none" else torch.Generator().manual_seed(config.seed + 2)
    return _Run(
        model,
        config,
        device,
        x,
        y,
        optimizer,
        scheduler,
        schedule,
        generator,
        calibration,
        augmenter,
    )


def _is_better(record: dict[str, float], best: dict[str, float] | None) -> bool:
    """Higher validation accuracy wins; ties go to the lower validation loss, then the earlier."""
    if best is None:
        return True
    return (record["val_acc"], -record["val_loss"]) > (best["val_acc"], -best["val_loss"])


@dataclass
class _Fitted:
    """What the epoch loop produced."""

    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None


def train_model(
    model: nn.Module,
    splits: DataSplits,
    config: TrainConfig,
    *,
    reporter: Reporter | None = None,
    evaluate_test: bool = True,
    restore_best: bool = False,
) -> TrainResult:
    """Train ``model`` on ``splits.train``, validating after every epoch.

    The model is moved to ``config.device`` and stays there. After each epoch the BatchNorm
    statistics are re-estimated (``config.bn_recalibration``, :func:`recalibrate_batchnorm`) and
    ``reporter.report(epoch, val_acc)`` is called (epochs count from 1), and
    ``reporter.replan(epochs)`` when ``config.time_limit`` changes the epochs' plan; a
    :class:`~nasplat.errors.TrialPruned` it raises propagates. A non-finite training loss
    raises FloatingPointError at once. With ``restore_best`` the best-validation epoch's
    weights are loaded at the end. Whatever happens, the model is left in eval mode without
    gradients. Deterministic for ``config.seed`` on CPU.
    """
    started = time.perf_counter()
    with _intra_op_threads(config.num_threads):
        run = _start_run(model, splits, config)
        try:
            fitted = _fit(run, splits, reporter, restore_best, started)
        finally:
            model.eval()
            model.zero_grad(set_to_none=True)
        if fitted.best_state is not None:
            model.load_state_dict(fitted.best_state)
        return _result(run, splits, fitted, evaluate_test, restore_best, started)


def _fit(
    run: _Run,
    splits: DataSplits,
    reporter: Reporter | None,
    restore_best: bool,
    started: float,
) -> _Fitted:
    """The epoch loop (keeping the best weights only with ``restore_best``); the epochs are
    planned to ``config.time_limit`` counted from ``started``."""
    fitted = _Fitted()
    epochs, epoch = run.config.epochs, 0
    while epoch < epochs:
        epoch += 1
        epoch_start = time.perf_counter()
        train_loss, train_acc = run.train_epoch(epoch)
        run.recalibrate()
        val_acc, val_loss = run.evaluate(splits.val)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_acc": val_acc,
            "val_loss": val_loss,
            "seconds": time.perf_counter() - epoch_start,
        }
        fitted.history.append(record)
        if _is_better(record, fitted.best):
            fitted.best = record
            if restore_best:
                fitted.best_state = copy.deepcopy(run.model.state_dict())
        if reporter is not None:
            reporter.report(epoch, val_acc)
        if run.config.time_limit is not None:
            planned, epochs = epochs, _plan_to_time_limit(run, fitted.history, epochs, started)
            if epochs != planned and reporter is not None:
                reporter.replan(epochs)
    return fitted


def _plan_to_time_limit(
    run: _Run, history: list[dict[str, float]], planned: int, started: float
) -> int:
    """The epochs to run: those run plus those that fit in what is left of
    ``config.time_limit`` at the pace of the epochs so far (those after the first, once there
    are any: the first carries the warm-up), at most ``config.epochs``. A new count, shorter
    or longer than ``planned``, re-plans the rest of the learning-rate schedule over it; a plan
    that has run out stays ended (its schedule is at zero)."""
    assert run.config.time_limit is not None
    done = len(history)
    if done >= planned:
        return planned
    left = started + run.config.time_limit - time.perf_counter()
    paced = history[1:] or history
    pace = sum(record["seconds"] for record in paced) / len(paced)
    fits = min(run.config.epochs, done + int(max(left, 0.0) // max(pace, 1e-9)))
    if fits == planned:
        return planned
    log.info(
        "time limit %.0f s: training re-planned from %d to %d epochs (%.1f s per epoch)",
        run.config.time_limit,
        planned,
        fits,
        pace,
    )
    batches = _batch_count(len(run.y), run.config.batch_size)
    run.schedule.replan(done * batches, fits * batches)
    return fits


def _result(
    run: _Run,
    splits: DataSplits,
    fitted: _Fitted,
    evaluate_test: bool,
    restore_best: bool,
    started: float,
) -> TrainResult:
    history, best = fitted.history, fitted.best
    final = best if restore_best else (history[-1] if history else None)
    if final is None:  # no epoch was run: evaluate the untrained weights
        val_acc, val_loss = run.evaluate(splits.val)
        train_acc, train_loss = run.evaluate(splits.train)
        final = {"val_acc": val_acc, "val_loss": val_loss}
        final |= {"train_acc": train_acc, "train_loss": train_loss}
    test_acc = run.evaluate(splits.test)[0] if evaluate_test else None
    return TrainResult(
        val_acc=final["val_acc"],
        val_loss=final["val_loss"],
        test_acc=test_acc,
        train_loss=final["train_loss"],
        train_acc=final["train_acc"],
        epochs_run=len(history),
        history=history,
        seconds=time.perf_counter() - started,
        best_epoch=int(best["epoch"]) if best is not None else 0,
    )


def state_bytes(model: nn.Module) -> bytes:
    """A model's state dict on the CPU, as ``torch.save`` bytes (what the store keeps; load with
    ``torch.load(io.BytesIO(data), weights_only=True)``)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()
