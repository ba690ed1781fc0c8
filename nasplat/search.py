"""The search loop: ask -> evaluate -> store -> tell, resumable after a crash.

Budget: ``config.budget`` finished trials (COMPLETE, PRUNED or FAILED; trials interrupted by a
crash count as FAILED). An architecture already evaluated in the study at the same budget is
not evaluated again: the strategy is told the stored result and no trial is spent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from nasplat.config import SearchConfig
from nasplat.errors import ConfigError, InvalidGenotypeError, StorageError
from nasplat.executor import ExecutionContext, TrialOutcome, TrialTask
from nasplat.genotype import Genotype
from nasplat.registry import EVALUATORS, EXECUTORS, SPACES, STRATEGIES, load_builtins
from nasplat.store import Store, StudyRecord, TrialRecord
from nasplat.strategy import Observation, Strategy

log = logging.getLogger("nasplat")
MAX_CONSECUTIVE_DUPLICATES = 1000


@dataclass(frozen=True)
class SearchResult:
    study: StudyRecord
    trials_run: int
    best: TrialRecord | None


def default_study_name(config: SearchConfig, store: Store, resume: bool) -> str:
    """``space-strategy``, then ``-2``, ``-3``... when taken; ``resume`` picks the newest."""
    base = f"{config.space}-{config.strategy}"
    taken = {s["name"] for s in store.list_studies()}
    names = [base] + [f"{base}-{n}" for n in range(2, len(taken) + 3)]
    used = [name for name in names if name in taken]
    if resume:
        return used[-1] if used else base
    return next(name for name in names if name not in taken)


def evaluator_options(config: SearchConfig) -> dict[str, Any]:
    options = {
        "dataset": config.dataset,
        "data_dir": config.data_dir,
        "seed": config.seed,
        "device": config.device,
        **config.evaluator_options,
    }
    if config.epochs is not None:
        options.setdefault("epochs", config.epochs)
    return options


class Search:
    """One search over a study. Build it, then ``run()``."""

    def __init__(self, config: SearchConfig, store: Store, *, resume: bool = False) -> None:
        load_builtins()
        self.store = store
        self.resume = resume
        self.space = SPACES.get(config.space)(**config.space_options)
        STRATEGIES.get(config.strategy)
        EXECUTORS.get(config.executor)
        evaluator_cls = EVALUATORS.get(config.evaluator)
        name = config.study or default_study_name(config, store, resume)
        if resume:
            if not store.has_study(name):
                raise StorageError(f"no study {name!r} to resume in {store.safe_url}")
            self.study = store.get_study(name)
            config = self._merge_resumed(config)
        else:
            config.study = name
            self.evaluator = evaluator_cls(self.space, **evaluator_options(config))
            objectives = config.objective_list()
            self.study = store.create_study(
                name,
                space=config.space,
                strategy=config.strategy,
                evaluator=config.evaluator,
                objectives=objectives,
                config={**config.to_dict(), "shape": self._data_shape(config)},
            )
        self.config = config
        self.budget = self.evaluator.resolve_budget(config.trial_budget())  # as stored per trial
        self.pending: list[Genotype] = []  # asks in flight at the last checkpoint (resume)
        self.strategy = self._build_strategy()

    def _merge_resumed(self, given: SearchConfig) -> SearchConfig:
        """The stored config wins, except for how long to run and where."""
        stored = {k: v for k, v in self.study.config.items() if k not in ("data", "shape")}
        merged = SearchConfig.from_dict(stored)
        merged.budget = given.budget
        merged.time_limit = given.time_limit
        merged.executor, merged.executor_options = given.executor, given.executor_options
        self.space = SPACES.get(merged.space)(**merged.space_options)
        self.evaluator = EVALUATORS.get(merged.evaluator)(self.space, **evaluator_options(merged))
        return merged

    @staticmethod
    def _data_shape(config: SearchConfig) -> dict[str, Any]:
        from nasplat.data import load_dataset
        from nasplat.shape import NetShape

        splits = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)
        shape = NetShape(splits.in_channels, splits.input_size, splits.num_classes)
        return shape.to_dict()

    def _build_strategy(self) -> Strategy:
        cls = STRATEGIES.get(self.config.strategy)
        try:
            return cls(
                self.space,
                seed=self.config.seed,
                direction=self.study.direction,
                **self.config.strategy_options,
            )
        except TypeError as exc:
            raise ConfigError(f"strategy {self.config.strategy!r}: {exc}") from None

    # --- running ----------------------------------------------------------------------------
    def run(self, progress: bool = True) -> SearchResult:
        if self.strategy.one_shot:
            from nasplat.oneshot import run_one_shot

            return run_one_shot(self, progress)
        custom_loop = getattr(self.evaluator, "run_search", None)
        if custom_loop is not None:  # e.g. the fidelity ladder drives its own rungs
            return custom_loop(self, progress)
        if self.resume:
            self._restore()
        try:
            executor = EXECUTORS.get(self.config.executor)(**self.config.executor_options)
        except TypeError as exc:
            raise ConfigError(f"executor {self.config.executor!r}: {exc}") from None
        executor.open(self.execution_context(), self.store)
        try:
            run = _Run(self, executor)
            run.loop(progress)
        finally:
            executor.close()
        return SearchResult(self.study, run.finished, self._best())

    def execution_context(self) -> ExecutionContext:
        """What an executor needs to rebuild the evaluator in any process."""
        return ExecutionContext(
            storage_url=self.store.url,
            study_id=self.study.id,
            space=self.config.space,
            space_options=self.config.space_options,
            evaluator=self.config.evaluator,
            evaluator_options=evaluator_options(self.config),
            objective=self.study.objective,
        )

    def _restore(self) -> None:
        """Mark interrupted trials FAILED and restore the strategy; the asks that were in
        flight at the checkpoint are evaluated again so the strategy hears about each one."""
        interrupted = self.store.interrupt_running(self.study.id)
        if interrupted:
            log.info("marked %d interrupted trial(s) FAILED", interrupted)
        checkpoint = self.store.load_checkpoint(self.study.id)
        if checkpoint is not None:
            self.strategy.load_state_dict(checkpoint["strategy"])
            self.pending = [Genotype.from_dict(g) for g in checkpoint.get("pending", [])]
            log.info("restored %s state from the store", self.config.strategy)

    def _best(self) -> TrialRecord | None:
        try:
            return self.store.best_trial(self.study.id)
        except StorageError:
            return None


class _Run:
    """The state of one pass of the loop (trials in flight, duplicates waiting)."""

    def __init__(self, search: Search, executor: Any) -> None:
        self.search = search
        self.executor = executor
        self.store = search.store
        self.study = search.study
        self.strategy = search.strategy
        self.space = search.space
        self.budget = search.budget
        self.in_flight: dict[int, tuple[TrialTask, Genotype]] = {}
        self.waiting_duplicates: dict[str, list[Genotype]] = {}
        self.finished = 0
        self.duplicates_in_a_row = 0
        self.deadline = (
            time.monotonic() + search.config.time_limit if search.config.time_limit else None
        )

    def done_before(self) -> int:
        return self.store.count_trials(self.study.id)

    def loop(self, progress: bool) -> None:
        target = self.search.config.budget
        already = self.done_before()
        from nasplat.progress import progress_bar

        with progress_bar(progress, total=target, completed=already, label=self.study.name) as bar:
            while True:
                while self._may_ask(already):
                    self._ask_one(self.search.pending.pop(0) if self.search.pending else None)
                if not self.in_flight:
                    break
                for outcome in self.executor.wait():
                    self._finish(outcome)
                    bar.advance(self._best_text() if progress else "")

    def _may_ask(self, already: int) -> bool:
        if len(self.in_flight) >= self.executor.capacity:
            return False
        if already + self.finished + len(self.in_flight) >= self.search.config.budget:
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            if not self.in_flight:
                log.info("time limit reached")
            return False
        return self.duplicates_in_a_row < MAX_CONSECUTIVE_DUPLICATES

    def _ask_one(self, genotype: Genotype | None = None) -> None:
        genotype = genotype if genotype is not None else self.strategy.ask()
        try:
            self.space.validate(genotype)
        except InvalidGenotypeError as exc:
            log.warning("strategy proposed an invalid genotype (%s); told as FAILED", exc)
            self.strategy.tell(Observation(genotype, None, "FAILED"))
            self.duplicates_in_a_row += 1
            return
        canonical = self.space.canonicalize(genotype)
        cached = self.store.find_evaluated(self.study.id, canonical, self.budget)
        if cached is not None:
            log.info(
                "skipping architecture %s: already evaluated as trial %d",
                canonical.sha[:10],
                cached.number,
            )
            self.strategy.tell(
                Observation(
                    genotype, cached.value, cached.state, cached.number, cached.metrics, cached=True
                )
            )
            self._note_duplicate()
            return
        if canonical.sha in self.waiting_duplicates:
            log.info("skipping architecture %s: already being evaluated", canonical.sha[:10])
            self.waiting_duplicates[canonical.sha].append(genotype)
            self._note_duplicate()
            return
        self.duplicates_in_a_row = 0
        trial = self.store.create_trial(self.study.id, canonical, self.budget)
        task = TrialTask(trial.id, trial.number, canonical, self.budget)
        self.in_flight[trial.id] = (task, genotype)
        self.waiting_duplicates[canonical.sha] = []
        self.executor.submit(task)

    def _note_duplicate(self) -> None:
        self.duplicates_in_a_row += 1
        if self.duplicates_in_a_row == MAX_CONSECUTIVE_DUPLICATES:
            log.warning(
                "the strategy proposed %d evaluated architectures in a row; stopping (space exhausted?)",
                MAX_CONSECUTIVE_DUPLICATES,
            )

    def _finish(self, outcome: TrialOutcome) -> None:
        task, genotype = self.in_flight.pop(outcome.trial_id)
        observation = Observation(
            genotype, outcome.value, outcome.state, task.number, outcome.metrics
        )
        self.strategy.tell(observation)
        for duplicate in self.waiting_duplicates.pop(task.genotype.sha, []):
            self.strategy.tell(
                Observation(
                    duplicate,
                    outcome.value,
                    outcome.state,
                    task.number,
                    outcome.metrics,
                    cached=True,
                )
            )
        self.store.finish_trial(
            outcome.trial_id,
            state=outcome.state,
            value=outcome.value,
            metrics=outcome.metrics,
            error=outcome.error,
            weights=outcome.weights,
            keep_weights=self.search.config.keep_weights,
            checkpoint=self._checkpoint(),
            worker=outcome.worker,
        )
        self.finished += 1
        if self.finished % 50 == 0:
            self.store.prune_checkpoints(self.study.id)
        value = "-" if outcome.value is None else f"{outcome.value:.4f}"
        message = f"trial {task.number}: {outcome.state} {self.study.objective}={value}"
        if outcome.error and outcome.state == "FAILED":
            message += f" ({outcome.error})"
        log.info(message)

    def _checkpoint(self) -> dict[str, Any]:
        """The strategy's state plus the asks still in flight (re-evaluated on resume)."""
        pending = [g.to_dict() for _, g in self.in_flight.values()]
        return {"strategy": self.strategy.state_dict(), "pending": pending}

    def _best_text(self) -> str:
        try:
            best = self.store.best_trial(self.study.id)
        except StorageError:
            return ""
        return f"best {self.study.objective}={best.value:.4f}"
