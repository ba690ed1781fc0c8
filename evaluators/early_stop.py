"""The ``early-stop`` evaluator: training whose per-epoch reports let a pruner stop it early.

Pruners (``--pruner``): ``median``, ``percentile``, ``asha`` (alias ``successive-halving``)
and ``hyperband`` are Optuna's, fed from the store (see :mod:`evaluators.pruners`): a pruned
trial is stored PRUNED with ``pruned_at_step``, the epoch it reached. ``patience`` is early
stopping inside one training run: after ``patience`` epochs without a validation-accuracy
gain above ``min_delta`` training stops, the best epoch's weights are restored and the trial
COMPLETEs with their metrics plus ``stopped_epoch`` and ``best_epoch``.
"""

from __future__ import annotations

import copy
from typing import Any

from evaluators.pruners import PRUNER_OPTIONS, PRUNERS, PRUNING, OptunaPruner, canonical_pruner
from evaluators.train import TrainEvaluator
from nasplat.budget import Budget, EvalResult
from nasplat.errors import ConfigError
from nasplat.evaluator import Pruner, Reporter
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import EVALUATORS
from nasplat.space import SearchSpace


class _PatienceExhausted(Exception):
    """Stops ``train_model`` from inside its reporter call (internal to this module)."""


class PatienceReporter(Reporter):
    """Forwards reports and tracks the best epoch; raises once ``patience`` epochs pass
    without an improvement greater than ``min_delta`` (keeping the best epoch's weights)."""

    def __init__(self, inner: Reporter, model: Any, patience: int, min_delta: float) -> None:
        super().__init__()
        self.inner = inner
        self.model = model
        self.patience = patience
        self.min_delta = min_delta
        self.best: tuple[int, float] | None = None
        self.best_state: dict[str, Any] | None = None

    def report(self, step: int, value: float) -> None:
        self.history.append((step, float(value)))
        self.inner.report(step, value)
        if self.best is None or value > self.best[1] + self.min_delta:
            self.best = (step, float(value))
            self.best_state = copy.deepcopy(self.model.state_dict())
        elif step - self.best[0] >= self.patience:
            raise _PatienceExhausted

    def replan(self, steps: int) -> None:
        self.inner.replan(steps)


@EVALUATORS.register(
    "early-stop", description="training with per-epoch pruning (median, ASHA, ...)"
)
class EarlyStopEvaluator(TrainEvaluator):
    """``train`` plus a pruner. Options: ``pruner`` (median), ``patience`` (3) and
    ``min_delta`` (0.0) for the patience pruner, and the Optuna pruner's own options
    (``n_startup_trials``, ``n_warmup_steps``, ``percentile``, ``min_resource``,
    ``reduction_factor``, ``max_resource``, ...), plus everything ``train`` accepts."""

    name = "early-stop"
    OPTIONS = (
        Option("pruner", "str", "median", "median, percentile, asha, hyperband, patience or none"),
        Option("patience", "int", 3, "patience: epochs without a gain before stopping"),
        Option("min_delta", "float", 0.0, "patience: the smallest gain that counts"),
        *PRUNING,
        *TrainEvaluator.OPTIONS,
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        pruner: str = "median",
        patience: int = 3,
        min_delta: float = 0.0,
        **options: Any,
    ) -> None:
        self.pruner_name = canonical_pruner(str(pruner))
        pruner_options = {k: options.pop(k) for k in list(options) if k in PRUNER_OPTIONS}
        super().__init__(space, **options)  # unknown options -> ConfigError
        self._stopped: dict[str, float] | None = None
        if int(patience) < 1:
            raise ConfigError(f"patience must be >= 1, got {patience}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.pruner_options = pruner_options
        self._pruner: Pruner | None = None
        if self.pruner_name in PRUNERS:
            self._pruner = OptunaPruner(self.pruner_name, self.epochs, **pruner_options)
        elif pruner_options:
            raise ConfigError(
                f"option(s) {', '.join(sorted(pruner_options))} do not apply to pruner {self.pruner_name!r}"
            )
        self.options.update(pruner=self.pruner_name, **pruner_options)
        if self.pruner_name == "patience":
            self.options.update(patience=self.patience, min_delta=self.min_delta)

    def pruner(self) -> Pruner | None:
        return self._pruner

    def resolve_budget(self, budget: Budget | None) -> Budget:
        """``train``'s budget; the pruner is recorded in ``extra`` (it shapes the result)."""
        budget = super().resolve_budget(budget)
        return budget.replace(extra={**budget.extra, "pruner": self.pruner_name})

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        self._stopped = None
        result = super().evaluate(genotype, budget, reporter)
        if self._stopped is None:
            return result
        return EvalResult({**result.metrics, **self._stopped}, result.state_dict, result.epochs_run)

    def fit(self, model: Any, splits: Any, config: Any, reporter: Reporter) -> Any:
        """With ``patience``: stop when validation stalls and restore the best epoch."""
        if self.pruner_name != "patience":
            return super().fit(model, splits, config, reporter)
        from nasplat.ml.training import TrainResult, evaluate_model

        watcher = PatienceReporter(reporter, model, self.patience, self.min_delta)
        try:
            result = super().fit(model, splits, config, watcher)
        except _PatienceExhausted:
            result = None
        assert watcher.best is not None or result is not None
        stopped = watcher.history[-1][0] if watcher.history else 0
        best_epoch = watcher.best[0] if watcher.best else 0
        self._stopped = {"stopped_epoch": float(stopped), "best_epoch": float(best_epoch)}
        if watcher.best_state is None:
            return result
        model.load_state_dict(watcher.best_state)
        val_acc, val_loss = evaluate_model(model, splits.val, tta=config.tta)
        train_acc, train_loss = evaluate_model(model, splits.train, tta=config.tta)
        test_acc = evaluate_model(model, splits.test, tta=config.tta)[0]
        return TrainResult(
            val_acc=val_acc,
            val_loss=val_loss,
            test_acc=test_acc,
            train_loss=train_loss,
            train_acc=train_acc,
            epochs_run=stopped,
            best_epoch=best_epoch,
        )
