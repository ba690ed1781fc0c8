"""Pruners for the ``early-stop`` evaluator: Optuna's pruners, fed from nasplat's store.

nasplat's store stays the source of truth. Each :class:`OptunaPruner` keeps an in-memory Optuna
study that mirrors the nasplat study it prunes (:class:`StudyMirror`): one Optuna trial per
store trial, added in trial-number order (so Optuna's trial numbers and Hyperband's bracket
hashes are those of a study built from scratch), with its state and per-epoch values. The
first call reads the whole study in one query; every later call reads, again in one query,
only what can have changed: trials not seen yet, RUNNING trials and the trials last seen
RUNNING. A finished trial never changes in the store, so the rows read per call do not grow
with the number of finished trials, and trials that other processes (Ray workers) create or
finish are seen on the next call. (Optuna's pruners still look at every trial in memory.)

The rung values that successive halving records as trial system attributes are written back
to the store as intermediate values under the key ``optuna:<attribute>`` (step 0), so mirrors
in other processes see them.

Reported values are validation accuracies (``train_model`` reports ``val_acc``), so the
mirrored study maximises, whatever the search's objective, unless the pruner is given another
direction (the ``objective`` evaluator: the user's reported metric).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.evaluator import Pruner
from nasplat.options import Option

ATTR_PREFIX = "optuna:"
REPORTED_KEY = "value"


def _median(epochs: int, **kw: Any) -> Any:
    import optuna

    return optuna.pruners.MedianPruner(**kw)


def _percentile(epochs: int, **kw: Any) -> Any:
    import optuna

    kw.setdefault("percentile", 25.0)
    return optuna.pruners.PercentilePruner(**kw)


def _asha(epochs: int, **kw: Any) -> Any:
    import optuna

    kw.setdefault("min_resource", 1)
    return optuna.pruners.SuccessiveHalvingPruner(**kw)


def _hyperband(epochs: int, **kw: Any) -> Any:
    import optuna

    kw.setdefault("min_resource", 1)
    kw.setdefault("max_resource", max(int(epochs), 1))
    return optuna.pruners.HyperbandPruner(**kw)


PRUNERS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "median": (_median, ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials")),
    "percentile": (
        _percentile,
        ("percentile", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    ),
    "asha": (
        _asha,
        ("min_resource", "reduction_factor", "min_early_stopping_rate", "bootstrap_count"),
    ),
    "hyperband": (
        _hyperband,
        ("min_resource", "max_resource", "reduction_factor", "bootstrap_count"),
    ),
}
"""Optuna-backed pruners: name -> (factory(epochs, **options), accepted options)."""
ALIASES = {"successive-halving": "asha", "sha": "asha"}
"""Optuna's SuccessiveHalvingPruner is the asynchronous variant (ASHA)."""


def pruner_names() -> list[str]:
    return sorted([*PRUNERS, *ALIASES, "patience", "none"])


def canonical_pruner(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in PRUNERS and name not in ("patience", "none"):
        raise ConfigError(f"unknown pruner {name!r}; known: {', '.join(pruner_names())}")
    return name


PRUNER_OPTIONS = sorted({o for _, accepted in PRUNERS.values() for o in accepted})
"""Every option some Optuna pruner accepts."""
PRUNING = tuple(
    Option(
        name,
        "float" if name == "percentile" else "int",
        None,
        f"Optuna's, of {', '.join(p for p, (_, accepted) in PRUNERS.items() if name in accepted)}",
    )
    for name in PRUNER_OPTIONS
)
"""The Optuna pruners' options (default: Optuna's, or as each factory above sets)."""


class OptunaPruner(Pruner):
    """A nasplat :class:`Pruner` that asks one of Optuna's pruners, with the store's data.

    Picklable (holds only its name and options; Optuna's pruner is built on construction and
    the study mirror on first use). One evaluation at a time, like its evaluator.
    """

    def __init__(
        self,
        name: str,
        epochs: int,
        direction: Direction = Direction.MAXIMIZE,
        **options: Any,
    ) -> None:
        self.name = canonical_pruner(name)
        self.direction = Direction.parse(direction)
        if self.name not in PRUNERS:
            raise ConfigError(f"pruner {name!r} is not an Optuna pruner")
        factory, accepted = PRUNERS[self.name]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(
                f"unknown option(s) for pruner {self.name!r}: {', '.join(unknown)}; "
                f"known: {', '.join(accepted)}"
            )
        self.epochs = int(epochs)
        self.options = dict(options)
        try:
            self._optuna: Any = factory(self.epochs, **self.options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"pruner {self.name!r}: {exc}") from None
        self._mirror: StudyMirror | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "epochs": self.epochs, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"], state["epochs"], **state["options"])  # type: ignore[misc]

    def should_prune(
        self, store: Any, study_id: int, trial_id: int, step: int, value: float
    ) -> bool:
        mirror = self._mirror
        try:
            if mirror is None or not mirror.serves(store, study_id):
                mirror = self._mirror = StudyMirror(store, study_id, self.direction)
            else:
                mirror.refresh(store)
        except BaseException:
            self._mirror = None  # maybe half updated: the next call starts over
            raise
        current = mirror.optuna_trial_id(trial_id)
        if current is None:
            return False
        frozen = mirror.storage.get_trial(current)
        before = dict(frozen.system_attrs)
        prune = bool(self._optuna.prune(mirror.study, frozen))
        after = mirror.storage.get_trial(current).system_attrs
        for key, attr in after.items():
            if before.get(key) != attr and isinstance(attr, int | float):
                store.report_intermediate(trial_id, 0, float(attr), key=ATTR_PREFIX + key)
        return prune


@dataclass
class TrialCurve:
    """One store trial as a pruner sees it: its state, the per-epoch values reported under
    ``value`` (step -> value) and the ``optuna:`` attributes (name without prefix -> value)."""

    id: int
    number: int
    state: str
    values: dict[int, float] = field(default_factory=dict)
    attrs: dict[str, float] = field(default_factory=dict)

    def add(self, key: str | None, step: int | None, value: float | None) -> None:
        """One intermediate value (points of one key must come in step order: the last wins)."""
        if key == REPORTED_KEY:
            self.values[int(step)] = float(value)  # type: ignore[arg-type]
        elif key is not None and key.startswith(ATTR_PREFIX):
            self.attrs[key[len(ATTR_PREFIX) :]] = float(value)  # type: ignore[arg-type]


def read_learning_curves(
    store: Any, study_id: int, *, after_id: int | None = None, include: Collection[int] = ()
) -> list[TrialCurve]:
    """A study's trials in number order with their learning curves, in one query.

    Without ``after_id``: every trial. With it: trials whose id is larger, RUNNING trials and
    the trials whose ids are in ``include``.

    Not part of the store protocol yet (a candidate for it): reads the SQL store's tables
    through ``store.engine``, read-only. A store without an ``engine`` is read through its
    public methods instead (one query per selected trial).
    """
    engine = getattr(store, "engine", None)
    if engine is None:
        return _read_learning_curves_public(store, study_id, after_id, include)
    from sqlalchemy import and_, or_, select

    from nasplat.store.models import intermediate_values as Value
    from nasplat.store.models import trials as Trial

    wanted = or_(Value.c.key == REPORTED_KEY, Value.c.key.startswith(ATTR_PREFIX, autoescape=True))
    query = (
        select(Trial.c.id, Trial.c.number, Trial.c.state, Value.c.key, Value.c.step, Value.c.value)
        .outerjoin(Value, and_(Value.c.trial_id == Trial.c.id, wanted))
        .where(Trial.c.study_id == study_id)
    )
    if after_id is not None:
        changed = [Trial.c.id > after_id, Trial.c.state == "RUNNING"]
        if include:
            changed.append(Trial.c.id.in_(sorted(include)))
        query = query.where(or_(*changed))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(Trial.c.number, Value.c.key, Value.c.step)).all()
    curves: dict[int, TrialCurve] = {}
    for trial_id, number, state, key, step, value in rows:
        curve = curves.get(trial_id)
        if curve is None:
            curve = curves[trial_id] = TrialCurve(trial_id, number, state)
        curve.add(key, step, value)
    return list(curves.values())


def _read_learning_curves_public(
    store: Any, study_id: int, after_id: int | None, include: Collection[int]
) -> list[TrialCurve]:
    curves = []
    for record in store.trials(study_id):
        if after_id is not None and not (
            record.id > after_id or record.state == "RUNNING" or record.id in include
        ):
            continue
        curve = TrialCurve(record.id, record.number, record.state)
        for key, points in store.intermediate_series(record.id).items():
            for step, value in points:
                curve.add(key, step, value)
        curves.append(curve)
    return curves


_STATES = {
    "COMPLETE": "COMPLETE",
    "PRUNED": "PRUNED",
    "FAILED": "FAIL",
    "RUNNING": "RUNNING",
    "INTERRUPTED": "FAIL",  # never finished: nothing to compare with
}


def _optuna_state(curve: TrialCurve) -> tuple[Any, float | None]:
    """The Optuna state and value of a trial: a COMPLETE trial's value is its last epoch's; one
    completed without per-epoch values has nothing to compare and counts as FAIL."""
    from optuna.trial import TrialState

    state = TrialState[_STATES[curve.state]]
    if state == TrialState.COMPLETE:
        if not curve.values:
            return TrialState.FAIL, None
        return state, curve.values[max(curve.values)]
    return state, None


class StudyMirror:
    """An in-memory Optuna study kept in step with one study of one store.

    Built with one query that reads every trial; :meth:`refresh` reads, in one query, the
    trials not seen yet, the RUNNING ones and those mirrored as RUNNING, and applies what
    changed. This relies on the store's rules: trial ids grow as trials are created, a finished
    trial's state and values never change, and nothing is deleted while the study exists. A
    trial that turns up behind one already mirrored (it would get the wrong Optuna number)
    makes the mirror start over from a full read. Not thread safe.
    """

    def __init__(
        self, store: Any, study_id: int, direction: Direction = Direction.MAXIMIZE
    ) -> None:
        self.study_id = study_id
        self.direction = direction
        self._store = weakref.ref(store)
        self._start(store)

    def serves(self, store: Any, study_id: int) -> bool:
        """Whether this mirrors ``study_id`` of this very store object."""
        return self.study_id == study_id and self._store() is store

    def optuna_trial_id(self, trial_id: int) -> int | None:
        """The Optuna trial id of a store trial (``None`` if the study has no such trial)."""
        return self._optuna_ids.get(trial_id)

    def refresh(self, store: Any) -> None:
        """Read what changed in the store since the last read and apply it."""
        curves = read_learning_curves(
            store, self.study_id, after_id=self._last_id, include=self._running
        )
        if any(c.id not in self._optuna_ids and c.number < self._last_number for c in curves):
            self._start(store)
        else:
            self._apply(curves)

    def _start(self, store: Any) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        name = f"nasplat-study-{self.study_id}"
        self.storage = optuna.storages.InMemoryStorage()
        self.study = optuna.create_study(
            storage=self.storage, study_name=name, direction=self.direction.value
        )
        self._optuna_study_id = self.storage.get_study_id_from_name(name)
        self._optuna_ids: dict[int, int] = {}  # store trial id -> Optuna trial id
        self._running: set[int] = set()  # store ids of the trials mirrored as RUNNING
        self._last_id = 0
        self._last_number = -1
        self._apply(read_learning_curves(store, self.study_id))

    def _apply(self, curves: list[TrialCurve]) -> None:
        for curve in curves:  # in number order
            optuna_id = self._optuna_ids.get(curve.id)
            if optuna_id is None:
                self._add(curve)
            elif curve.id in self._running:
                self._update(optuna_id, curve)

    def _add(self, curve: TrialCurve) -> None:
        from optuna.trial import TrialState, create_trial

        state, value = _optuna_state(curve)
        trial = create_trial(
            state=state, value=value, intermediate_values=curve.values, system_attrs=curve.attrs
        )
        self._optuna_ids[curve.id] = self.storage.create_new_trial(
            self._optuna_study_id, template_trial=trial
        )
        if state == TrialState.RUNNING:
            self._running.add(curve.id)
        self._last_id = max(self._last_id, curve.id)
        self._last_number = max(self._last_number, curve.number)

    def _update(self, optuna_id: int, curve: TrialCurve) -> None:
        from optuna.trial import TrialState

        frozen = self.storage.get_trial(optuna_id)
        for step, value in curve.values.items():
            if frozen.intermediate_values.get(step) != value:
                self.storage.set_trial_intermediate_value(optuna_id, step, value)
        for key, value in curve.attrs.items():
            if frozen.system_attrs.get(key) != value:
                self.storage.set_trial_system_attr(optuna_id, key, value)
        state, value = _optuna_state(curve)
        if state != TrialState.RUNNING:
            self.storage.set_trial_state_values(
                optuna_id, state, None if value is None else [value]
            )
            self._running.discard(curve.id)
