"""The Python API: search your own model space on your own data with your own training.

>>> study = nasplat.create_study(MyNet, data=(x, y), strategy="evolution")   # doctest: +SKIP
>>> study.optimize(my_objective, n_trials=8)                                  # doctest: +SKIP
>>> study.trials_dataframe()                                                  # doctest: +SKIP

Everything the CLI does goes through the same run layer: a study is validated in full before
anything is written, stored in the SQL store, resumable (``load_if_exists=True`` or
:func:`load_study`), and its trials read back as records or a DataFrame. Objects defined in a
script or notebook (a space class, an objective function, data) are registered under their
names (replacing a same-named one, so re-running a cell is fine) and shipped to Ray workers by
value. Errors are :class:`nasplat.errors.NasplatError` exceptions with the CLI's messages.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

from nasplat.config import SearchConfig
from nasplat.errors import ConfigError, StorageError
from nasplat.registry import DATASETS, OBJECTIVES, SPACES, STRATEGIES, load_builtins
from nasplat.store import StudyRecord, TrialRecord, TrialStore, open_store

log = logging.getLogger("nasplat")

DEFAULT_STORAGE = "sqlite:///nasplat.db"


def create_study(
    space: Any,
    *,
    data: Any = "digits",
    strategy: Any = "evolution",
    storage: str | TrialStore | None = None,
    study_name: str | None = None,
    load_if_exists: bool = False,
    metric: str | None = None,
    direction: str | None = None,
    n_trials: int = 20,
    epochs: int | None = None,
    seed: int = 0,
    device: str = "auto",
    evaluator: str = "train",
    space_options: dict[str, Any] | None = None,
    strategy_options: dict[str, Any] | None = None,
    evaluator_options: dict[str, Any] | None = None,
    executor: str = "local",
    executor_options: dict[str, Any] | None = None,
    **budget: Any,
) -> Study:
    """A new study (or, with ``load_if_exists``, the stored one of that name).

    ``space``: a registered name (``"chain"``, ``"package.module:Class"``), a ``SearchSpace``
    subclass or instance, or an ``nn.Module`` subclass written with :mod:`nasplat.nn` choices
    (constructed with ``space_options``). ``data``: a registered dataset name, ``DataSplits``,
    a ``torch.utils.data.Dataset``, ``(x, y)`` tensors or arrays, or explicit splits (see
    :func:`nasplat.ml.data.make_splits`). ``strategy``: a name (``random``, ``evolution``, ``rl``,
    ``tpe``, ``nsga2``, ``darts``, ``enas``, ...). ``metric``/``direction``: what to optimise
    (default: the evaluator's, ``val_acc`` for training; comma lists for several objectives:
    ``nsga2`` and ``evolution`` search for their Pareto front). ``n_trials``: the default trial
    budget of :meth:`Study.optimize`.
    ``evaluator`` and its options apply when :meth:`Study.optimize` gets no objective function.
    ``budget`` takes the trial budget's other fields: ``data_fraction``, ``width_mult``,
    ``resolution``, and ``time_limit``, ``keep_weights``, ``reference_point`` (the
    hypervolume's, several objectives). The study is written on the first
    :meth:`Study.optimize`, after every check has passed.
    """
    store = storage if isinstance(storage, TrialStore) else open_store(storage or DEFAULT_STORAGE)
    if study_name is not None and store.has_study(study_name):
        if not load_if_exists:
            raise StorageError(
                f"study {study_name!r} already exists in {store.safe_url}; pass "
                "load_if_exists=True to continue it (or choose another study_name)"
            )
        return load_study(study_name, storage=store, space=space, data=data)
    plugins: list[tuple[Any, str, Any]] = []
    config = SearchConfig(
        study=study_name,
        space=_space_name(space, plugins),
        space_options=_space_options(space, space_options),
        strategy=_strategy_name(strategy, plugins),
        strategy_options=dict(strategy_options or {}),
        evaluator=evaluator,
        evaluator_options=dict(evaluator_options or {}),
        executor=executor,
        executor_options=dict(executor_options or {}),
        dataset=_data_name(data, None, seed, plugins),
        budget=n_trials,
        epochs=epochs,
        seed=seed,
        objective=metric,
        direction=direction,
        device=device,
        **budget,
    )
    return Study(store, config, plugins)


def load_study(
    study_name: str,
    *,
    storage: str | TrialStore | None = None,
    space: Any = None,
    data: Any = None,
) -> Study:
    """A stored study, to read or to continue with :meth:`Study.optimize`. Objects that lived in
    the script or notebook that created it (a model-space class, data, an objective function)
    must be given again: ``space=``, ``data=``, and the objective to ``optimize``."""
    store = storage if isinstance(storage, TrialStore) else open_store(storage or DEFAULT_STORAGE)
    if not store.has_study(study_name):
        known = ", ".join(store.study_names()) or "(none)"
        raise StorageError(f"no study {study_name!r} in {store.safe_url}; studies: {known}")
    record = store.get_study(study_name)
    from nasplat.run.study import stored_config

    config = stored_config(record)
    plugins: list[tuple[Any, str, Any]] = []
    if space is not None:
        _register_space(space, config.space, plugins)
    if data is not None:
        _data_name(data, config.dataset, config.seed, plugins)
    return Study(store, config, plugins, record=record)


class Study:
    """One study: run it with :meth:`optimize`, read it with ``best``, ``trials`` and
    :meth:`trials_dataframe`, keep its result with :meth:`export` or :meth:`build`."""

    def __init__(
        self,
        store: TrialStore,
        config: SearchConfig,
        plugins: list[tuple[Any, str, Any]] | None = None,
        *,
        record: StudyRecord | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self._plugins = list(plugins or [])  # (registry, name, object) this study registered
        self._record = record

    # --- running -------------------------------------------------------------------------------
    def optimize(
        self,
        objective: Callable[..., Any] | None = None,
        n_trials: int | None = None,
        *,
        timeout: float | None = None,
        show_progress: bool = False,
    ) -> Study:
        """Run ``n_trials`` more trials (default: the study's ``n_trials``; one-shot strategies
        run their epochs and retrain the result). ``objective(model, ctx) -> float | dict``
        trains and measures each network instead of the built-in loop (see
        :class:`nasplat.objective.TrialContext`); a trial whose objective raises or returns NaN
        is stored FAILED with its message (logged as a warning) and the search goes on.
        ``timeout`` (seconds) stops asking for new trials once passed."""
        from nasplat.run.search import drive
        from nasplat.run.study import prepare

        for registry, name, obj in self._plugins:  # another study may have reused a name
            registry.add(name, obj, replace=True)
        config = dataclasses.replace(self.config)
        override: tuple[str, ...] = ()
        if objective is not None:
            config.evaluator = "objective"
            config.evaluator_options = self._objective_options(objective)
            override = ("evaluator", "evaluator_options")
        exists = config.study is not None and self.store.has_study(config.study)
        if n_trials is not None:
            if n_trials < 0:
                raise ConfigError(f"n_trials must be >= 0, got {n_trials}")
            done = self.store.count_trials(self._record.id, tag=None) if exists else 0
            config.budget = done + n_trials
            override += ("budget",)
        config.time_limit = timeout
        run = prepare(config, self.store, resume=exists, override=override)
        self._record, self.config.study = run.study, run.study.name
        drive(run, progress=show_progress)
        return self

    def _objective_options(self, objective: Callable[..., Any]) -> dict[str, Any]:
        if not callable(objective):
            raise ConfigError(f"objective must be a function (model, ctx), got {objective!r}")
        name = f"{objective.__module__}:{objective.__qualname__}"
        OBJECTIVES.add(name, objective, replace=True)
        options = {k: v for k, v in self.config.evaluator_options.items() if k == "pruner"}
        if self.config.objective is not None:  # else the evaluator's default, val_acc
            metric, direction = self.config.objective_list()[0]
            options.update(metric=metric, direction=direction.value)
        return {**options, "function": name}

    # --- reading -------------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        """The study's name (allocated on the first ``optimize`` when none was given)."""
        return self.config.study

    @property
    def record(self) -> StudyRecord:
        if self._record is None:
            raise StorageError("the study has not run yet: call optimize() first")
        return self._record

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial, in number order (``state``, ``value``, ``params``, ``metrics``, ``error``)."""
        return self.store.trials(self.record.id) if self._record is not None else []

    @property
    def best(self) -> TrialRecord:
        """The best completed trial (StorageError before the first one)."""
        return self.store.best_trial(self.record.id)

    @property
    def best_value(self) -> float | None:
        return self.best.value

    @property
    def best_params(self) -> dict[str, Any]:
        return self.best.params

    def trials_dataframe(self) -> Any:
        """A pandas DataFrame, one row per trial, with a ``params_<decision>`` column per
        decision and a ``metric_<name>`` column per metric."""
        from nasplat.store.frames import trials_frame

        return trials_frame(self.trials)

    def export(self, out_dir: str, format: str = "all", *, force: bool = False) -> list[str]:
        """Write the best trial's files (as ``nasplat export``): ``format`` ``all`` (genotype,
        notation, metrics, weights, TorchScript), ``json``, ``torchscript``, ``onnx`` or the
        space's notation; each model is checked against PyTorch first. Existing files are an
        ExportError unless ``force``. Returns the paths written."""
        from nasplat.run.export import export_best

        return export_best(self.store, self.record.name, out_dir, format, force=force)

    def build(self, trial: TrialRecord | None = None, *, weights: bool = True) -> Any:
        """The ``nn.Module`` of a trial (default: the best), with its trained weights when the
        store kept them."""
        from nasplat.run.export import build_trial

        return build_trial(self.store, self.record, trial or self.best, weights=weights)

    def __repr__(self) -> str:
        return f"Study({self.name!r}, space={self.config.space!r}, storage={self.store.safe_url!r})"


# --- turning user objects into registered names ---------------------------------------------------
def _object_name(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _register(registry: Any, name: str, obj: Any, plugins: list[tuple[Any, str, Any]]) -> str:
    registry.add(name, obj, replace=True)
    plugins.append((registry, name, obj))
    return name


def _space_name(space: Any, plugins: list[tuple[Any, str, Any]]) -> str:
    load_builtins()
    if isinstance(space, str):
        SPACES.get(space)  # unknown names fail here, before anything is written
        return space
    return _register_space(space, None, plugins)


def _register_space(space: Any, name: str | None, plugins: list[tuple[Any, str, Any]]) -> str:
    """Register a space class, instance or nn.Module class; returns its registry name."""
    from nasplat.registry import space_factory
    from nasplat.space import SearchSpace

    load_builtins()
    if isinstance(space, str):
        return space
    if isinstance(space, SearchSpace):
        space = type(space)  # built again from its options (space_options)
    if isinstance(space, type) and issubclass(space, SearchSpace):
        return _register(SPACES, name or space.name, space, plugins)
    name = name or _object_name(space)
    return _register(SPACES, name, space_factory(space, name), plugins)


def _space_options(space: Any, given: dict[str, Any] | None) -> dict[str, Any]:
    from nasplat.space import SearchSpace

    if isinstance(space, SearchSpace):
        if given:
            raise ConfigError("space_options do not apply to a space instance (it has its own)")
        return dict(space.options)
    return dict(given or {})


def _strategy_name(strategy: Any, plugins: list[tuple[Any, str, Any]]) -> str:
    load_builtins()
    if isinstance(strategy, str):
        STRATEGIES.get(strategy)
        return strategy
    return _register(STRATEGIES, strategy.name or _object_name(strategy), strategy, plugins)


def _data_name(data: Any, name: str | None, seed: int, plugins: list[tuple[Any, str, Any]]) -> str:
    """The dataset name of ``data``: a registered name as it is, anything else registered
    (under ``name``, else its own) with its splits made once, here, from ``seed``."""
    load_builtins()
    if isinstance(data, str):
        DATASETS.get(data)
        return data
    from nasplat.ml.data import DataSplits

    if isinstance(data, DataSplits):
        splits = data
    else:
        from nasplat.ml.data import make_splits

        splits = make_splits(data, seed=seed)
    loader = functools.partial(_given_splits, splits)
    return _register(DATASETS, name or splits.name, loader, plugins)


def _given_splits(splits: Any, data_dir: str | None = None, seed: int = 0) -> Any:
    """The loader of data given from Python: the splits it was registered with."""
    return splits
