"""The black-box driver: ask the strategy, evaluate, tell, until the study's budget is used."""

from __future__ import annotations

import logging

from nasplat.genotype import Genotype
from nasplat.run.loop import LoopContext, TrialLoop
from nasplat.run.progress import progress_bar
from nasplat.run.result import SearchResult, best_trial
from nasplat.run.study import StudyRun

log = logging.getLogger("nasplat")


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
