"""The black-box driver: ask the strategy, evaluate, tell, until the study's budget is used."""

from __future__ import annotations

import logging
from typing import Any

from nasplat.genotype import Genotype
from nasplat.run.loop import LoopContext, TrialLoop
from nasplat.run.progress import progress_bar
from nasplat.run.result import SearchResult, best_trial
from nasplat.run.study import StudyRun

log = logging.getLogger("nasplat")


def restore(run: StudyRun) -> dict[str, Any] | None:
    """Mark the trials an earlier session left RUNNING INTERRUPTED (not counted; evaluated
    again), sparing those of live processes sharing the study, and restore the strategy from
    the last checkpoint, which is returned (None when there is none)."""
    interrupted = run.store.interrupt_orphans(run.study.id, mine=True)
    if interrupted:
        log.info("marked %d trial(s) left RUNNING INTERRUPTED", interrupted)
    checkpoint = run.store.load_checkpoint(run.study.id)
    if checkpoint is None:
        return None
    run.strategy.load_state_dict(checkpoint["strategy"])
    log.info("restored %s state from the store", run.config.strategy)
    return checkpoint


def run_black_box(run: StudyRun, progress: bool = True) -> SearchResult:
    """Ask the strategy for architectures until the study has ``config.budget`` finished
    untagged trials (or the time limit passes). Other processes may run the same study at the
    same time: trials are claimed under the budget, so together they run exactly the budget."""
    checkpoint = restore(run) if run.resume else None
    # the asks in flight at the checkpoint are evaluated again, so the strategy hears of each
    pending = [Genotype.from_dict(g) for g in (checkpoint or {}).get("pending", [])]
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
            resumed=checkpoint,
            limit=run.config.budget,
            precheck=run.evaluator.precheck,
        )
        total = run.config.budget
        with progress_bar(progress, total=total, completed=already, label=run.study.name) as bar:
            loop = TrialLoop(context).run(bar)
    finally:
        run.executor.close()
    return SearchResult(run.study, loop.finished, best_trial(run.store, run.study))
