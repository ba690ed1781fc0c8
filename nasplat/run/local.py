"""The ``local`` executor: trials in this process, one at a time (the default)."""

from __future__ import annotations

from collections import deque
from typing import Any

from nasplat.evaluator import Evaluator, Pruner
from nasplat.executor import ExecutionContext, Executor, TrialOutcome, TrialTask
from nasplat.registry import EXECUTORS
from nasplat.run.trial import run_trial, store_reporter


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
