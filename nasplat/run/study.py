"""Study set-up: validate everything, then create the study or open it to resume.

:func:`prepare` builds the space, strategy, evaluator and executor from the config and checks
the objectives against what the evaluator reports *before* anything is written: a typo in any
name or option is one :class:`ConfigError` line and the store stays byte-identical. Only then
is the study created (or, with ``resume``, read back, the stored config winning; a resumed
study keeps its stored trial budget unless a new total is given).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from nasplat.budget import Budget
from nasplat.config import SearchConfig
from nasplat.direction import Direction
from nasplat.errors import ConfigError, StorageError, StudyExistsError
from nasplat.evaluator import Evaluator, Rung
from nasplat.executor import ExecutionContext, Executor
from nasplat.registry import (
    DATASETS,
    EVALUATORS,
    EXECUTORS,
    OBJECTIVES,
    SPACES,
    STRATEGIES,
    load_builtins,
)
from nasplat.space import SearchSpace
from nasplat.store import StudyRecord, TrialStore
from nasplat.strategy import Strategy

log = logging.getLogger("nasplat")


@dataclass(frozen=True)
class OpenLater:
    """A store to open only once a new study's config has passed every check, so that a bad
    search creates no store. ``url``: where it will be (what executors check)."""

    url: str
    open: Callable[[], TrialStore]


@dataclass
class StudyRun:
    """A validated study and the plugins that run it (what every driver gets)."""

    store: TrialStore
    study: StudyRecord
    config: SearchConfig
    space: SearchSpace
    strategy: Strategy
    evaluator: Evaluator
    executor: Executor
    budget: Budget  # every trial's budget, as the evaluator resolves and stores it
    resume: bool

    def execution_context(self, rung: Rung | None = None) -> ExecutionContext:
        """What an executor needs to rebuild the evaluator in any process (a ladder ``rung``'s
        evaluator, options and objective replace the study's)."""
        if rung is None:
            evaluator, options = self.config.evaluator, evaluator_options(self.config)
        else:
            evaluator, options = rung.evaluator, rung.options
        return ExecutionContext(
            storage_url=self.store.url,
            study_id=self.study.id,
            space=self.config.space,
            space_options=self.config.space_options,
            evaluator=evaluator,
            evaluator_options=options,
            objective=rung.objective if rung else self.study.objective,
            plugins=plugin_entries(self.config, evaluator, options),
        )


def plugin_entries(
    config: SearchConfig, evaluator: str | None = None, options: dict[str, Any] | None = None
) -> tuple[tuple[str, str, Any], ...]:
    """The registered objects a trial of this config uses, for executors to ship to workers:
    the space, the evaluator, the dataset and (``objective`` evaluator) the user's function."""
    options = options or evaluator_options(config)
    wanted = [
        (SPACES, config.space),
        (EVALUATORS, evaluator or config.evaluator),
        (DATASETS, options.get("dataset", config.dataset)),
    ]
    if isinstance(options.get("function"), str):
        wanted.append((OBJECTIVES, options["function"]))
    return tuple((registry.kind, name, registry.get(name)) for registry, name in wanted)


def evaluator_options(config: SearchConfig) -> dict[str, Any]:
    """The evaluator's keyword options: the data settings plus ``evaluator_options``, and the
    objectives' metric names for an evaluator that ``takes_objectives``."""
    options = {
        "dataset": config.dataset,
        "data_dir": config.data_dir,
        "seed": config.seed,
        "device": config.device,
        **config.evaluator_options,
    }
    if config.epochs is not None:
        options.setdefault("epochs", config.epochs)
    factory = EVALUATORS.get(config.evaluator)
    takes = (
        isinstance(factory, type) and issubclass(factory, Evaluator) and factory.takes_objectives
    )
    if takes and config.objective is not None:  # None: the evaluator's own, which it knows
        options.setdefault("objectives", [metric for metric, _ in config.objective_list()])
    return options


DEFAULT_EVALUATOR = SearchConfig.evaluator
"""The evaluator a study name leaves unsaid."""


def base_name(config: SearchConfig) -> str:
    """``SPACE-STRATEGY``, plus ``-EVALUATOR`` unless it is ``train`` (``nb201-random-tabular``);
    a ``package.module:Class`` name contributes ``Class``."""
    parts = [config.space, config.strategy]
    if config.evaluator != DEFAULT_EVALUATOR:
        parts.append(config.evaluator)
    return "-".join(part.rsplit(":", 1)[-1] for part in parts)


def allocate_name(store: TrialStore, base: str, *, resume: bool = False) -> str:
    """``base``, then ``base-2``, ``base-3``... when taken; ``resume`` picks the newest taken."""
    taken = set(store.study_names())
    names = [base] + [f"{base}-{n}" for n in range(2, len(taken) + 3)]
    if resume:
        used = [name for name in names if name in taken]
        return used[-1] if used else base
    return next(name for name in names if name not in taken)


def resume_name(store: TrialStore, config: SearchConfig) -> str:
    """The newest study of ``config`` (:func:`base_name`); in a store from before study names
    carried the evaluator, the newest ``SPACE-STRATEGY[-N]`` when it ran that evaluator."""
    name = allocate_name(store, base_name(config), resume=True)
    if store.has_study(name) or config.evaluator == DEFAULT_EVALUATOR:
        return name
    old = replace(config, evaluator=DEFAULT_EVALUATOR)
    legacy = allocate_name(store, base_name(old), resume=True)
    if store.has_study(legacy) and store.get_study(legacy).evaluator == config.evaluator:
        return legacy
    return name


RESUME_OVERRIDES = ("time_limit", "executor", "executor_options")
"""What a resumed study always takes from the given config: the time limit and where to run.
Its trial budget is the stored one unless ``budget`` is among the ``override`` fields."""


def _resumed_config(
    study: StudyRecord, given: SearchConfig, override: tuple[str, ...] = ()
) -> SearchConfig:
    """The stored config, except for the time limit, where to run and the ``override`` fields."""
    merged = stored_config(study)
    was = merged.budget
    for key in (*RESUME_OVERRIDES, *override):
        setattr(merged, key, getattr(given, key))
    if "budget" in override:
        log.info("study %s: budget %d (was %d)", study.name, merged.budget, was)
    return merged


def check_device(device: str | None) -> None:
    """A named device must be one this machine has (``auto`` and ``cpu`` always are; the
    check imports torch only for the others)."""
    if device in (None, "auto", "cpu"):
        return
    if not isinstance(device, str):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    from nasplat.ml.training import resolve_device

    resolve_device(device)


def check_objectives(evaluator: Evaluator, objectives: list[tuple[str, Direction]]) -> None:
    """Every objective must be a metric the evaluator reports (when it declares its metrics)."""
    known = evaluator.metric_names()
    missing = [metric for metric, _ in objectives if known and metric not in known]
    if missing:
        raise ConfigError(
            f"objective {missing[0]!r} is not a metric of evaluator {evaluator.name!r}; "
            f"known: {', '.join(known)}"
        )


def build_plugins(
    config: SearchConfig, strategy_budget: int | None = None
) -> tuple[SearchSpace, Strategy, Evaluator]:
    """The space, strategy and evaluator of a config (ConfigError for any bad name or option).

    A strategy that ``takes_budget`` gets ``budget=`` ``strategy_budget`` (default: the config's
    trial budget) to scale its defaults; explicit strategy options still win. A
    ``multi_objective`` strategy gets every objective; the others optimise the first. A config
    without an objective takes the evaluator's (:meth:`Evaluator.default_objective`), and its
    direction unless one was given."""
    load_builtins()
    space = SPACES.create(config.space, **config.space_options)
    evaluator = EVALUATORS.create(config.evaluator, space, **evaluator_options(config))
    if config.objective is None:
        config.set_objective(*evaluator.default_objective())
    factory = STRATEGIES.get(config.strategy)
    budget = config.budget if strategy_budget is None else strategy_budget
    objectives = config.objective_list()
    is_strategy = isinstance(factory, type) and issubclass(factory, Strategy)
    extra: dict[str, Any] = {}
    if is_strategy and factory.takes_budget and budget and "budget" not in config.strategy_options:
        extra["budget"] = budget
    if is_strategy and factory.multi_objective:
        extra["objectives"] = [(metric, str(way)) for metric, way in objectives]
    elif len(objectives) > 1:
        log.info(
            "strategy %s optimises %s alone (the Pareto front: nsga2 or evolution)",
            config.strategy,
            objectives[0][0],
        )
    strategy = STRATEGIES.create(
        config.strategy,
        space,
        seed=config.seed,
        direction=objectives[0][1],
        **extra,
        **config.strategy_options,
    )
    return space, strategy, evaluator


def stored_config(study: StudyRecord) -> SearchConfig:
    """The search config stored with a study."""
    return SearchConfig.from_dict(
        {k: v for k, v in study.config.items() if k not in ("data", "shape")}
    )


def _create_study(store: TrialStore, config: SearchConfig, evaluator: Evaluator) -> StudyRecord:
    """The config's study, created; without a name, the next free :func:`base_name` ``[-N]``
    (retried when another process takes that name first)."""
    shape = evaluator.data_shape()
    stored = {"shape": None if shape is None else shape.to_dict()}
    named = config.study is not None
    for _ in range(100):
        name = config.study if named else allocate_name(store, base_name(config))
        try:
            study = store.create_study(
                name,
                space=config.space,
                strategy=config.strategy,
                evaluator=config.evaluator,
                objectives=config.objective_list(),
                config={**config.to_dict(), "study": name, **stored},
            )
        except StudyExistsError:
            if named:
                raise
            continue
        config.study = name
        return study
    raise StorageError(f"no free study name after 100 attempts in {store.safe_url}")


def prepare(
    config: SearchConfig,
    store: TrialStore | OpenLater,
    *,
    resume: bool = False,
    override: tuple[str, ...] = (),
) -> StudyRun:
    """Validate ``config`` and build its plugins, then create (or, ``resume``, open) the study.
    On resume the stored config wins except for the time limit, executor and the ``override``
    fields: ``budget`` (a new total of trials, when the user gave one) and the Python API's new
    objective function. Nothing is written before every check has passed; a store given as
    :class:`OpenLater` is not even created before (a resume opens it first, to read the stored
    config)."""
    study = None
    strategy_budget = None
    later = store if isinstance(store, OpenLater) else None
    if later is not None and resume:
        store = later.open()
    if resume:
        name = config.study or resume_name(store, config)
        if not store.has_study(name):
            raise StorageError(f"no study {name!r} to resume in {store.safe_url}")
        study = store.get_study(name)
        config = _resumed_config(study, config, override)
        # the strategy's budget-scaled defaults are those of the first run, so resume is exact
        strategy_budget = stored_config(study).budget
    space, strategy, evaluator = build_plugins(config, strategy_budget)
    objectives = config.objective_list()
    check_device(config.device)
    executor = EXECUTORS.create(config.executor, **config.executor_options)
    executor.check_store(store.url)
    check_objectives(evaluator, objectives)
    budget = evaluator.resolve_budget(config.trial_budget())
    if later is not None and not resume:
        store = later.open()
    if study is None:
        study = _create_study(store, config, evaluator)
    return StudyRun(store, study, config, space, strategy, evaluator, executor, budget, resume)
