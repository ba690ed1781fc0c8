"""The ``ladder`` evaluator: a fidelity ladder with successive-halving promotion.

Rungs run from cheapest to dearest (default: zero-cost proxy -> low-fidelity training -> full
training). The search's strategy proposes ``--budget`` distinct architectures for rung 0 and
learns from their rung-0 scores; the top ``1/eta`` of each rung (at least one) climb to the
next. Every rung's result is its own trial row, linked to the same architecture row, with the
rung's own budget, metrics ``rung`` and ``rung_score`` and tag ``rung<i>``; only the last
rung's trials are untagged and carry a trial ``value`` (the study objective), so ``best`` and
strategies never compare a proxy score or a low-fidelity accuracy with a full-fidelity one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nasplat.budget import Budget, EvalResult
from nasplat.config import default_minimized
from nasplat.errors import ConfigError, InvalidGenotypeError, StorageError
from nasplat.evaluator import (
    Evaluator,
    Pruner,
    Reporter,
    pop_common_options,
    reject_unknown_options,
)
from nasplat.genotype import Genotype
from nasplat.registry import EVALUATORS
from nasplat.space import SearchSpace

log = logging.getLogger("nasplat")
DEFAULT_RUNGS: tuple[dict[str, Any], ...] = (
    {"evaluator": "proxy"},  # synflow unless --proxy names another
    {"evaluator": "low-fidelity", "epochs": 1, "data_fraction": 0.5},
    {"evaluator": "train"},
)
MAX_ASKS_PER_CANDIDATE = 50


def parse_rungs(value: Any) -> list[dict[str, Any]]:
    """Rungs from a list of names or ``{"evaluator": name, **options}`` dicts, or a comma list."""
    if value is None:
        return [dict(r) for r in DEFAULT_RUNGS]
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    rungs = []
    for item in items:
        spec = {"evaluator": item.strip()} if isinstance(item, str) else dict(item)
        if not isinstance(spec.get("evaluator"), str):
            raise ConfigError(f"each rung needs an evaluator name, got {item!r}")
        if spec["evaluator"] == "ladder":
            raise ConfigError("a ladder rung cannot be a ladder")
        rungs.append(spec)
    if len(rungs) < 2:
        raise ConfigError(f"a ladder needs at least 2 rungs, got {len(rungs)}")
    return rungs


@dataclass(frozen=True)
class Rung:
    """One rung: its evaluator (name, options, instance), budget and objective."""

    index: int
    evaluator: str
    options: dict[str, Any]
    instance: Evaluator
    budget: Budget
    objective: str
    direction: str


@EVALUATORS.register(
    "ladder", description="fidelity ladder: proxy -> low fidelity -> full, SH promotion"
)
class LadderEvaluator(Evaluator):
    """Successive halving across evaluators. Options: ``rungs`` (see :func:`parse_rungs`),
    ``eta`` (3), ``proxy`` (the proxy of proxy rungs that name none), ``epochs`` (the last
    rung's, if it names none), ``constraints`` (given to every rung). Budget flags
    (``--data-fraction`` ...) apply to the last rung; lower rungs take their own options.
    ``--budget`` is the number of architectures entering rung 0. Used as a plain evaluator
    (``evaluate``), it is its last rung.
    """

    name = "ladder"

    def __init__(
        self,
        space: SearchSpace,
        *,
        rungs: Any = None,
        eta: int = 3,
        proxy: str | None = None,
        epochs: int | None = None,
        constraints: Any = None,
        **options: Any,
    ) -> None:
        common = pop_common_options(options)
        reject_unknown_options(self.name, options, "rungs, eta, proxy, epochs, constraints")
        if int(eta) < 2:
            raise ConfigError(f"eta must be >= 2, got {eta}")
        specs = parse_rungs(rungs)
        super().__init__(space, **common, rungs=specs, eta=int(eta))
        self.eta = int(eta)
        self.common = common
        self.specs = []
        for i, spec in enumerate(specs):
            spec = dict(spec)
            if spec["evaluator"] == "proxy" and proxy is not None:
                spec.setdefault("proxy", proxy)
            if i == len(specs) - 1 and epochs is not None:
                spec.setdefault("epochs", epochs)
            if constraints:
                spec.setdefault("constraints", constraints)
            self.specs.append(spec)
        self.instances = [self._build(spec) for spec in self.specs]

    def _build(self, spec: dict[str, Any]) -> Evaluator:
        options = {k: v for k, v in spec.items() if k != "evaluator"}
        return EVALUATORS.get(spec["evaluator"])(self.space, **self.common, **options)

    # --- as a plain evaluator: the last rung ---------------------------------------------------
    @property
    def last(self) -> Evaluator:
        return self.instances[-1]

    def resolve_budget(self, budget: Budget | None) -> Budget:
        return self.last.resolve_budget(budget)

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        return self.last.evaluate(genotype, budget, reporter)

    def pruner(self) -> Pruner | None:
        return self.last.pruner()

    def metric_names(self) -> list[str]:
        return self.last.metric_names()

    # --- the ladder ----------------------------------------------------------------------------
    def rungs(self, objective: str, direction: str, base: Budget) -> list[Rung]:
        """The rungs with their budgets and the objective each one ranks by."""
        out = []
        for i, (spec, instance) in enumerate(zip(self.specs, self.instances, strict=True)):
            names = instance.metric_names()
            if objective in names or not names:
                metric, way = objective, direction
            else:
                metric = names[0]
                way = "minimize" if default_minimized(metric) else "maximize"
            budget = instance.resolve_budget(base if i == len(self.specs) - 1 else Budget())
            options = {k: v for k, v in spec.items() if k != "evaluator"}
            out.append(Rung(i, spec["evaluator"], options, instance, budget, metric, way))
        return out

    def run_search(self, search: Any, progress: bool = True) -> Any:
        """Drive the whole ladder (called by :meth:`nasplat.search.Search.run`)."""
        return _LadderRun(self, search).run(progress)


def plan(n0: int, eta: int, rungs: int) -> list[int]:
    """Architectures per rung: ``n0``, then ``max(1, n // eta)`` at each promotion."""
    sizes = [n0]
    for _ in range(rungs - 1):
        sizes.append(max(1, sizes[-1] // eta) if sizes[-1] else 0)
    return sizes


class _LadderRun:
    """One pass of the ladder over a study."""

    def __init__(self, ladder: LadderEvaluator, search: Any) -> None:
        self.ladder = ladder
        self.search = search
        self.store = search.store
        self.study = search.study
        self.config = search.config
        self.rungs = ladder.rungs(
            self.study.objective, self.study.direction, self.config.trial_budget()
        )
        self.finished = 0

    def run(self, progress: bool) -> Any:
        from nasplat.progress import progress_bar
        from nasplat.search import SearchResult

        if self.search.resume:
            self.store.interrupt_running(self.study.id)
        sizes = plan(self.config.budget, self.ladder.eta, len(self.rungs))
        with progress_bar(progress, total=sum(sizes), label=self.study.name) as bar:
            self.bar = bar
            scores = self.run_rung(self.rungs[0], None, sizes[0])
            for rung, size in zip(self.rungs[1:], sizes[1:], strict=True):
                previous = self.rungs[rung.index - 1]
                climbers = self.top(scores, previous, size)
                log.info(
                    "rung %d (%s): %d architecture(s) promoted",
                    rung.index,
                    rung.evaluator,
                    len(climbers),
                )
                scores = self.run_rung(rung, climbers, size)
        try:
            best = self.store.best_trial(self.study.id)
        except StorageError:
            best = None
        return SearchResult(self.study, self.finished, best)

    @staticmethod
    def top(scores: dict[str, tuple[Genotype, float]], rung: Rung, size: int) -> list[Genotype]:
        sign = 1.0 if rung.direction == "maximize" else -1.0
        ranked = sorted(scores.values(), key=lambda item: -sign * item[1])
        return [genotype for genotype, _ in ranked[:size]]

    def run_rung(
        self, rung: Rung, given: Sequence[Genotype] | None, size: int
    ) -> dict[str, tuple[Genotype, float]]:
        """Evaluate ``given`` (or ``size`` strategy proposals) at ``rung``; sha -> (genotype,
        score) of its COMPLETE trials."""
        from nasplat.executor import ExecutionContext, TrialTask
        from nasplat.registry import EXECUTORS

        context = ExecutionContext(
            storage_url=self.store.url,
            study_id=self.study.id,
            space=self.config.space,
            space_options=self.config.space_options,
            evaluator=rung.evaluator,
            evaluator_options={**self.ladder.common, **rung.options},
            objective=rung.objective,
        )
        executor = EXECUTORS.get(self.config.executor)(**self.config.executor_options)
        executor.open(context, self.store)
        scores: dict[str, tuple[Genotype, float]] = {}
        pending = list(given or [])
        in_flight: dict[int, tuple[Genotype, Genotype]] = {}
        seen: set[str] = set()
        asks = 0
        try:
            while True:
                while len(in_flight) < executor.capacity and len(seen) < size:
                    proposal = self.next_candidate(pending, given is None)
                    asks += 1
                    if proposal is None or asks > size * MAX_ASKS_PER_CANDIDATE:
                        size = len(seen)  # the strategy ran dry or repeats itself
                        break
                    genotype, canonical = proposal
                    if canonical.sha in seen:  # a repeat: tell what is known of it
                        known = scores.get(canonical.sha)
                        self.tell(
                            rung, genotype, known and known[1], "COMPLETE" if known else "FAILED"
                        )
                        continue
                    seen.add(canonical.sha)
                    cached = self.store.find_evaluated(self.study.id, canonical, rung.budget)
                    if cached is not None:
                        self.record(
                            rung,
                            scores,
                            genotype,
                            canonical,
                            cached.metrics.get("rung_score"),
                            cached.state,
                        )
                        continue
                    tag = None if rung.index == len(self.rungs) - 1 else f"rung{rung.index}"
                    trial = self.store.create_trial(self.study.id, canonical, rung.budget, tag=tag)
                    in_flight[trial.id] = (genotype, canonical)
                    executor.submit(TrialTask(trial.id, trial.number, canonical, rung.budget))
                if not in_flight:
                    break
                for outcome in executor.wait():
                    genotype, canonical = in_flight.pop(outcome.trial_id)
                    self.finish(rung, outcome)
                    self.record(rung, scores, genotype, canonical, outcome.value, outcome.state)
        finally:
            executor.close()
        return scores

    def next_candidate(
        self, pending: list[Genotype], ask: bool
    ) -> tuple[Genotype, Genotype] | None:
        """The next (genotype, canonical) pair: promoted ones in order, or a strategy proposal."""
        space = self.search.space
        while True:
            if not ask:
                if not pending:
                    return None
                promoted = pending.pop(0)
                return promoted, promoted
            genotype = self.search.strategy.ask()
            try:
                space.validate(genotype)
            except InvalidGenotypeError as exc:
                log.warning("strategy proposed an invalid genotype (%s); told as FAILED", exc)
                self.search.strategy.tell(_observation(genotype, None, "FAILED"))
                continue
            return genotype, space.canonicalize(genotype)

    def finish(self, rung: Rung, outcome: Any) -> None:
        last = rung.index == len(self.rungs) - 1
        metrics = {**outcome.metrics, "rung": float(rung.index)}
        if outcome.value is not None and outcome.state == "COMPLETE":
            metrics["rung_score"] = outcome.value
        self.store.finish_trial(
            outcome.trial_id,
            state=outcome.state,
            value=outcome.value if last else None,
            metrics=metrics,
            error=outcome.error,
            weights=outcome.weights if last else None,
            keep_weights=self.config.keep_weights,
            worker=outcome.worker,
        )
        self.finished += 1
        self.bar.advance(f"rung {rung.index}")

    def record(
        self,
        rung: Rung,
        scores: dict[str, tuple[Genotype, float]],
        genotype: Genotype,
        canonical: Genotype,
        value: float | None,
        state: str,
    ) -> None:
        if state == "COMPLETE" and value is not None and math.isfinite(value):
            scores[canonical.sha] = (canonical, value)
        self.tell(rung, genotype, value, state)

    def tell(self, rung: Rung, genotype: Genotype, value: float | None, state: str) -> None:
        """Tell the strategy a rung-0 result, oriented to the study's direction."""
        if rung.index != 0:
            return
        if value is not None and rung.direction != self.study.direction:
            value = -value
        self.search.strategy.tell(_observation(genotype, value, state))


def _observation(genotype: Genotype, value: float | None, state: str) -> Any:
    from nasplat.strategy import Observation

    return Observation(genotype, value if state == "COMPLETE" else None, state)
