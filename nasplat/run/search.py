"""Running a study: validate and set it up, then run it with the driver it calls for."""

from __future__ import annotations

from nasplat.config import SearchConfig
from nasplat.run.blackbox import run_black_box
from nasplat.run.ladder import run_ladder
from nasplat.run.oneshot import run_one_shot
from nasplat.run.result import SearchResult
from nasplat.run.study import OpenLater, StudyRun, prepare
from nasplat.store import TrialStore


def run_search(
    config: SearchConfig,
    store: TrialStore | OpenLater,
    *,
    resume: bool = False,
    override: tuple[str, ...] = (),
    progress: bool = True,
) -> SearchResult:
    """Validate the config, create (or resume) its study, and run it to its budget. A resumed
    study keeps its stored budget unless ``override`` holds ``"budget"`` (``config.budget`` is
    then the new total)."""
    return drive(prepare(config, store, resume=resume, override=override), progress)


def drive(run: StudyRun, progress: bool = True) -> SearchResult:
    """Run a prepared study: one-shot strategies train a supernet, a fidelity-ladder evaluator
    runs its rungs, anything else is a black-box search."""
    if run.strategy.one_shot:
        return run_one_shot(run, progress)
    ladder = run.evaluator.ladder(run.study.objective, run.study.direction, run.budget)
    if ladder is not None:
        return run_ladder(run, ladder, progress)
    return run_black_box(run, progress)
