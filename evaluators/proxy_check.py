"""How far to trust each zero-cost proxy on a task: rank correlation with brief training.

:func:`proxy_check` runs the one trial loop (:mod:`nasplat.run`) with the ``random`` strategy
and the ``proxy-check`` evaluator, which trains each sampled architecture briefly with the
``low-fidelity`` evaluator and scores it with every proxy through the ``proxy`` evaluator (same
width and resolution). Each architecture is a trial of a new study (metrics: the training
metrics plus ``proxy_<name>`` and ``proxy_<name>_seconds``); then Spearman's rho and Kendall's
tau of every proxy against the trained validation accuracy are computed. The correlations are
returned and saved as the study's checkpoint (``{"proxy_correlations": {...}}``); they can be
recomputed from the stored trial metrics with :func:`correlations`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from nasplat.budget import Budget, EvalResult
from nasplat.errors import ConfigError
from nasplat.evaluator import Evaluator, Reporter, pop_common_options, reject_unknown_options
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import EVALUATORS, PROXIES, SPACES, STRATEGIES, load_builtins
from nasplat.run import allocate_name
from nasplat.run.local import run_in_process
from nasplat.shape import NetShape
from nasplat.space import SearchSpace
from nasplat.store.records import TrialRecord

log = logging.getLogger("nasplat")
TARGET = "val_acc"


@dataclass(frozen=True)
class ProxyCorrelation:
    """One proxy's agreement with trained accuracy over ``n`` architectures."""

    proxy: str
    spearman: float
    kendall: float
    n: int
    seconds: float  # mean time to score one architecture


def correlations(trials: Sequence[TrialRecord], proxies: Sequence[str]) -> list[ProxyCorrelation]:
    """Spearman and Kendall of each proxy against ``val_acc`` over the COMPLETE trials."""
    from scipy.stats import kendalltau, spearmanr

    out = []
    for name in proxies:
        key = f"proxy_{name}"
        rows = [
            t for t in trials if t.state == "COMPLETE" and key in t.metrics and TARGET in t.metrics
        ]
        accuracy = [t.metrics[TARGET] for t in rows]
        scores = [t.metrics[key] for t in rows]
        seconds = [t.metrics.get(f"{key}_seconds", math.nan) for t in rows]
        rho = tau = math.nan
        if len(rows) >= 3 and len(set(scores)) > 1 and len(set(accuracy)) > 1:
            rho = float(spearmanr(scores, accuracy).statistic)
            tau = float(kendalltau(scores, accuracy).statistic)
        mean_seconds = sum(seconds) / len(seconds) if seconds else math.nan
        out.append(ProxyCorrelation(name, rho, tau, len(rows), mean_seconds))
    return out


@EVALUATORS.register(
    "proxy-check", description="brief low-fidelity training plus every zero-cost proxy's score"
)
class ProxyCheckEvaluator(Evaluator):
    """Trains with ``low-fidelity`` (``training`` options, ``epochs``), then scores the same
    architecture with each of ``proxies`` at the trial budget's width and resolution. Metrics:
    the training metrics plus ``proxy_<name>`` and ``proxy_<name>_seconds``."""

    name = "proxy-check"
    OPTIONS = (
        Option("proxies", "list[str]", (), "the zero-cost proxies to score"),
        Option("epochs", "int", 2, "epochs of the brief low-fidelity training"),
        Option("training", "dict", None, "low-fidelity options of that training"),
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        proxies: Sequence[str] = (),
        epochs: int = 2,
        training: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        common = pop_common_options(options)
        reject_unknown_options(self, options)
        super().__init__(space, **common, proxies=list(proxies), epochs=epochs)
        self.trainer = EVALUATORS.create(
            "low-fidelity", space, **common, epochs=epochs, keep_weights=False, **(training or {})
        )
        self.scorers = {n: EVALUATORS.create("proxy", space, **common, proxy=n) for n in proxies}

    def resolve_budget(self, budget: Budget | None) -> Budget:
        return self.trainer.resolve_budget(budget)

    def metric_names(self) -> list[str]:
        return self.trainer.metric_names()

    def data_shape(self) -> NetShape:
        return self.trainer.data_shape()

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        result = self.trainer.evaluate(genotype, budget, reporter)
        metrics = dict(result.metrics)
        proxy_budget = Budget(width_mult=budget.width_mult, resolution=budget.resolution)
        for name, scorer in self.scorers.items():
            scored = scorer.evaluate(genotype, proxy_budget, Reporter())
            metrics[f"proxy_{name}"] = scored.metrics[name]
            metrics[f"proxy_{name}_seconds"] = scored.metrics["seconds"]
        return EvalResult(metrics, epochs_run=result.epochs_run)


def proxy_check(
    store: Any,
    *,
    space: str,
    dataset: str = "digits",
    samples: int = 20,
    epochs: int = 2,
    seed: int = 0,
    proxies: Sequence[str] | None = None,
    space_options: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    budget: Budget | None = None,
    study: str | None = None,
    data_dir: str | None = None,
    device: str = "auto",
) -> tuple[Any, list[ProxyCorrelation]]:
    """Run a proxy check; returns ``(study record, correlations)``.

    ``training`` holds ``low-fidelity`` options (``samples`` caps the training split,
    ``data_fraction``, ``batch_size``, ``lr``, ...); ``budget`` sets width and resolution.
    Everything is validated before the study is created.
    """
    load_builtins()
    if samples < 3:
        raise ConfigError(f"a proxy check needs --samples >= 3, got {samples}")
    names = list(proxies or PROXIES.names())
    for name in names:
        PROXIES.get(name)
    space_options = dict(space_options or {})
    search_space = SPACES.create(space, **space_options)
    options = {
        "dataset": dataset,
        "data_dir": data_dir,
        "seed": seed,
        "device": device,
        "proxies": names,
        "epochs": epochs,
        "training": dict(training or {}),
    }
    evaluator = EVALUATORS.create("proxy-check", search_space, **options)
    strategy = STRATEGIES.create("random", search_space, seed=seed)
    train_budget = evaluator.resolve_budget(budget or Budget(epochs=epochs))
    shape = evaluator.data_shape()
    record = store.create_study(
        study or allocate_name(store, f"proxy-check-{space}-{dataset}"),
        space=space,
        strategy="random",
        evaluator="low-fidelity",
        objectives=[(TARGET, "maximize")],
        config={
            "kind": "proxy-check",
            "space": space,
            "space_options": space_options,
            "dataset": dataset,
            "samples": samples,
            "seed": seed,
            "proxies": names,
            "budget": train_budget.to_dict(),
            "shape": shape.to_dict(),
        },
    )
    run_in_process(
        store,
        record,
        search_space,
        strategy,
        evaluator,
        train_budget,
        samples,
        keep_weights="none",
        checkpoints=False,
    )
    results = correlations(store.trials(record.id), names)
    store.save_checkpoint(record.id, {"proxy_correlations": [asdict(r) for r in results]})
    return record, results
