"""The fidelity-ladder driver: successive halving across evaluators, on the one trial loop.

The strategy proposes ``--budget`` distinct architectures for rung 0 and learns from their
rung-0 scores; the top ``1/eta`` of each rung (at least one) climb to the next. Every rung's
result is its own trial row with the rung's budget, metrics ``rung`` and ``rung_score`` and tag
``rung<i>``; only the last rung's trials are untagged and carry a trial value (the study
objective), so ``best`` and strategies never compare a lower rung's score with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nasplat.direction import Direction
from nasplat.evaluator import FidelityLadder, Rung
from nasplat.genotype import Genotype
from nasplat.registry import EXECUTORS
from nasplat.run.loop import FixedProposals, LoopContext, Proposer, TrialLoop
from nasplat.run.progress import progress_bar
from nasplat.run.result import SearchResult, best_trial
from nasplat.run.study import StudyRun
from nasplat.strategy import Observation

log = logging.getLogger("nasplat")
SCORE_METRIC = "rung_score"


def plan(n0: int, eta: int, rungs: int) -> list[int]:
    """Architectures per rung: ``n0``, then ``max(1, n // eta)`` at each promotion."""
    sizes = [n0]
    for _ in range(rungs - 1):
        sizes.append(max(1, sizes[-1] // eta) if sizes[-1] else 0)
    return sizes


class OrientedProposer:
    """The study's strategy seen from a rung that ranks the other way round: values are
    negated on their way to the strategy, so it always learns in the study's direction."""

    def __init__(self, strategy: Any, flip: bool) -> None:
        self.strategy = strategy
        self.flip = flip

    def ask(self) -> Genotype:
        return self.strategy.ask()

    def tell(self, observation: Observation) -> None:
        value = observation.value if observation.state == "COMPLETE" else None
        if value is not None and self.flip:
            value = -value
        self.strategy.tell(Observation(observation.genotype, value, observation.state))

    def state_dict(self) -> dict[str, Any]:
        return self.strategy.state_dict()

    def avoid(self, seen: Callable[[Genotype], bool]) -> None:
        self.strategy.avoid(seen)


def top(
    scores: dict[str, tuple[Genotype, float]], direction: Direction, size: int
) -> list[Genotype]:
    ranked = sorted(scores.values(), key=lambda item: -direction.oriented(item[1]))
    return [genotype for genotype, _ in ranked[:size]]


def run_ladder(run: StudyRun, ladder: FidelityLadder, progress: bool = True) -> SearchResult:
    """Run every rung of the ladder over the study (see the module doc)."""
    if run.resume:
        run.store.interrupt_running(run.study.id)
    sizes = plan(run.config.budget, ladder.eta, len(ladder.rungs))
    finished = 0
    with progress_bar(progress, total=sum(sizes), label=run.study.name) as bar:
        climbers: list[Genotype] | None = None
        for rung, size, promoted in zip(ladder.rungs, sizes, [*sizes[1:], 0], strict=True):
            if climbers is not None:
                log.info(
                    "rung %d (%s): %d architecture(s) promoted",
                    rung.index,
                    rung.evaluator,
                    len(climbers),
                )
            last = rung.index == len(ladder.rungs) - 1
            loop = _run_rung(run, rung, climbers, size, last, bar)
            finished += loop.finished
            climbers = top(loop.scores(), rung.direction, promoted)
    return SearchResult(run.study, finished, best_trial(run.store, run.study))


def _run_rung(
    run: StudyRun, rung: Rung, given: list[Genotype] | None, size: int, last: bool, bar: Any
) -> TrialLoop:
    proposer: Proposer
    if given is None:
        proposer = OrientedProposer(run.strategy, rung.direction != run.study.direction)
    else:
        proposer = FixedProposals(given)
    executor = EXECUTORS.create(run.config.executor, **run.config.executor_options)
    executor.open(run.execution_context(rung), run.store)
    try:
        context = LoopContext(
            store=run.store,
            study=run.study,
            space=run.space,
            proposer=proposer,
            executor=executor,
            budget=rung.budget,
            target=size,
            keep_weights=run.config.keep_weights,
            checkpoints=False,
            tag=None if last else f"rung{rung.index}",
            score_metric=SCORE_METRIC,
            store_value=last,
            extra_metrics={"rung": float(rung.index)},
            count_cached=True,
            precheck=rung.instance.precheck if given is None else None,
        )
        return TrialLoop(context).run(_RungBar(bar, rung.index))
    finally:
        executor.close()


class _RungBar:
    def __init__(self, bar: Any, index: int) -> None:
        self.bar, self.index = bar, index

    def advance(self, text: str = "") -> None:
        self.bar.advance(f"rung {self.index}")
