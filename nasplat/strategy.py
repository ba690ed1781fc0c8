"""The Strategy interface (black-box and one-shot)."""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nasplat.budget import Budget
from nasplat.direction import Direction
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.space import SearchSpace


@dataclass(frozen=True)
class Observation:
    """What a strategy is told about one evaluated genotype.

    ``value`` is the (primary) objective (None when the trial failed); ``state`` is COMPLETE,
    PRUNED, FAILED or INFEASIBLE (the genotype breaks the study's constraints: it was never
    evaluated, no trial exists and no budget was spent; not a result, but a place to stop
    proposing); ``metrics`` are the trial's metrics (every objective of a multi-objective
    study); ``cached`` is True when the architecture had already been evaluated in the study.
    """

    genotype: Genotype
    value: float | None
    state: str
    number: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    cached: bool = False


INFEASIBLE = "INFEASIBLE"
"""The state of an :class:`Observation` whose genotype breaks the study's constraints."""

UNIFORM_TRIES = 100
"""Uniform samples :meth:`Strategy.fresh` tries once the strategy's own draws keep hitting seen
architectures (cheap: a sample and a canonical form each)."""


class Strategy(ABC):
    """A search strategy.

    Rules:
    - Call order: any number of ``ask()`` calls, each followed eventually by one ``tell()`` of
      its observation, in any order (results may arrive out of order when trials run in
      parallel). ``tell`` of a FAILED observation must be accepted.
    - All randomness comes from ``self.rng`` (seeded in ``__init__``) or from generators whose
      state goes into ``state_dict``, so a run is deterministic for a seed.
    - ``state_dict()`` returns JSON-serialisable data; ``load_state_dict`` on a fresh instance
      built with the same arguments restores it exactly (used by ``--resume``).
    - Not thread safe: the search loop calls it from one thread.
    - The loop calls ``avoid(seen)`` before the first ``ask``; ``ask`` then proposes
      architectures the study has not seen (:meth:`fresh`), so no proposal is wasted on one
      already evaluated. Architectures found infeasible count as seen.
    - An INFEASIBLE observation is not a result: a strategy may learn to avoid the region, but
      never ranks it with evaluated genotypes.
    - A strategy with ``multi_objective = True`` gets ``objectives`` (every ``(metric,
      direction)`` of the study, the first being ``direction``'s) and reads each observation's
      values with :meth:`objective_values`; the others optimise the first objective.
    """

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[tuple[Option, ...] | None] = None
    """The keyword options (:mod:`nasplat.options`): what ``nasplat list options`` shows and
    the registry accepts; None: not declared, the constructor's signature is used."""
    one_shot: ClassVar[bool] = False
    takes_budget: ClassVar[bool] = False
    """True when ``__init__`` takes ``budget`` (the study's trial budget) to scale its defaults;
    the study set-up passes it only then, so older strategies need no change."""
    multi_objective: ClassVar[bool] = False
    """True when ``__init__`` takes ``objectives`` and the strategy searches for their Pareto
    front; the study set-up passes them only then."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        budget: int | None = None,
        objectives: Sequence[tuple[str, str | Direction]] | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise TypeError(f"unknown option(s) for strategy {self.name!r}: {', '.join(options)}")
        self.space = space
        self.seed = seed
        self.direction = Direction.parse(direction)  # ConfigError unless maximize or minimize
        self.objectives: tuple[tuple[str, Direction], ...] = tuple(
            (str(metric), Direction.parse(way)) for metric, way in objectives or ()
        )
        """Every objective of a multi-objective study (empty: the value alone)."""
        self.rng = random.Random(seed)
        self.budget = int(budget) if budget else None  # trials the study will run (None: unknown)
        self._seen: Callable[[Genotype], bool] = _nothing_seen

    def budget_scaled(self, default: int, per: int, least: int) -> int:
        """A size option's default: ``default``, or with a study budget ``budget // per`` when
        that is smaller, but at least ``least`` (short searches get proportionally smaller
        populations, start-up phases and batches)."""
        return default if self.budget is None else max(least, min(default, self.budget // per))

    def avoid(self, seen: Callable[[Genotype], bool]) -> None:
        """``seen(genotype)``: whether the study already has this architecture (canonically).
        Set by the loop before it asks; until then nothing counts as seen."""
        self._seen = seen

    def fresh(
        self,
        draw: Callable[[], Genotype],
        reject: Callable[[Genotype], None] | None = None,
        tries: int = 100,
    ) -> Genotype:
        """The first genotype of ``draw()`` the study has not seen; after ``tries`` seen draws,
        the first unseen of ``UNIFORM_TRIES`` uniform samples (a mutation whose neighbours are all
        evaluated, a collapsed controller). ``reject`` hears each seen draw (an engine that
        must close the ask). When every try was seen (the space is about exhausted) the last
        one is returned, and the loop skips it as a duplicate."""
        genotype = draw()
        for attempt in range(tries + UNIFORM_TRIES):
            if not self._seen(genotype):
                return genotype
            if attempt < tries:
                if reject is not None:
                    reject(genotype)
                genotype = draw() if attempt < tries - 1 else self.space.sample(self.rng)
            else:
                genotype = self.space.sample(self.rng)
        return genotype

    def score(self, value: float) -> float:
        """The value oriented so that larger is better."""
        return self.direction.oriented(value)

    @property
    def is_multi_objective(self) -> bool:
        """Whether this instance optimises more than one objective."""
        return len(self.objectives) > 1

    def objective_values(self, observation: Observation) -> tuple[float, ...] | None:
        """The observation's objectives oriented so that larger is better: every objective's
        metric in a multi-objective study, else ``(score(value),)``. None when it has no result:
        FAILED or INFEASIBLE, or a value missing or NaN."""
        if observation.state not in ("COMPLETE", "PRUNED"):
            return None
        if not self.is_multi_objective:
            value = observation.value
            return None if value is None or math.isnan(value) else (self.score(float(value)),)
        values = []
        for metric, way in self.objectives:
            value = observation.metrics.get(metric)
            if value is None or not math.isfinite(value):
                return None
            values.append(way.oriented(float(value)))
        return tuple(values)

    @abstractmethod
    def ask(self) -> Genotype:
        """The next genotype to evaluate."""

    def tell(self, observation: Observation) -> None:
        """Learn from one evaluated genotype (default: nothing)."""

    def state_dict(self) -> dict[str, Any]:
        state = self.rng.getstate()
        return {"rng": [state[0], list(state[1]), state[2]]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


def _nothing_seen(genotype: Genotype) -> bool:
    return False


ARCH_WEIGHT_KEYS = ("alpha.", "beta.")
"""Prefixes of a one-shot search's per-epoch values that are architecture weights (per op; with
PC-DARTS also per edge): stored, but left out of the epoch's log line and of trial curves."""


class OneShotStrategy(Strategy):
    """A strategy that trains a weight-sharing supernet instead of asking for trials.

    ``search(context)`` runs the whole search: it records per-epoch progress through the
    context (intermediate values and checkpoints in the store), may resume from the context's
    last checkpoint, and returns the final genotype, which the loop retrains as an ordinary
    trial. ``ask``/``tell`` are not used.
    """

    one_shot = True
    epochs: int = 1
    """Supernet training epochs (the progress bar's total)."""
    retrain_epochs: int | None = None
    """Epochs to retrain the derived genotype (None: the study's budget)."""
    search_data_fraction: float | None = None
    """Share of the training data the search sees (None: the study's budget's)."""
    search_resolution: int | None = None
    """Input size the search sees (None: the study's budget's)."""
    supernet: Any = None
    """The weight-sharing network, once ``search`` has built it."""

    def ask(self) -> Genotype:  # pragma: no cover - one-shot strategies do not ask
        raise TypeError(f"one-shot strategy {self.name!r} does not ask; call search()")

    def search_budget(self, budget: Budget) -> Budget:
        """The data the search trains on: the study's ``budget`` (which the retraining uses)
        with ``search_data_fraction`` and ``search_resolution`` applied where they are set."""
        changes: dict[str, Any] = {}
        if self.search_data_fraction is not None:
            changes["data_fraction"] = self.search_data_fraction
        if self.search_resolution is not None:
            changes["resolution"] = self.search_resolution
        return budget.replace(**changes) if changes else budget

    @abstractmethod
    def search(self, context: Any) -> Genotype:
        """Run the one-shot search and return the derived genotype."""
