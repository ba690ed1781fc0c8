"""The Evaluator interface and the Reporter that evaluators report progress to."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from nasplat.budget import Budget, EvalResult
from nasplat.direction import Direction
from nasplat.errors import TrialPruned
from nasplat.genotype import Genotype
from nasplat.options import DATA_SETTINGS, Option, check_options
from nasplat.shape import NetShape
from nasplat.space import SearchSpace


class Reporter:
    """Receives intermediate values of one trial and decides whether it should stop.

    ``report(step, value)`` records the value (through ``sink``) and raises
    :class:`TrialPruned` when ``should_prune`` says so. Evaluators call it once per epoch, and
    ``replan(steps)`` when a time limit changes the steps the trial will report
    (``on_replan``: e.g. a progress bar's total).
    """

    def __init__(
        self,
        sink: Callable[[int, float], None] | None = None,
        should_prune: Callable[[int, float], bool] | None = None,
        on_replan: Callable[[int], None] | None = None,
    ) -> None:
        self._sink = sink
        self._should_prune = should_prune
        self._on_replan = on_replan
        self.history: list[tuple[int, float]] = []

    def report(self, step: int, value: float) -> None:
        self.history.append((step, float(value)))
        if self._sink is not None:
            self._sink(step, float(value))
        if self._should_prune is not None and self._should_prune(step, float(value)):
            raise TrialPruned(f"pruned at step {step}")

    def replan(self, steps: int) -> None:
        """The trial now reports ``steps`` steps in all (fewer or more than planned)."""
        if self._on_replan is not None:
            self._on_replan(steps)

    @property
    def last_step(self) -> int | None:
        return self.history[-1][0] if self.history else None


COMMON_OPTIONS = DATA_SETTINGS


def pop_common_options(options: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the options every evaluator takes (dataset, data_dir, seed, device)."""
    return {k: options.pop(k) for k in COMMON_OPTIONS if k in options}


def reject_unknown_options(evaluator: Evaluator, options: Iterable[str]) -> None:
    """One clear ConfigError naming the ``options`` an evaluator does not declare (its class's
    ``OPTIONS``) and the known ones."""
    check_options("evaluator", evaluator.name, evaluator.OPTIONS or (), options, ())


class Pruner(ABC):
    """Decides from a trial's intermediate values (and its study's) whether to stop it.

    Called in the process that runs the trial, after each reported value; reads what it needs
    from the store (the source of truth), so it works the same in every executor. It may keep
    what it read between calls (a finished trial's state and values never change) but must
    read again whatever other processes can still change: new and running trials.
    """

    @abstractmethod
    def should_prune(
        self, store: Any, study_id: int, trial_id: int, step: int, value: float
    ) -> bool:
        """True to stop the trial now (it is then stored PRUNED)."""


@dataclass(frozen=True)
class Rung:
    """One rung of a fidelity ladder: the evaluator that scores it (registry name, its full
    options, and a built instance), the budget of its trials and the objective it ranks by."""

    index: int
    evaluator: str
    options: dict[str, Any]
    instance: Evaluator
    budget: Budget
    objective: str
    direction: Direction


@dataclass(frozen=True)
class FidelityLadder:
    """Rungs from cheapest to dearest; the best ``1/eta`` of each rung climb to the next."""

    rungs: tuple[Rung, ...]
    eta: int


class Evaluator(ABC):
    """Estimates the performance of a genotype.

    Rules:
    - Built by name from the registry with plain keyword arguments, and picklable, so an
      executor can rebuild it in another process from ``(name, options)``.
    - ``evaluate`` is called with an explicit :class:`Budget`; a field left ``None`` means the
      evaluator's default, and the budget actually used is what ``resolve_budget`` returns (it
      is stored with the trial, so the store says how a number was obtained).
    - ``evaluate`` reports per-epoch progress with ``reporter.report(step, value)`` and lets
      :class:`TrialPruned` propagate; any other exception marks the trial FAILED.
    - Thread safety: one evaluation at a time per instance.
    - ``precheck`` runs in the search process before a trial is created; ``evaluate`` may run
      in another process (an executor rebuilds the evaluator there).
    """

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[tuple[Option, ...] | None] = None
    """The keyword options (:mod:`nasplat.options`): what ``nasplat list options`` shows and
    the registry accepts; None: not declared, the constructor's signature is used."""
    takes_objectives: ClassVar[bool] = False
    """True when ``__init__`` takes ``objectives`` (the study's objective metric names), e.g. to
    measure an optional metric only when a study optimises it; the study set-up passes them only
    then."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        dataset: str = "digits",
        data_dir: str | None = None,
        seed: int = 0,
        device: str = "auto",
        **options: Any,
    ) -> None:
        self.space = space
        self.dataset = dataset
        self.data_dir = data_dir
        self.seed = seed
        self.device = device
        self.options = dict(options)

    def resolve_budget(self, budget: Budget | None) -> Budget:
        """The budget with defaults filled in (default: unchanged)."""
        return budget or Budget()

    @abstractmethod
    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        """Evaluate one genotype within the budget."""

    def pruner(self) -> Pruner | None:
        """The pruner consulted after each reported value (default: none)."""
        return None

    def precheck(self, genotype: Genotype, budget: Budget) -> str | None:
        """Why ``genotype`` (canonical) must not be evaluated at ``budget``, e.g. the constraint
        it breaks; None when it may (default: always). The trial loop calls it before creating
        a trial: an answer means no trial and no budget spent, and the strategy is told the
        genotype is INFEASIBLE. It must be cheap next to ``evaluate`` (costs of the built
        network, a table's columns), never train, and say the same for the same architecture."""
        return None

    def metric_names(self) -> list[str]:
        """Metrics this evaluator returns (objectives are checked against them before a study
        is created; an empty list means "not declared": any objective is accepted)."""
        return []

    def default_objective(self) -> tuple[str, Direction]:
        """The metric (and its direction) a study ranks by when it names none (default:
        ``val_acc``, maximised). A score that is not an accuracy keeps its own name."""
        return "val_acc", Direction.MAXIMIZE

    def load_splits(self, budget: Budget) -> Any:
        """The data at a budget (its data fraction and resolution): what trials and one-shot
        searches train on. Default: the dataset, subset and resized as the budget says."""
        from nasplat.ml.data import load_dataset

        splits = load_dataset(self.dataset, data_dir=self.data_dir, seed=self.seed)
        if budget.data_fraction < 1:
            splits = splits.subset(budget.data_fraction, seed=self.seed)
        if budget.resolution is not None and budget.resolution != splits.input_size:
            splits = splits.resized(budget.resolution)
        return splits

    def data_shape(self) -> NetShape | None:
        """The network shape this evaluator's data calls for, recorded with the study
        (default: None, for evaluators that build no network from data, such as a table)."""
        return None

    def ladder(self, objective: str, direction: Direction, base: Budget) -> FidelityLadder | None:
        """The rungs to run when this evaluator is a fidelity ladder (default: None, an
        ordinary evaluator). ``base`` is the study's trial budget, for the last rung."""
        return None
