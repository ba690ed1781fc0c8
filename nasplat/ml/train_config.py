"""The training loop's settings (:class:`TrainConfig`), without torch.

Evaluators check their training options when they are created, before a study is written
(:func:`nasplat.ml.training.train_model` runs them); this module imports no torch, so that
check costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasplat.errors import ConfigError

__all__ = ["AUGMENTATIONS", "OPTIMIZERS", "SCHEDULES", "TTA_MODES", "TrainConfig"]

OPTIMIZERS = ("sgd", "adam", "adamw")
"""What ``TrainConfig.optimizer`` may be (the training loop builds each)."""
SCHEDULES = ("cosine", "constant")
"""What ``TrainConfig.schedule`` may be (learning-rate factors per step)."""
AUGMENTATIONS = ("crop", "flip")
"""What ``TrainConfig.augment`` may combine."""
TTA_MODES = ("none", "flip")
"""What ``TrainConfig.tta`` may be."""


def _check_choice(what: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; known: {', '.join(sorted(choices))}")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run; validated on construction (ConfigError).

    ``schedule`` is applied per optimisation step; ``nesterov`` applies to ``sgd`` only;
    ``num_threads`` sets torch's intra-op threads for the run and restores them afterwards.
    ``bn_recalibration``: before each validation, re-estimate BatchNorm running statistics on
    up to this many training batches (a fixed subset drawn once per run; 0: keep the running
    averages of training). Models without BatchNorm are not touched. ``channels_last``: the
    model's 4-d weights (and so its convolutions' outputs) in channels-last memory order, which
    trains convolutional networks faster on CPUs (docs/benchmarks.md). ``augment``: random
    changes to each training batch of images (:func:`nasplat.ml.training.augment_batch`):
    ``none``, ``crop``, ``flip`` or ``crop+flip``. ``tta``: test-time augmentation of every
    evaluation (validation each epoch, test, train): ``none``, or ``flip`` (the mean of the
    class probabilities of each image and its mirror image;
    :func:`nasplat.ml.training.evaluate_model`).
    ``time_limit``: seconds the run's epochs may take (None: no limit). After each epoch the
    epoch count is re-planned to what fits in the time left at the pace of the epochs after
    the first (at least one epoch runs, at most ``epochs``): it may fall and rise again. The
    rest of the learning-rate schedule is then stretched or squeezed over the new count from
    where it is, without a jump; the final test evaluation comes on top. Machine-dependent: the
    one-shot retraining sets it from a study's ``--time-limit``.
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    schedule: str = "cosine"
    grad_clip: float | None = 5.0
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    nesterov: bool = False
    bn_recalibration: int = 10
    channels_last: bool = False
    augment: str = "none"
    tta: str = "none"
    time_limit: float | None = None

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        try:
            failed = self._failed_checks()
        except TypeError as exc:  # a string where a number belongs, say
            raise ConfigError(
                f"invalid training config: a value of the wrong type ({exc})"
            ) from None
        if failed:
            raise ConfigError(f"invalid training config: {'; '.join(failed)}")

    def _failed_checks(self) -> list[str]:
        checks = {
            "epochs must be >= 0": self.epochs >= 0,
            "batch_size must be >= 1": self.batch_size >= 1,
            "lr must be > 0": self.lr > 0,
            "momentum must be >= 0": self.momentum >= 0,
            "weight_decay must be >= 0": self.weight_decay >= 0,
            "grad_clip must be > 0 or None": self.grad_clip is None or self.grad_clip > 0,
            "label_smoothing must be in [0, 1)": 0 <= self.label_smoothing < 1,
            "num_threads must be >= 1 or None": self.num_threads is None or self.num_threads >= 1,
            "bn_recalibration must be >= 0": self.bn_recalibration >= 0,
            "channels_last must be true or false": isinstance(self.channels_last, bool),
            f"augment must be none or a '+' list of {', '.join(AUGMENTATIONS)}, got "
            f"{self.augment!r}": self.augment == "none"
            or (
                isinstance(self.augment, str)
                and all(a in AUGMENTATIONS for a in self.augment.split("+"))
            ),
            f"tta must be one of {', '.join(TTA_MODES)}, got {self.tta!r}": self.tta in TTA_MODES,
            "time_limit must be > 0 or None": self.time_limit is None or self.time_limit > 0,
        }
        return [message for message, ok in checks.items() if not ok]
