"""Pruners for the ``early-stop`` evaluator: Optuna's pruners, fed from nasplat's store.

nasplat's store stays the source of truth. On every reported epoch :class:`OptunaPruner`
rebuilds a throwaway in-memory Optuna study from the store: one FrozenTrial per trial of the
study (in trial-number order, so Optuna's trial numbers and Hyperband's bracket hashes are
stable), with its state and per-epoch values, then asks Optuna's pruner about the current
trial. The rung values that successive halving records as trial system attributes are
written back to the store as intermediate values under the key ``optuna:<attribute>``, so
the next rebuild sees them.

Reported values are validation accuracies (``train_model`` reports ``val_acc``), so the
throwaway study always maximises, whatever the search's objective.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nasplat.errors import ConfigError
from nasplat.evaluator import Pruner

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


class OptunaPruner(Pruner):
    """A nasplat :class:`Pruner` that asks one of Optuna's pruners, with the store's data.

    Picklable (holds only its name and options; Optuna's object is built on first use).
    """

    def __init__(self, name: str, epochs: int, **options: Any) -> None:
        self.name = canonical_pruner(name)
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

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "epochs": self.epochs, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"], state["epochs"], **state["options"])  # type: ignore[misc]

    def should_prune(
        self, store: Any, study_id: int, trial_id: int, step: int, value: float
    ) -> bool:
        study, current = build_optuna_study(store, study_id, trial_id)
        if current is None:
            return False
        frozen = study._storage.get_trial(current)
        before = dict(frozen.system_attrs)
        prune = bool(self._optuna.prune(study, frozen))
        after = study._storage.get_trial(current).system_attrs
        for key, attr in after.items():
            if before.get(key) != attr and isinstance(attr, int | float):
                store.report_intermediate(trial_id, 0, float(attr), key=ATTR_PREFIX + key)
        return prune


_STATES = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAILED": "FAIL", "RUNNING": "RUNNING"}


def build_optuna_study(store: Any, study_id: int, trial_id: int) -> tuple[Any, int | None]:
    """An in-memory Optuna study mirroring the store's trials; also the current trial's id."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=f"nasplat-study-{study_id}", direction="maximize")
    current = None
    for record in store.trials(study_id):
        series = store.intermediate_series(record.id)
        values = dict(series.get(REPORTED_KEY, []))
        attrs = {
            key[len(ATTR_PREFIX) :]: points[-1][1]
            for key, points in series.items()
            if key.startswith(ATTR_PREFIX)
        }
        state = TrialState[_STATES[record.state]]
        if state == TrialState.COMPLETE and values:
            final = values[max(values)]
        else:
            final = None
        if state == TrialState.COMPLETE and final is None:
            state = TrialState.FAIL  # completed without per-epoch values: nothing to compare
        trial = create_trial(
            state=state, value=final, intermediate_values=values, system_attrs=attrs
        )
        study.add_trial(trial)
        if record.id == trial_id:
            current = study.get_trials(deepcopy=False)[-1]._trial_id
    return study, current
