"""The ``train`` evaluator: train the network from scratch and report validation accuracy."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from evaluators.constraints import (
    Constraint,
    ConstraintViolation,
    metrics_of,
    parse_constraints,
    violation,
)
from evaluators.network_costs import NetworkCosts, measure_latency
from nasplat.budget import Budget, EvalResult
from nasplat.errors import ConfigError
from nasplat.evaluator import Evaluator, Reporter, pop_common_options, reject_unknown_options
from nasplat.genotype import Genotype
from nasplat.ml.train_config import TrainConfig
from nasplat.options import Option
from nasplat.registry import EVALUATORS
from nasplat.shape import NetShape
from nasplat.space import SearchSpace

__all__ = ["PRE_TRAINING", "TrainEvaluator", "measure_latency"]

PRE_TRAINING = ("params", "flops", "latency_ms")
"""Metrics a constraint of a training evaluator may use (measured on the built network)."""
TRAINING = (
    Option("batch_size", "int", 128, "minibatch size"),
    Option("optimizer", "str", "sgd", "sgd, adam or adamw"),
    Option("lr", "float", 0.05, "learning rate"),
    Option("momentum", "float", 0.9, "SGD momentum"),
    Option("weight_decay", "float", 3e-4, "weight decay"),
    Option("schedule", "str", "cosine", "learning-rate schedule per step: cosine or constant"),
    Option("grad_clip", "float", 5.0, "gradient norm clip (null: none)"),
    Option("label_smoothing", "float", 0.0, "label smoothing of the loss"),
    Option("bn_recalibration", "int", 10, "batches to re-estimate BatchNorm on (0: none)"),
    Option("channels_last", "bool", False, "weights in channels-last order (faster convs on CPU)"),
    Option(
        "augment", "str", "none", "training images changed per batch: none, crop, flip, crop+flip"
    ),
    Option(
        "tta",
        "str",
        "none",
        "test-time augmentation of every evaluation: none, or flip (mean "
        "of the image's and its mirror's class probabilities)",
    ),
)
"""The training loop's settings, with :class:`nasplat.ml.train_config.TrainConfig`'s defaults."""
CONSTRAINTS = Option(
    "constraints", "list[str]", None, 'reject before training, e.g. "params<=1e6" (params, '
    "flops, latency_ms)"
)  # fmt: skip


@EVALUATORS.register(
    "train", description="full training from scratch; per-epoch validation accuracy"
)
class TrainEvaluator(Evaluator):
    """Builds the genotype's network, trains it for ``epochs`` and measures it.

    Metrics: ``val_acc``, ``val_loss``, ``test_acc``, ``train_loss``, ``train_acc``,
    ``params``, ``flops`` (one input, torch's flop counter), ``latency_ms`` (batch-1 forward
    on the training device) and ``seconds``. Each epoch's validation accuracy is reported as an
    intermediate value. Honours every :class:`Budget` field: epochs, data_fraction (stratified
    subset of the training split), width_mult, resolution. ``constraints`` (e.g.
    ``["params<=1e6"]``, on params, flops or latency_ms) reject a network before its trial is
    created (:meth:`precheck`), and fail a trial evaluated outside the trial loop.
    """

    name = "train"
    OPTIONS = (
        Option("epochs", "int", 10, "training epochs (--epochs)"),
        Option("keep_weights", "bool", True, "return the trained weights to the store"),
        Option("restore_best", "bool", False, "measure the best epoch's weights, not the last"),
        CONSTRAINTS,
        *TRAINING,
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        epochs: int = 10,
        keep_weights: bool = True,
        restore_best: bool = False,
        constraints: Any = None,
        **options: Any,
    ) -> None:
        common = pop_common_options(options)
        reject_unknown_options(self, options)
        super().__init__(space, **common, epochs=epochs, keep_weights=keep_weights, **options)
        if int(epochs) < 0:
            raise ConfigError(f"epochs must be >= 0, got {epochs}")
        self.epochs = int(epochs)
        self.keep_weights = bool(keep_weights)
        self.restore_best = bool(restore_best)
        # checked here, before any trial; each trial runs it at its budget's epochs
        self.train_config = TrainConfig(
            epochs=self.epochs, seed=self.seed, device=self.device, **options
        )
        self.constraints: tuple[Constraint, ...] = parse_constraints(constraints, PRE_TRAINING)
        if self.constraints:
            self.options["constraints"] = [str(c) for c in self.constraints]
        self._shape: NetShape | None = None  # the data's shape, read once by precheck

    def resolve_budget(self, budget: Budget | None) -> Budget:
        budget = budget or Budget()
        return budget if budget.epochs is not None else budget.replace(epochs=self.epochs)

    def metric_names(self) -> list[str]:
        return [
            "val_acc",
            "val_loss",
            "test_acc",
            "train_loss",
            "train_acc",
            "params",
            "flops",
            "latency_ms",
            "seconds",
        ]

    def data_shape(self) -> NetShape:
        """The dataset's shape as this evaluator sees it (classes included), at full width and
        native resolution; a trial's budget then scales it (:meth:`NetShape.at_budget`)."""
        full = self.resolve_budget(Budget())
        return self.load_splits(
            full.replace(resolution=None, width_mult=1.0, data_fraction=1.0)
        ).shape

    def cell_option(self) -> str:
        """The network option of this space that counts cells (ConfigError when none)."""
        option = self.space.cell_count_option()
        if option is None:
            raise ConfigError(
                f"space {self.space.name!r} has no cells to reduce (budget field 'cells')"
            )
        return option

    def net_shape(self, budget: Budget, splits: Any) -> NetShape:
        """The network's shape: the (resized) data's, at the budget's width."""
        return splits.shape.at_budget(budget)

    def build_network(self, genotype: Genotype, budget: Budget, splits: Any) -> Any:
        """The genotype's network at the budget's width and (``cells``) depth."""
        extra = {self.cell_option(): budget.cells} if budget.cells is not None else {}
        return self.space.build(genotype, self.net_shape(budget, splits), **extra)

    def precheck(self, genotype: Genotype, budget: Budget) -> str | None:
        """The first constraint the network at ``budget`` breaks (params and FLOPs on the CPU,
        latency on the training device; each measured once per architecture and process)."""
        if not self.constraints:
            return None
        budget = self.resolve_budget(budget)
        if self._shape is None:
            self._shape = self.data_shape()
        needed = metrics_of(self.constraints)
        costs = NetworkCosts(
            self.space,
            self._shape.at_budget(budget),
            device=self.device if "latency_ms" in needed else "cpu",
            **({self.cell_option(): budget.cells} if budget.cells is not None else {}),
        )
        return violation(self.constraints, costs.measure(genotype, needed))

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:

        from nasplat.ml.profiling import profile
        from nasplat.ml.training import resolve_device, seed_everything, state_bytes

        budget = self.resolve_budget(budget)
        reason = self.precheck(genotype, budget)
        if reason is not None:
            raise ConstraintViolation(reason)
        start = time.perf_counter()
        splits = self.load_splits(budget)
        seed_everything(self.seed)
        model = self.build_network(genotype, budget, splits)
        shape = self.net_shape(budget, splits).example_input_shape()
        cost = profile(model, shape)
        config = dataclasses.replace(
            self.train_config, epochs=budget.epochs, time_limit=budget.extra.get("time_limit")
        )
        result = self.fit(model, splits, config, reporter)
        metrics = {
            "val_acc": result.val_acc,
            "val_loss": result.val_loss,
            "train_loss": result.train_loss,
            "train_acc": result.train_acc,
            "params": cost["params"],
            "flops": cost["flops"],
            "latency_ms": measure_latency(model, shape, resolve_device(self.device)),
            "seconds": time.perf_counter() - start,
        }
        if result.test_acc is not None:
            metrics["test_acc"] = result.test_acc
        if config.time_limit is not None:  # the epochs were planned to it
            metrics["epochs_run"] = float(result.epochs_run)
        weights = state_bytes(model) if self.keep_weights else None
        return EvalResult(metrics, state_dict=weights, epochs_run=result.epochs_run)

    def fit(self, model: Any, splits: Any, config: Any, reporter: Reporter) -> Any:
        """Train ``model`` (hook for subclasses); returns nasplat.ml.training's TrainResult."""
        from nasplat.ml.training import train_model

        return train_model(model, splits, config, reporter=reporter, restore_best=self.restore_best)
