"""The Executor contract: where trials run. Implementations live in :mod:`nasplat.run`.

Every submitted task carries its trial id and every outcome names it: the trial loop joins
results on that id, never on arrival order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nasplat.budget import Budget
from nasplat.evaluator import Evaluator
from nasplat.genotype import Genotype
from nasplat.options import Option

if TYPE_CHECKING:
    from nasplat.strategy import OneShotStrategy


@dataclass(frozen=True)
class TrialTask:
    """One evaluation to run: the trial's id and number, its genotype and budget."""

    trial_id: int
    number: int
    genotype: Genotype
    budget: Budget


@dataclass(frozen=True)
class TrialOutcome:
    """The end of one trial, named by its id."""

    trial_id: int
    state: str  # COMPLETE | PRUNED | FAILED
    value: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    weights: bytes | None = None
    worker: str | None = None


@dataclass(frozen=True)
class ExecutionContext:
    """Plain data from which any process can rebuild what a trial needs."""

    storage_url: str
    study_id: int
    space: str
    space_options: dict[str, Any]
    evaluator: str
    evaluator_options: dict[str, Any]
    objective: str
    plugins: tuple[tuple[str, str, Any], ...] = ()
    """``(registry kind, name, object)`` of the plugins the trial uses (space, evaluator, dataset,
    objective function). Executors that start other processes ship them (Ray pickles them with
    cloudpickle: by reference when importable, by value when defined in ``__main__`` or a
    notebook), and :meth:`register_plugins` puts them in that process's registries."""

    def register_plugins(self) -> None:
        """Register :attr:`plugins` in this process's registries (replacing same-named ones)."""
        from nasplat.registry import REGISTRIES

        for kind, name, obj in self.plugins:
            REGISTRIES[kind].add(name, obj, replace=True)

    def build_evaluator(self) -> Evaluator:
        from nasplat.registry import EVALUATORS, SPACES, load_builtins

        load_builtins()
        self.register_plugins()
        space = SPACES.create(self.space, **self.space_options)
        return EVALUATORS.create(self.evaluator, space, **self.evaluator_options)


class Executor(ABC):
    """Runs trial tasks.

    Rules: ``open`` once before any ``submit``; ``submit`` never blocks for the evaluation
    (it may queue); ``wait`` blocks until at least one submitted task has finished and returns
    the finished outcomes (each names its ``trial_id``); ``capacity`` is how many tasks may be
    in flight; ``close`` releases workers and is safe to call twice. Called from one thread.
    Built from the registry with plain keyword options, before anything is written to the
    store (so a bad option is reported first); resources are taken in ``open`` only.
    """

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[tuple[Option, ...] | None] = None
    """The keyword options (:mod:`nasplat.options`): what ``nasplat list options`` shows and
    the registry accepts; None: not declared, the constructor's signature is used."""

    @property
    @abstractmethod
    def capacity(self) -> int:
        """How many tasks may be in flight at once."""

    @abstractmethod
    def open(self, context: ExecutionContext, store: Any) -> None:
        """Start workers for the context's evaluator; ``store`` receives intermediate values."""

    @abstractmethod
    def submit(self, task: TrialTask) -> None:
        """Queue one task."""

    @abstractmethod
    def wait(self) -> list[TrialOutcome]:
        """Block until at least one task finished; the finished outcomes."""

    def close(self) -> None:
        """Release resources (default: nothing)."""

    def check_store(self, url: str) -> None:
        """Raise ConfigError when this executor's workers cannot open the store at ``url``
        (default: any store will do)."""

    def search_one_shot(self, strategy: OneShotStrategy, context: Any) -> Genotype:
        """Run a one-shot strategy's supernet search; returns the derived genotype. Default: in
        this process. Executors with many workers may run it data-parallel."""
        return strategy.search(context)
