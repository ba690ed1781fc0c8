"""The ``objective`` evaluator: the user's own training function instead of the built-in loop.

``objective(model, ctx) -> float | dict`` (see :mod:`nasplat.objective`) is registered in
:data:`nasplat.registry.OBJECTIVES` (the Python API does that; the CLI takes an importable
``package.module:function``) and named by the ``function`` option.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from evaluators.pruners import PRUNER_OPTIONS, PRUNING, OptunaPruner
from nasplat.budget import Budget, EvalResult
from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.evaluator import (
    Evaluator,
    Pruner,
    Reporter,
    pop_common_options,
    reject_unknown_options,
)
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import EVALUATORS, OBJECTIVES
from nasplat.shape import NetShape
from nasplat.space import SearchSpace


@EVALUATORS.register(
    "objective", description="your own training function: objective(model, ctx) -> float | dict"
)
class ObjectiveEvaluator(Evaluator):
    """Builds the genotype's network and hands it to the user's function.

    Options: ``function`` (an ``OBJECTIVES`` name, or ``package.module:function``), ``metric``
    (the name a float return value is stored under; default ``val_acc``), ``direction`` of that
    metric for the pruner (default: the metric's), ``epochs`` (the trial budget's epochs when
    the study sets none; None lets the function choose), ``pruner`` (an Optuna pruner fed by
    ``ctx.report``: median, percentile, asha, hyperband) and its options, ``keep_weights``
    (store the model's state dict after the function returns). ``params`` is added to the
    metrics unless the function returns it. A non-finite or non-numeric result fails the trial.
    """

    name = "objective"
    OPTIONS = (
        Option("function", "str", None, "required: an OBJECTIVES name or package.module:function"),
        Option("metric", "str", "val_acc", "the name a float return value is stored under"),
        Option("direction", "str", None, "of metric, for the pruner (default: the metric's)"),
        Option("epochs", "int", None, "the trial budget's epochs when the study sets none"),
        Option("pruner", "str", None, "median, percentile, asha or hyperband (ctx.report)"),
        Option("keep_weights", "bool", True, "store the model's weights after the function"),
        *PRUNING,
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        function: str,
        metric: str = "val_acc",
        direction: str | None = None,
        epochs: int | None = None,
        pruner: str | None = None,
        keep_weights: bool = True,
        **options: Any,
    ) -> None:
        common = pop_common_options(options)
        pruner_options = {k: options.pop(k) for k in list(options) if k in PRUNER_OPTIONS}
        reject_unknown_options(self, options)
        super().__init__(space, **common, function=function, metric=metric)
        if not isinstance(function, str) or not function:
            raise ConfigError("evaluator 'objective' needs function=<name or module:function>")
        OBJECTIVES.get(function)  # an unknown or unimportable function fails before any trial
        if epochs is not None and int(epochs) < 0:
            raise ConfigError(f"epochs must be >= 0, got {epochs}")
        self.function = function
        self.metric = str(metric)
        self.direction = Direction.parse(direction or Direction.default_for(self.metric))
        self.epochs = None if epochs is None else int(epochs)
        self.keep_weights = bool(keep_weights)
        self._pruner = None
        if pruner is not None:
            self._pruner = OptunaPruner(
                str(pruner), self.epochs or 1, self.direction, **pruner_options
            )
            self.options.update(pruner=self._pruner.name, **pruner_options)
        elif pruner_options:
            raise ConfigError(f"option(s) {', '.join(sorted(pruner_options))} need a pruner")

    def resolve_budget(self, budget: Budget | None) -> Budget:
        budget = budget or Budget()
        if budget.epochs is None and self.epochs is not None:
            budget = budget.replace(epochs=self.epochs)
        return budget

    def pruner(self) -> Pruner | None:
        return self._pruner

    def default_objective(self) -> tuple[str, Direction]:
        return self.metric, self.direction

    def data_shape(self) -> NetShape:
        return self.load_splits(Budget()).shape

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:

        from nasplat.ml.training import resolve_device, seed_everything, state_bytes
        from nasplat.objective import TrialContext

        budget = self.resolve_budget(budget)
        splits = self.load_splits(budget)
        seed_everything(self.seed)
        model = self.space.build(genotype, splits.shape.at_budget(budget))
        device = resolve_device(self.device)
        model.to(device)
        ctx = TrialContext(genotype, splits, budget, device, self.seed, self.metric, reporter)
        returned = OBJECTIVES.get(self.function)(model, ctx)
        metrics = self.metrics_of(returned)
        metrics.setdefault("params", float(sum(p.numel() for p in model.parameters())))
        weights = state_bytes(model) if self.keep_weights else None
        return EvalResult(metrics, state_dict=weights, epochs_run=budget.epochs)

    def metrics_of(self, returned: Any) -> dict[str, float]:
        """The metrics of a return value: a number (stored as ``metric``) or a mapping of them."""
        items = dict(returned) if isinstance(returned, Mapping) else {self.metric: returned}
        metrics: dict[str, float] = {}
        for key, value in items.items():
            try:
                metrics[str(key)] = float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"objective {self.function!r} returned {type(value).__name__} for {key!r}; "
                    "return a number or a dict of numbers"
                ) from None
        if self.metric in metrics and not math.isfinite(metrics[self.metric]):
            raise FloatingPointError(
                f"objective {self.function!r} returned {self.metric}={metrics[self.metric]}"
            )
        return metrics
