"""What a user's objective function gets: ``objective(model, ctx) -> float | dict``.

An objective trains and measures one network its own way, in Optuna's style. ``ctx`` is a
:class:`TrialContext`: the data (at the trial's budget), the budget, the device, the seed and
``report(step, **metrics)``, which records an intermediate value and lets a pruner stop the trial
(it raises :class:`nasplat.errors.TrialPruned`; let it propagate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nasplat.budget import Budget
from nasplat.evaluator import Reporter
from nasplat.genotype import Genotype


@dataclass
class TrialContext:
    """Everything an objective function needs besides the model.

    ``data`` is the study's :class:`~nasplat.ml.data.DataSplits` at the trial's budget (its data
    fraction and resolution applied): ``ctx.train``, ``ctx.val`` and ``ctx.test`` are its
    ``torch.utils.data.Dataset`` splits and :meth:`loader` makes a ``DataLoader``. ``epochs``
    is the budget's epoch count (None when the study sets none: the function's own default).
    ``metric`` is the name a plain float return value is stored under (the study's objective).
    """

    genotype: Genotype
    data: Any
    budget: Budget
    device: Any
    seed: int
    metric: str
    reporter: Reporter = field(default_factory=Reporter)
    reported: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    @property
    def epochs(self) -> int | None:
        return self.budget.epochs

    @property
    def train(self) -> Any:
        return self.data.train

    @property
    def val(self) -> Any:
        return self.data.val

    @property
    def test(self) -> Any:
        return self.data.test

    def loader(self, split: str = "train", batch_size: int = 64, **options: Any) -> Any:
        """A ``torch.utils.data.DataLoader`` over one split (``train`` shuffles, seeded)."""
        import torch
        from torch.utils.data import DataLoader

        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {split!r}")
        if split == "train" and "shuffle" not in options:
            options["shuffle"] = True
            options.setdefault("generator", torch.Generator().manual_seed(self.seed))
        return DataLoader(getattr(self.data, split), batch_size=batch_size, **options)

    def report(self, step: int, **metrics: float) -> None:
        """Record intermediate metrics after ``step`` (an epoch); the study's metric (or the
        only one given) is what pruners judge. Raises ``TrialPruned`` when the trial should
        stop: let it propagate out of the objective."""
        if not metrics:
            raise ValueError(
                "report needs at least one metric, e.g. ctx.report(epoch, val_acc=0.9)"
            )
        values = {name: float(value) for name, value in metrics.items()}
        self.reported.append((int(step), values))
        primary = values.get(self.metric)
        if primary is None and len(values) == 1:
            primary = next(iter(values.values()))
        if primary is not None and math.isfinite(primary):
            self.reporter.report(int(step), primary)
