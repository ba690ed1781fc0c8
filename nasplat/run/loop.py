"""The trial loop: ask -> validate -> canonicalise -> skip what is known -> evaluate -> store ->
tell. Every driver (black-box search, each ladder rung, ``nasplat bench``, ``proxy-check``) runs
this one loop over an explicit :class:`LoopContext`.

An architecture already evaluated in the study at the same budget is not evaluated again: the
proposer is told the stored result and no trial is spent. One being evaluated right now, here or
by another process sharing the study, is told the result when it arrives. Claiming a trial is
one atomic store step (:meth:`TrialStore.claim_trial`), so processes that share a study never
evaluate one architecture twice and, with ``limit``, never together exceed the budget. The proposer is told which architectures the study has
(``avoid``), so a strategy proposes new ones without asking the store.

Constraints are checked before a trial is created (``precheck``, the evaluator's): an
architecture that breaks one gets no trial and costs no budget; the proposer is told it is
INFEASIBLE and it counts as seen. ``MAX_CONSECUTIVE_INFEASIBLE`` rejections in a row stop the
pass: with an :class:`InfeasibleError` when the study has no architecture yet (the constraints
admit none the strategy can find), else with a warning. A multi-objective study's trials get
the hypervolume of the front so far (:mod:`nasplat.run.front`).

Every step costs the same whatever the study's size: the best value so far is kept here, the
architectures seen are a set in memory, and the strategy checkpoint (written with a trial's
result) is taken every trial early on and then every ``n // CHECKPOINT_SPREAD`` trials. A resume
restores the last checkpoint and *replays* the trials finished after it: the restored strategy
asks the same architectures again and is told their stored results, exactly as the first time,
without a new trial.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from nasplat.budget import Budget
from nasplat.errors import InfeasibleError, InvalidGenotypeError, StorageError
from nasplat.executor import Executor, TrialOutcome, TrialTask
from nasplat.genotype import Genotype
from nasplat.pareto import HYPERVOLUME
from nasplat.run.front import HypervolumeRecorder
from nasplat.run.heartbeat import heartbeat
from nasplat.space import SearchSpace
from nasplat.store import (
    EVALUATED,
    FINISHED,
    FULL,
    INTERRUPTED,
    RUNNING_ELSEWHERE,
    StudyRecord,
    TrialRecord,
    TrialStore,
)
from nasplat.store.owners import current_owner
from nasplat.strategy import INFEASIBLE, Observation

log = logging.getLogger("nasplat")
INTERRUPTED_PREFIX = "interrupted"  # the error text of an interrupted trial (FAILED in old stores)
MAX_CONSECUTIVE_DUPLICATES = 1000
CANONICAL_CACHE = 100_000
"""Canonical forms remembered by a loop (the memo is cleared when it reaches this size)."""
MAX_CONSECUTIVE_INFEASIBLE = 1000
"""Proposals in a row that break the constraints before the loop stops asking."""
POLL_SECONDS = 0.5
"""How often the trials another process is evaluating for this one are looked up."""
CHECKPOINT_SPREAD = 20
"""A checkpoint at least every ``max(1, trials // CHECKPOINT_SPREAD)`` trials: the checkpoint's
cost per trial stays bounded when the strategy's state grows with the study (TPE's history)."""


class Proposer(Protocol):
    """Where the loop's genotypes come from: a strategy, or a fixed list (a ladder's climbers).
    ``ask`` returns None when it has nothing more to propose."""

    def ask(self) -> Genotype | None: ...
    def tell(self, observation: Observation) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def avoid(self, seen: Callable[[Genotype], bool]) -> None: ...


class FixedProposals:
    """Proposes the given genotypes in order, then nothing; learns nothing."""

    def __init__(self, genotypes: list[Genotype]) -> None:
        self._left = list(genotypes)

    def ask(self) -> Genotype | None:
        return self._left.pop(0) if self._left else None

    def tell(self, observation: Observation) -> None:
        """Nothing to learn."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def avoid(self, seen: Callable[[Genotype], bool]) -> None:
        """The list is fixed."""


class Bar(Protocol):
    def advance(self, text: str = "") -> None: ...


class _NoBar:
    def advance(self, text: str = "") -> None:
        """No progress display."""


@dataclass
class LoopContext:
    """Everything one pass of the loop reads; nothing else is reached through it.

    ``target``: stop asking once ``already`` plus this pass's finished and in-flight trials
    reach it. ``score_metric``: also store the objective under this metric name;
    ``store_value=False`` keeps it out of the trial's value (a lower ladder rung, whose score
    must never be compared with the study's objective). ``count_cached``: an architecture found
    already evaluated counts towards ``target`` (a rung of a fixed size). ``resumed``: the
    checkpoint the proposer was restored from (its trials after it are replayed).
    ``limit``: the most trials with ``tag`` the *study* may hold, RUNNING ones included, whoever
    runs them (processes sharing the study): each trial is claimed under it.
    ``precheck(canonical, budget)``: why an architecture must not get a trial (a constraint it
    breaks), or None (``Evaluator.precheck``).
    """

    store: TrialStore
    study: StudyRecord
    space: SearchSpace
    proposer: Proposer
    executor: Executor
    budget: Budget
    target: int
    already: int = 0
    time_limit: float | None = None
    keep_weights: str = "best"
    pending: list[Genotype] = field(default_factory=list)
    checkpoints: bool = True
    tag: str | None = None
    score_metric: str | None = None
    store_value: bool = True
    extra_metrics: Mapping[str, float] = field(default_factory=dict)
    count_cached: bool = False
    resumed: Mapping[str, Any] | None = None
    limit: int | None = None
    precheck: Callable[[Genotype, Budget], str | None] | None = None


class TrialLoop:
    """One pass of the loop over a context. ``results`` maps each architecture's hash to
    ``(canonical genotype, value, state)`` for everything this pass evaluated or found."""

    def __init__(self, context: LoopContext) -> None:
        self.ctx = context
        self.in_flight: dict[int, tuple[TrialTask, Genotype]] = {}
        self.waiting_duplicates: dict[str, list[Genotype]] = {}
        self.results: dict[str, tuple[Genotype, float | None, str]] = {}
        self.finished = 0
        self.cached = 0
        self.duplicates_in_a_row = 0
        self.exhausted = False
        self.best: float | None = None
        self.deadline: float | None = None
        self.known: set[str] = set()  # canonical hashes of the study's trials at this budget
        self.replay: dict[str, TrialRecord] = {}  # finished after the restored checkpoint
        self.next_number = 0  # the number after every trial known here
        self.unsaved = 0  # trials finished since the last checkpoint
        self.checkpoints_written = 0
        self.finishing: int | None = None  # the trial whose outcome is being stored
        # trials another process is evaluating, asked here too: id -> (canonical, asked)
        self.elsewhere: dict[int, tuple[Genotype, list[Genotype]]] = {}
        self.polled = 0.0
        self.full = False  # the study reached its limit
        self.owner = current_owner()
        self.canonical_forms: dict[Genotype, Genotype] = {}
        self.infeasible: dict[str, str] = {}  # canonical hash -> the constraint it breaks
        self.infeasible_in_a_row = 0
        self.rejected = 0  # proposals found infeasible (no trial)
        self.front: HypervolumeRecorder | None = None  # multi-objective studies

    def run(self, bar: Bar | None = None) -> TrialLoop:
        bar = bar or _NoBar()
        self.best = _stored_best(self.ctx) if self.ctx.store_value else None
        self._load_known()
        if self.ctx.store_value and len(self.ctx.study.objectives) > 1:
            self.front = HypervolumeRecorder(self.ctx.store, self.ctx.study)
        self.ctx.proposer.avoid(self._seen)
        if self.ctx.time_limit:
            self.deadline = time.monotonic() + self.ctx.time_limit
        shared = self.ctx.limit is not None
        try:
            with heartbeat(self.ctx.store, self.owner) if shared else nullcontext():
                self._steps(bar)
        except BaseException:  # a signal, Ctrl+C, a lost executor: nothing in flight will end
            self._interrupt_in_flight()
            raise
        if self.ctx.checkpoints and self.unsaved:
            self.ctx.store.save_checkpoint(self.ctx.study.id, self._checkpoint())
        if self.rejected:
            log.info("%d infeasible proposal(s) rejected without a trial", self.rejected)
        return self

    def _steps(self, bar: Bar) -> None:
        while True:
            while self._may_ask():
                pending = self.ctx.pending
                self._ask_one(pending.pop(0) if pending else None)
            if not self.in_flight and not self.elsewhere:
                break
            if self.in_flight:
                for outcome in self.ctx.executor.wait():
                    self._finish(outcome)
                    bar.advance(self._best_text())
            else:
                time.sleep(POLL_SECONDS)
            self._poll_elsewhere()

    def _poll_elsewhere(self) -> None:
        """Tell the proposer what other processes finished for it; take back the evaluations
        whose process died (their architectures are asked again here)."""
        now = time.monotonic()
        if not self.elsewhere or now - self.polled < POLL_SECONDS:
            return
        self.polled = now
        store, study_id = self.ctx.store, self.ctx.study.id
        store.interrupt_orphans(study_id, list(self.elsewhere))
        for trial_id, (canonical, asked) in list(self.elsewhere.items()):
            trial = store.get_trial(trial_id)
            if trial.state == "RUNNING":
                continue
            del self.elsewhere[trial_id]
            if trial.state == INTERRUPTED:
                self.known.discard(canonical.sha)
                self.ctx.pending.extend(asked)
                continue
            for genotype in asked:
                self._tell_cached(genotype, canonical, trial)

    def _interrupt_in_flight(self) -> None:
        """Mark the trials this pass started and did not finish INTERRUPTED (not counted; their
        architectures are evaluated again on resume). Best effort: the store may be the very
        thing that failed, and a resume marks whatever is left RUNNING."""
        ids = [*self.in_flight, *([self.finishing] if self.finishing is not None else [])]
        if not ids:
            return
        try:
            marked = self.ctx.store.interrupt_running(self.ctx.study.id, trial_ids=ids)
        except Exception as exc:  # noqa: BLE001 - already unwinding from the first error
            log.warning("could not mark the trials in flight interrupted: %s", exc)
            return
        if marked:
            log.info("marked %d trial(s) in flight INTERRUPTED", marked)

    def _load_known(self) -> None:
        """The architectures the study has, less those to replay (finished after the restored
        checkpoint and not interrupted: the proposer has not heard of them yet)."""
        ctx = self.ctx
        index = ctx.store.trial_index(ctx.study.id, ctx.budget)
        self.next_number = index[-1][0] + 1 if index else 0
        resumed = ctx.resumed or {}
        mark = resumed.get("next_number")
        self.infeasible = dict(resumed.get("infeasible", {}))
        # an interrupted trial's architecture was never evaluated: the proposer may ask it again
        index = [(n, arch, state) for n, arch, state in index if state != INTERRUPTED]
        if mark is None:  # a fresh study, or a checkpoint from before replays
            self.known = {arch for _, arch, _ in index}
            return
        again = set(resumed.get("replay", ()))
        self.known = {arch for n, arch, _ in index if n < mark and n not in again}
        first = min([mark, *again])
        for trial in ctx.store.trials(ctx.study.id, since=first):
            replayable = trial.number >= mark or trial.number in again
            interrupted = (trial.error or "").startswith(INTERRUPTED_PREFIX)
            if replayable and trial.state in FINISHED and not interrupted:
                if trial.tag == ctx.tag and Budget.from_dict(trial.budget) == ctx.budget:
                    self.replay.setdefault(trial.arch_hash, trial)

    def _canonical(self, genotype: Genotype) -> Genotype:
        """The space's canonical form, remembered (strategies ask the same genotypes again)."""
        canonical = self.canonical_forms.get(genotype)
        if canonical is None:
            if len(self.canonical_forms) >= CANONICAL_CACHE:
                self.canonical_forms.clear()
            canonical = self.canonical_forms[genotype] = self.ctx.space.canonicalize(genotype)
        return canonical

    def _seen(self, genotype: Genotype) -> bool:
        try:
            sha = self._canonical(genotype).sha
        except InvalidGenotypeError:
            return False  # the loop reports it
        return sha in self.known or sha in self.infeasible

    # --- asking ---------------------------------------------------------------------------------
    def _used(self) -> int:
        counted = self.finished + len(self.in_flight)
        return self.ctx.already + counted + (self.cached if self.ctx.count_cached else 0)

    def _may_ask(self) -> bool:
        if self.exhausted or self.full or len(self.in_flight) >= self.ctx.executor.capacity:
            return False
        if self._used() >= self.ctx.target:
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            if not self.in_flight:
                log.info("time limit reached")
            return False
        return self.duplicates_in_a_row < MAX_CONSECUTIVE_DUPLICATES

    def _ask_one(self, genotype: Genotype | None) -> None:
        ctx = self.ctx
        genotype = genotype if genotype is not None else ctx.proposer.ask()
        if genotype is None:
            self.exhausted = True
            return
        try:
            ctx.space.validate(genotype)
        except InvalidGenotypeError as exc:
            log.warning("strategy proposed an invalid genotype (%s); told as FAILED", exc)
            ctx.proposer.tell(Observation(genotype, None, "FAILED"))
            self._note_duplicate()
            return
        canonical = self._canonical(genotype)
        if canonical.sha in self.waiting_duplicates:
            log.info("skipping architecture %s: already being evaluated", canonical.sha[:10])
            self.waiting_duplicates[canonical.sha].append(genotype)
            self._note_duplicate()
            return
        if ctx.count_cached and canonical.sha in self.results:  # a rung sees each arch once
            _, value, state = self.results[canonical.sha]
            ctx.proposer.tell(Observation(genotype, value, state, cached=True))
            self._note_duplicate()
            return
        replayed = self.replay.pop(canonical.sha, None)
        if replayed is not None:  # told as when it finished, before the interruption
            self.known.add(canonical.sha)
            ctx.proposer.tell(
                Observation(
                    genotype, replayed.value, replayed.state, replayed.number, replayed.metrics
                )
            )
            self._record(canonical, replayed.value, replayed.state)
            return
        if self._infeasible(genotype, canonical):
            return
        claim = ctx.store.claim_trial(
            ctx.study.id, canonical, ctx.budget, tag=ctx.tag, limit=ctx.limit, owner=self.owner
        )
        trial = claim.trial
        if claim.status == FULL:
            log.info("the study has its %d trials (other processes share it)", ctx.limit)
            self.full = True
            ctx.pending.insert(0, genotype)  # asked, never told: evaluated again on resume
            return
        self.known.add(canonical.sha)
        if claim.status == EVALUATED:
            self._tell_cached(genotype, canonical, trial)
            return
        if claim.status == RUNNING_ELSEWHERE:
            log.info("architecture %s is being evaluated by another process", canonical.sha[:10])
            self.elsewhere.setdefault(trial.id, (canonical, []))[1].append(genotype)
            self._note_duplicate()
            return
        self.duplicates_in_a_row = 0
        self.next_number = max(self.next_number, trial.number + 1)
        task = TrialTask(trial.id, trial.number, canonical, ctx.budget)
        self.in_flight[trial.id] = (task, genotype)
        self.waiting_duplicates[canonical.sha] = []
        ctx.executor.submit(task)

    def _infeasible(self, genotype: Genotype, canonical: Genotype) -> bool:
        """Whether the architecture breaks a constraint (``precheck``; architectures the study
        has are not checked again): then the proposer is told INFEASIBLE and no trial exists."""
        ctx = self.ctx
        if ctx.precheck is None or canonical.sha in self.known:
            self.infeasible_in_a_row = 0
            return False
        reason = self.infeasible.get(canonical.sha)
        if reason is None:
            try:
                reason = ctx.precheck(canonical, ctx.budget)
            except Exception as exc:  # noqa: BLE001 - the trial will fail and say why
                log.debug("precheck of %s failed (%s); evaluating it", canonical.sha[:10], exc)
                reason = None
            if reason is None:
                self.infeasible_in_a_row = 0
                return False
            self.infeasible[canonical.sha] = reason
        log.debug("architecture %s is infeasible, no trial: %s", canonical.sha[:10], reason)
        ctx.proposer.tell(Observation(genotype, None, INFEASIBLE))
        self.rejected += 1
        self.infeasible_in_a_row += 1
        if self.infeasible_in_a_row >= MAX_CONSECUTIVE_INFEASIBLE:
            self._stop_infeasible(reason)
        return True

    def _stop_infeasible(self, reason: str) -> None:
        message = (
            f"{MAX_CONSECUTIVE_INFEASIBLE} proposals in a row broke the constraints "
            f"(last: {reason})"
        )
        if not self.known and not self.in_flight and not self.elsewhere:
            raise InfeasibleError(
                f"no architecture found that satisfies the constraints: {message}"
            )
        log.warning("%s; stopping", message)
        self.exhausted = True

    def _tell_cached(self, genotype: Genotype, canonical: Genotype, cached: TrialRecord) -> None:
        log.info(
            "skipping architecture %s: already evaluated as trial %d",
            canonical.sha[:10],
            cached.number,
        )
        metric = self.ctx.score_metric
        value = cached.metrics.get(metric) if metric and not self.ctx.store_value else cached.value
        self.ctx.proposer.tell(
            Observation(genotype, value, cached.state, cached.number, cached.metrics, cached=True)
        )
        self._record(canonical, value, cached.state)
        if self.ctx.count_cached:
            self.cached += 1
        else:
            self._note_duplicate()

    def _note_duplicate(self) -> None:
        self.duplicates_in_a_row += 1
        if self.duplicates_in_a_row == MAX_CONSECUTIVE_DUPLICATES:
            log.warning(
                "the strategy proposed %d evaluated architectures in a row; stopping "
                "(space exhausted?)",
                MAX_CONSECUTIVE_DUPLICATES,
            )

    # --- finishing ------------------------------------------------------------------------------
    def _finish(self, outcome: TrialOutcome) -> None:
        ctx = self.ctx
        self.finishing = outcome.trial_id
        task, genotype = self.in_flight.pop(outcome.trial_id)
        value, state = outcome.value, outcome.state
        ctx.proposer.tell(Observation(genotype, value, state, task.number, outcome.metrics))
        for duplicate in self.waiting_duplicates.pop(task.genotype.sha, []):
            ctx.proposer.tell(
                Observation(duplicate, value, state, task.number, outcome.metrics, cached=True)
            )
        self._record(task.genotype, value, state)
        metrics = {**outcome.metrics, **ctx.extra_metrics}
        if ctx.score_metric and state == "COMPLETE" and value is not None:
            metrics[ctx.score_metric] = value
        if self.front is not None:
            metrics[HYPERVOLUME] = self.front.record(state, metrics)
        self.unsaved += 1
        checkpoint = self._checkpoint() if ctx.checkpoints and self._checkpoint_due() else None
        ctx.store.finish_trial(
            outcome.trial_id,
            state=state,
            value=value if ctx.store_value else None,
            metrics=metrics,
            error=outcome.error,
            weights=outcome.weights if ctx.store_value else None,
            keep_weights=ctx.keep_weights,
            checkpoint=checkpoint,
            worker=outcome.worker,
        )
        self.finishing = None
        self.finished += 1
        if checkpoint is not None:
            self.unsaved = 0
            self.checkpoints_written += 1
            if self.checkpoints_written % 10 == 0:
                ctx.store.prune_checkpoints(ctx.study.id)
        if state == "COMPLETE" and value is not None and ctx.store_value:
            if ctx.study.direction.better(value, self.best):
                self.best = value
        shown = "-" if value is None else f"{value:.4f}"
        message = f"trial {task.number}: {state} {ctx.study.objective}={shown}"
        if outcome.error and state == "FAILED":  # a warning: seen from Python with no handler
            log.warning(f"{message} ({outcome.error})")
        else:
            log.info(message)

    def _record(self, canonical: Genotype, value: float | None, state: str) -> None:
        self.results[canonical.sha] = (canonical, value, state)

    def scores(self) -> dict[str, tuple[Genotype, float]]:
        """The COMPLETE results with finite values: hash -> (canonical genotype, value)."""
        return {
            sha: (genotype, value)
            for sha, (genotype, value, state) in self.results.items()
            if state == "COMPLETE" and value is not None and math.isfinite(value)
        }

    def _checkpoint_due(self) -> bool:
        return self.unsaved >= max(1, (self.ctx.already + self.finished) // CHECKPOINT_SPREAD)

    def _checkpoint(self) -> dict[str, Any]:
        """The proposer's state, the asks still in flight (evaluated again on resume), where
        the trials it has not heard of start: ``next_number`` and the trials of an earlier replay
        still waiting (``replay``), and the infeasible architectures it was told of."""
        asked = [g for _, g in self.in_flight.values()]
        asked += [g for _, genotypes in self.elsewhere.values() for g in genotypes]
        pending = [g.to_dict() for g in [*asked, *self.ctx.pending]]
        checkpoint = {
            "strategy": self.ctx.proposer.state_dict(),
            "pending": pending,
            "next_number": self.next_number,
            "replay": sorted(t.number for t in self.replay.values()),
        }
        if self.infeasible:  # what the proposer was told breaks the constraints (seen)
            checkpoint["infeasible"] = dict(self.infeasible)
        return checkpoint

    def _best_text(self) -> str:
        if self.best is None:
            return ""
        text = f"best {self.ctx.study.objective}={self.best:.4f}"
        if self.front is not None:
            text += f" hypervolume={self.front.hypervolume:.4g}"
        return text


def _stored_best(ctx: LoopContext) -> float | None:
    try:
        return ctx.store.best_trial(ctx.study.id).value
    except StorageError:
        return None
