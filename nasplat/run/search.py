"""Running a study: pick the driver (black-box, one-shot or fidelity ladder) and run it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nasplat.config import SearchConfig
from nasplat.errors import StorageError
from nasplat.genotype import Genotype
from nasplat.run.loop import LoopContext, TrialLoop
from nasplat.run.progress import progress_bar
from nasplat.run.study import StudyRun, prepare
from nasplat.store import StudyRecord, TrialRecord, TrialStore

log = logging.getLogger("nasplat")


@dataclass(frozen=True)
class SearchResult:
    study: StudyRecord
    trials_run: int
    best: TrialRecord | None


def run_search(
    config: SearchConfig, store: TrialStore, *, resume: bool = False, progress: bool = True
) -> SearchResult:
    """Validate the config, create (or resume) its study, and run it to its budget."""
    return drive(prepare(config, store, resume=resume), progress)


def drive(run: StudyRun, progress: bool = True) -> SearchResult:
    """Run a prepared study with the driver its strategy and evaluator call for."""
    if run.strategy.one_shot:
        from nasplat.run.oneshot import run_one_shot

        return run_one_shot(run, progress)
    ladder = run.evaluator.ladder(run.study.objective, run.study.direction, run.budget)
    if ladder is not None:
        from nasplat.run.ladder import run_ladder

        return run_ladder(run, ladder, progress)
    return run_black_box(run, progress)


def best_trial(store: TrialStore, study: StudyRecord) -> TrialRecord | None:
    try:
        return store.best_trial(study.id)
    except StorageError:
        return None


def restore(run: StudyRun) -> list[Genotype]:
    """Mark interrupted trials FAILED and restore the strategy; returns the asks that were in
    flight at the checkpoint (evaluated again so the strategy hears about each one)."""
    interrupted = run.store.interrupt_running(run.study.id)
    if interrupted:
        log.info("marked %d interrupted trial(s) FAILED", interrupted)
    checkpoint = run.store.load_checkpoint(run.study.id)
    if checkpoint is None:
        return []
    run.strategy.load_state_dict(checkpoint["strategy"])
    log.info("restored %s state from the store", run.config.strategy)
    return [Genotype.from_dict(g) for g in checkpoint.get("pending", [])]


def run_black_box(run: StudyRun, progress: bool = True) -> SearchResult:
    """Ask the strategy for architectures until the study has ``config.budget`` finished
    untagged trials (or the time limit passes)."""
    pending = restore(run) if run.resume else []
    already = run.store.count_trials(run.study.id, tag=None)
    run.executor.open(run.execution_context(), run.store)
    try:
        context = LoopContext(
            store=run.store,
            study=run.study,
            space=run.space,
            proposer=run.strategy,
            executor=run.executor,
            budget=run.budget,
            target=run.config.budget,
            already=already,
            time_limit=run.config.time_limit,
            keep_weights=run.config.keep_weights,
            pending=pending,
        )
        total = run.config.budget
        with progress_bar(progress, total=total, completed=already, label=run.study.name) as bar:
            loop = TrialLoop(context).run(bar)
    finally:
        run.executor.close()
    return SearchResult(run.study, loop.finished, best_trial(run.store, run.study))
