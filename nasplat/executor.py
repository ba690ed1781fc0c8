"""Executors run evaluations; ``local`` runs them in this process (the default).

Every submitted task carries its trial id and every outcome names it: the search loop joins
results on that id, never on arrival order.
"""

from __future__ import annotations

import math
import os
import socket
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nasplat.budget import Budget
from nasplat.errors import TrialPruned
from nasplat.evaluator import Evaluator, Pruner, Reporter
from nasplat.genotype import Genotype
from nasplat.registry import EVALUATORS, EXECUTORS, SPACES, load_builtins


@dataclass(frozen=True)
class TrialTask:
    """One evaluation to run: the trial's id and number, its genotype and budget."""

    trial_id: int
    number: int
    genotype: Genotype
    budget: Budget


@dataclass(frozen=True)
class TrialOutcome:
    """The end of one trial, named by its id."""

    trial_id: int
    state: str  # COMPLETE | PRUNED | FAILED
    value: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    weights: bytes | None = None
    worker: str | None = None


@dataclass(frozen=True)
class ExecutionContext:
    """Plain data from which any process can rebuild what a trial needs."""

    storage_url: str
    study_id: int
    space: str
    space_options: dict[str, Any]
    evaluator: str
    evaluator_options: dict[str, Any]
    objective: str

    def build_evaluator(self) -> Evaluator:
        load_builtins()
        space = SPACES.get(self.space)(**self.space_options)
        return EVALUATORS.get(self.evaluator)(space, **self.evaluator_options)


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
    store: Any, study_id: int, trial_id: int, pruner: Pruner | None = None
) -> Reporter:
    """A reporter that writes intermediate values to the store and consults the pruner."""

    def sink(step: int, value: float) -> None:
        store.report_intermediate(trial_id, step, value)

    should_prune = None
    if pruner is not None:

        def should_prune(step: int, value: float) -> bool:
            return bool(pruner.should_prune(store, study_id, trial_id, step, value))

    return Reporter(sink, should_prune)


def evaluate_and_record(
    store: Any,
    study: Any,
    trial: Any,
    budget: Budget,
    evaluator: Evaluator,
    *,
    keep_weights: str = "best",
) -> TrialOutcome:
    """Evaluate an already created trial in this process and store its outcome (used outside
    the search loop: ``nasplat train``, a one-shot search's retraining)."""
    reporter = store_reporter(store, study.id, trial.id, evaluator.pruner())
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


class Executor(ABC):
    """Runs trial tasks.

    Rules: ``open`` once before any ``submit``; ``submit`` never blocks for the evaluation
    (it may queue); ``wait`` blocks until at least one submitted task has finished and returns
    the finished outcomes (each names its ``trial_id``); ``capacity`` is how many tasks may be
    in flight; ``close`` releases workers. Called from one thread.
    """

    name = ""

    @property
    @abstractmethod
    def capacity(self) -> int: ...

    @abstractmethod
    def open(self, context: ExecutionContext, store: Any) -> None: ...

    @abstractmethod
    def submit(self, task: TrialTask) -> None: ...

    @abstractmethod
    def wait(self) -> list[TrialOutcome]: ...

    def close(self) -> None:
        """Release resources (default: nothing)."""


@EXECUTORS.register("local", description="in-process, one trial at a time (no Ray start-up cost)")
class LocalExecutor(Executor):
    """Runs each task in this process when ``wait`` is called."""

    name = "local"

    def __init__(self) -> None:
        self._queue: deque[TrialTask] = deque()
        self._context: ExecutionContext | None = None
        self._evaluator: Evaluator | None = None
        self._store: Any = None
        self._pruner: Pruner | None = None

    @property
    def capacity(self) -> int:
        return 1

    def open(self, context: ExecutionContext, store: Any) -> None:
        self._context = context
        self._store = store
        self._evaluator = context.build_evaluator()
        self._pruner = self._evaluator.pruner()

    def submit(self, task: TrialTask) -> None:
        self._queue.append(task)

    def wait(self) -> list[TrialOutcome]:
        if not self._queue:
            return []
        assert self._context is not None and self._evaluator is not None
        task = self._queue.popleft()
        reporter = store_reporter(self._store, self._context.study_id, task.trial_id, self._pruner)
        return [run_trial(task, self._evaluator, reporter, self._context.objective)]
