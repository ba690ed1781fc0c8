"""Running one trial: evaluate, turn any failure into an outcome, store it."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable
from typing import Any

from nasplat.budget import Budget
from nasplat.errors import TrialPruned
from nasplat.evaluator import Evaluator, Pruner, Reporter
from nasplat.executor import TrialOutcome, TrialTask


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_trial(
    task: TrialTask, evaluator: Evaluator, reporter: Reporter, objective: str
) -> TrialOutcome:
    """Evaluate one task, turning pruning and any exception into an outcome (never raises
    except for KeyboardInterrupt/SystemExit)."""
    worker = worker_name()
    try:
        result = evaluator.evaluate(task.genotype, task.budget, reporter)
        value = result.value(objective)
        if not math.isfinite(value):
            raise FloatingPointError(f"objective {objective!r} is {value}")
        return TrialOutcome(
            task.trial_id,
            "COMPLETE",
            value,
            dict(result.metrics),
            weights=result.state_dict,
            worker=worker,
        )
    except TrialPruned as exc:
        last = reporter.history[-1][1] if reporter.history else None
        metrics = {"pruned_at_step": float(reporter.last_step or 0)}
        return TrialOutcome(task.trial_id, "PRUNED", last, metrics, error=str(exc), worker=worker)
    except Exception as exc:  # noqa: BLE001 - a failing trial must never stop the search
        return TrialOutcome(task.trial_id, "FAILED", None, error=describe_error(exc), worker=worker)


def store_reporter(
    store: Any,
    study_id: int,
    trial_id: int,
    pruner: Pruner | None = None,
    on_report: Callable[[int, float], None] | None = None,
    on_replan: Callable[[int], None] | None = None,
) -> Reporter:
    """A reporter that writes intermediate values to the store and consults the pruner
    (``on_report``: also told each value, ``on_replan`` each cut of the steps, e.g. for a
    progress bar)."""

    def sink(step: int, value: float) -> None:
        store.report_intermediate(trial_id, step, value)
        if on_report is not None:
            on_report(step, value)

    should_prune = None
    if pruner is not None:

        def should_prune(step: int, value: float) -> bool:
            return bool(pruner.should_prune(store, study_id, trial_id, step, value))

    return Reporter(sink, should_prune, on_replan)


def evaluate_and_record(
    store: Any,
    study: Any,
    trial: Any,
    budget: Budget,
    evaluator: Evaluator,
    *,
    keep_weights: str = "best",
    on_report: Callable[[int, float], None] | None = None,
    on_replan: Callable[[int], None] | None = None,
) -> TrialOutcome:
    """Evaluate an already created trial in this process and store its outcome (used outside
    the trial loop: ``nasplat train``, a one-shot search's retraining)."""
    reporter = store_reporter(store, study.id, trial.id, evaluator.pruner(), on_report, on_replan)
    task = TrialTask(trial.id, trial.number, trial.genotype, budget)
    outcome = run_trial(task, evaluator, reporter, study.objective)
    store.finish_trial(
        trial.id,
        state=outcome.state,
        value=outcome.value,
        metrics=outcome.metrics,
        error=outcome.error,
        weights=outcome.weights,
        keep_weights=keep_weights,
        worker=outcome.worker,
    )
    return outcome
