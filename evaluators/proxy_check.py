"""How far to trust each zero-cost proxy on a task: rank correlation with brief training.

:func:`proxy_check` samples architectures, trains each briefly with the ``low-fidelity``
evaluator, scores each with every proxy through the ``proxy`` evaluator (same width and
resolution), stores each architecture as a trial of a new study (metrics: the training
metrics plus ``proxy_<name>`` and ``proxy_<name>_seconds``), and computes Spearman's rho and
Kendall's tau of every proxy against the trained validation accuracy. The correlations are
returned and saved as the study's checkpoint (``{"proxy_correlations": {...}}``); they can be
recomputed from the stored trial metrics with :func:`correlations`.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from nasplat.budget import Budget
from nasplat.errors import ConfigError
from nasplat.evaluator import Reporter
from nasplat.executor import TrialTask, run_trial
from nasplat.registry import EVALUATORS, PROXIES, SPACES, load_builtins
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
    """
    load_builtins()
    if samples < 3:
        raise ConfigError(f"a proxy check needs --samples >= 3, got {samples}")
    names = list(proxies or PROXIES.names())
    for name in names:
        PROXIES.get(name)
    space_options = dict(space_options or {})
    search_space = SPACES.get(space)(**space_options)
    common = {"dataset": dataset, "data_dir": data_dir, "seed": seed, "device": device}
    trainer = EVALUATORS.get("low-fidelity")(
        search_space, **common, epochs=epochs, keep_weights=False, **(training or {})
    )
    scorers = {n: EVALUATORS.get("proxy")(search_space, **common, proxy=n) for n in names}
    train_budget = trainer.resolve_budget(budget or Budget(epochs=epochs))
    proxy_budget = Budget(width_mult=train_budget.width_mult, resolution=train_budget.resolution)
    record = store.create_study(
        study or _free_name(store, f"proxy-check-{space}-{dataset}"),
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
        },
    )
    rng = random.Random(seed)
    seen: set[str] = set()
    for _ in range(samples * 20):
        if len(seen) >= samples:
            break
        genotype = search_space.canonicalize(search_space.sample(rng))
        if genotype.sha in seen:
            continue
        seen.add(genotype.sha)
        _check_one(store, record.id, genotype, trainer, train_budget, scorers, proxy_budget)
    results = correlations(store.trials(record.id), names)
    store.save_checkpoint(record.id, {"proxy_correlations": [asdict(r) for r in results]})
    return record, results


def _check_one(
    store: Any,
    study_id: int,
    genotype: Any,
    trainer: Any,
    budget: Budget,
    scorers: dict[str, Any],
    proxy_budget: Budget,
) -> None:
    trial = store.create_trial(study_id, genotype, budget)
    outcome = run_trial(
        TrialTask(trial.id, trial.number, genotype, budget), trainer, Reporter(), TARGET
    )
    metrics = dict(outcome.metrics)
    if outcome.state == "COMPLETE":
        for name, scorer in scorers.items():
            result = scorer.evaluate(genotype, proxy_budget, Reporter())
            metrics[f"proxy_{name}"] = result.metrics[name]
            metrics[f"proxy_{name}_seconds"] = result.metrics["seconds"]
    store.finish_trial(
        trial.id, state=outcome.state, value=outcome.value, metrics=metrics, error=outcome.error
    )
    log.info("proxy check: trial %d %s %s=%s", trial.number, outcome.state, TARGET, outcome.value)


def _free_name(store: Any, base: str) -> str:
    taken = {s["name"] for s in store.list_studies()}
    return next(
        n for n in [base, *(f"{base}-{i}" for i in range(2, len(taken) + 3))] if n not in taken
    )
