"""The ``low-fidelity`` evaluator: cheaper training defined entirely by the trial's Budget.

Fidelity knobs: fewer epochs, a stratified fraction of the training data, a width multiplier,
a lower input resolution, fewer cells, and a *proxy task* (a subset of the classes and/or a
capped number of training samples), named as a proxy of the target dataset. Everything that
was cut is written into the resolved :class:`Budget` (``extra`` holds the proxy task), which
the store keeps with the trial, so trials at different fidelities are never compared as equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluators.train import TrainEvaluator
from nasplat.budget import Budget
from nasplat.errors import ConfigError
from nasplat.options import Option, merged
from nasplat.registry import EVALUATORS
from nasplat.space import SearchSpace

FIDELITY_DEFAULTS: dict[str, Any] = {"epochs": 3, "data_fraction": 0.5, "width_mult": 1.0}


def read_classes(value: Any) -> tuple[int, ...] | None:
    """``classes`` option: None, an int k (the first k classes) or a list of class labels."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 2:
            raise ConfigError(f"classes must keep at least 2 classes, got {value}")
        return tuple(range(value))
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        classes = tuple(int(c) for c in items)
    except (TypeError, ValueError):
        raise ConfigError(
            f"classes must be an int or a list of class labels, got {value!r}"
        ) from None
    if len(classes) < 2:
        raise ConfigError(f"classes must keep at least 2 classes, got {list(classes)}")
    return classes


@EVALUATORS.register(
    "low-fidelity",
    description="cheap training: fewer epochs, data fraction, width, resolution, cells, proxy task",
)
class LowFidelityEvaluator(TrainEvaluator):
    """Training at a reduced budget (``train``'s metrics and options, plus the knobs below).

    Options (defaults used when the search's budget leaves a field at its default):
    ``epochs`` (3), ``data_fraction`` (0.5), ``width_mult`` (1.0), ``resolution`` (native),
    ``cells`` (the space's default; mapped to ``cells_per_stage`` for nb201, ``layers`` for
    cell), and the proxy task: ``classes`` (k or a list: keep those classes, relabelled) and
    ``samples`` (cap the training split at about this many, stratified). The CLI's
    ``--epochs/--data-fraction/--width-mult/--resolution`` win over these defaults.
    """

    name = "low-fidelity"
    OPTIONS = merged(
        TrainEvaluator.OPTIONS,
        (
            Option("epochs", "int", FIDELITY_DEFAULTS["epochs"], "training epochs (--epochs)"),
            Option(
                "data_fraction",
                "float",
                FIDELITY_DEFAULTS["data_fraction"],
                "of the training split",
            ),
            Option("width_mult", "float", FIDELITY_DEFAULTS["width_mult"], "channel multiplier"),
            Option("resolution", "int", None, "input resolution (default: native)"),
            Option("cells", "int", None, "cells of the network (default: the space's)"),
            Option("classes", "list[int]", None, "proxy task: k (the first k) or these classes"),
            Option("samples", "int", None, "proxy task: about this many training samples"),
        ),
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        epochs: int | None = None,
        data_fraction: float | None = None,
        width_mult: float | None = None,
        resolution: int | None = None,
        cells: int | None = None,
        classes: Any = None,
        samples: int | None = None,
        **options: Any,
    ) -> None:
        epochs = FIDELITY_DEFAULTS["epochs"] if epochs is None else epochs
        super().__init__(space, epochs=epochs, **options)
        self.defaults = Budget(
            epochs=self.epochs,
            data_fraction=FIDELITY_DEFAULTS["data_fraction"]
            if data_fraction is None
            else data_fraction,
            width_mult=FIDELITY_DEFAULTS["width_mult"] if width_mult is None else width_mult,
            resolution=resolution,
            cells=cells,
        )
        self.classes = read_classes(classes)
        if samples is not None and int(samples) < 1:
            raise ConfigError(f"samples must be >= 1, got {samples}")
        self.samples = None if samples is None else int(samples)
        if cells is not None:
            self.cell_option()  # fail early for a space without cells
        given = {
            "data_fraction": data_fraction,
            "width_mult": width_mult,
            "resolution": resolution,
            "cells": cells,
            "classes": list(self.classes) if self.classes else None,
            "samples": self.samples,
        }
        self.options.update({k: v for k, v in given.items() if v is not None})

    def proxy_task(self) -> dict[str, Any]:
        """The proxy task as recorded in the budget's ``extra`` (empty when none)."""
        if self.classes is None and self.samples is None:
            return {}
        task: dict[str, Any] = {"proxy_of": self.dataset}
        if self.classes is not None:
            task["classes"] = list(self.classes)
        if self.samples is not None:
            task["samples"] = self.samples
        return task

    def resolve_budget(self, budget: Budget | None) -> Budget:
        """Fields the search left at their defaults take this evaluator's cheaper defaults."""
        budget = budget or Budget()
        base = Budget()
        changes = {
            name: getattr(self.defaults, name)
            for name in ("epochs", "data_fraction", "width_mult", "resolution", "cells")
            if getattr(budget, name) == getattr(base, name)
        }
        extra = {**budget.extra, **self.proxy_task()}
        return budget.replace(**changes, extra=extra)

    def load_splits(self, budget: Budget) -> Any:
        """``train``'s splits, then the proxy task's classes and sample cap."""
        splits = super().load_splits(budget)
        classes: Sequence[int] | None = budget.extra.get("classes")
        if classes is not None:
            splits = splits.classes_subset(classes)
        samples = budget.extra.get("samples")
        if samples is not None and samples < len(splits.train):
            splits = splits.subset(samples / len(splits.train), seed=self.seed)
        return splits
