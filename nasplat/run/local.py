"""The ``local`` executor: trials in this process, one at a time (the default)."""

from __future__ import annotations

from collections import deque
from typing import Any

from nasplat.budget import Budget
from nasplat.evaluator import Evaluator, Pruner
from nasplat.executor import ExecutionContext, Executor, TrialOutcome, TrialTask
from nasplat.registry import EXECUTORS
from nasplat.run.loop import LoopContext, Proposer, TrialLoop
from nasplat.run.trial import run_trial, store_reporter
from nasplat.space import SearchSpace
from nasplat.store import StudyRecord


@EXECUTORS.register("local", description="in-process, one trial at a time (no Ray start-up cost)")
class LocalExecutor(Executor):
    """Runs each task in this process when ``wait`` is called."""

    name = "local"
    OPTIONS = ()

    def __init__(self) -> None:
        self._queue: deque[TrialTask] = deque()
        self._evaluator: Evaluator | None = None
        self._study_id = 0
        self._objective = ""
        self._store: Any = None
        self._pruner: Pruner | None = None

    @property
    def capacity(self) -> int:
        return 1

    def open(self, context: ExecutionContext, store: Any) -> None:
        self.attach(context.build_evaluator(), store, context.study_id, context.objective)

    def attach(self, evaluator: Evaluator, store: Any, study_id: int, objective: str) -> None:
        """Open with an evaluator already built in this process (instead of ``open``)."""
        self._evaluator = evaluator
        self._store = store
        self._study_id = study_id
        self._objective = objective
        self._pruner = evaluator.pruner()

    def submit(self, task: TrialTask) -> None:
        self._queue.append(task)

    def wait(self) -> list[TrialOutcome]:
        if not self._queue:
            return []
        assert self._evaluator is not None, "open the executor first"
        task = self._queue.popleft()
        reporter = store_reporter(self._store, self._study_id, task.trial_id, self._pruner)
        return [run_trial(task, self._evaluator, reporter, self._objective)]


def run_in_process(
    store: Any,
    study: StudyRecord,
    space: SearchSpace,
    proposer: Proposer,
    evaluator: Evaluator,
    budget: Budget,
    target: int,
    **loop_options: Any,
) -> TrialLoop:
    """The trial loop in this process with an evaluator already built (``nasplat bench``,
    ``proxy-check``): ``target`` distinct architectures at ``budget``."""
    executor = LocalExecutor()
    executor.attach(evaluator, store, study.id, study.objective)
    context = LoopContext(
        store, study, space, proposer, executor, budget, target=target, **loop_options
    )
    return TrialLoop(context).run()
