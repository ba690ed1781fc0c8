"""Optuna samplers as black-box strategies (``tpe``, ``nsga2``): an in-memory Optuna study
driven by ask and tell, whose history is replayed on resume.

Optuna is only the sampling engine: nasplat's store stays the record of the search. Each
decision is a categorical parameter over its choice indices. A subclass says which sampler
(:meth:`OptunaStrategy.make_sampler`); this base asks, tells (one value, or every objective
of a multi-objective study) and checkpoints.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.trial import TrialState, create_trial

from nasplat.direction import Direction
from nasplat.genotype import Genotype
from nasplat.space import SearchSpace
from nasplat.strategy import Observation, Strategy
from strategies._encoding import PendingAsks, decode, encode, quiet_logger

__all__ = ["OptunaStrategy"]

Result = float | list[float] | None
"""What Optuna is told: one value, one per objective, or none (FAIL, PRUNED)."""


def random_state(rng: Any) -> list[Any]:
    """A numpy ``RandomState``'s state as JSON data."""
    kind, keys, pos, has_gauss, gauss = rng.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def set_random_state(rng: Any, state: list[Any]) -> None:
    kind, keys, pos, has_gauss, gauss = state
    rng.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))


class OptunaStrategy(Strategy):
    """An Optuna sampler over the space's decisions, each a categorical parameter of choice
    indices; every objective of a multi-objective study when the subclass is
    ``multi_objective``.

    Proposals the study has seen are closed as FAIL (samplers leave failed trials out of
    their models), so each architecture enters Optuna's history once; after ``seen_tries``
    seen proposals in a row the ask falls back to a uniform sample, told to Optuna as a trial
    it did not ask for. FAILED and INFEASIBLE observations (or ones without a value) are told as
    FAIL, PRUNED ones as PRUNED. A genotype told without having been asked is added as a
    finished trial. Resume replays the history: every trial in ask order (finished ones with
    their result, outstanding ones as RUNNING trials that a later ``tell`` completes), with the
    system attributes the sampler gave them and the study's, then the samplers' RNG states, so
    the next asks are those the original would have made. Optuna's per-trial INFO logging is
    silenced while the strategy calls Optuna.
    """

    seen_tries: ClassVar[int] = 2
    """Seen proposals before a uniform sample is used instead (a closed FAIL does not move a
    model-based sampler, which tends to propose the same again)."""
    replayed_attrs: ClassVar[str | None] = None
    """The prefix of the system attributes (of trials and of the study) the sampler's state
    lives in, checkpointed and restored with the history (None: none, only caches)."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        budget: int | None = None,
        objectives: Sequence[tuple[str, str | Direction]] | None = None,
    ) -> None:
        super().__init__(
            space, seed=seed, direction=direction, budget=budget, objectives=objectives
        )
        self.distributions = {
            d.name: CategoricalDistribution(tuple(range(len(d.choices)))) for d in space.decisions()
        }
        self.directions = (
            [way for _, way in self.objectives] if self.is_multi_objective else [self.direction]
        )

    @abstractmethod
    def make_sampler(self) -> BaseSampler:
        """A fresh sampler, seeded with ``self.seed``."""

    def _new_study(self) -> None:
        """A fresh sampler and study (subclasses call it at the end of ``__init__``)."""
        self.sampler = self.make_sampler()
        with quiet_logger("optuna"):
            self.study = optuna.create_study(
                storage=None, sampler=self.sampler, directions=[d.value for d in self.directions]
            )
        # One entry per Optuna trial, in trial-number order: [indices, state name, result].
        self._trials: list[list[Any]] = []
        self._pending = PendingAsks()  # payload: the Optuna trial number

    def ask(self) -> Genotype:
        """The sampler's next proposal the study has not seen (see the class doc)."""
        return self.fresh(self._ask_optuna, reject=self._close_seen, tries=self.seen_tries)

    def _ask_optuna(self) -> Genotype:
        with quiet_logger("optuna"):
            trial = self.study.ask(self.distributions)
        indices = [trial.params[name] for name in self.distributions]
        genotype = decode(self.space, indices)
        self._trials.append([indices, TrialState.RUNNING.name, None])
        self._pending.add(genotype, trial.number)
        return genotype

    def _close_seen(self, genotype: Genotype) -> None:
        self.tell(Observation(genotype, None, "FAILED"))

    def _result(self, observation: Observation) -> tuple[TrialState, Result]:
        values = self.objective_values(observation)  # oriented: larger is better
        if values is None:
            return TrialState.FAIL, None
        if observation.state == "PRUNED":
            return TrialState.PRUNED, None
        raw = [way.oriented(v) for v, way in zip(values, self.directions, strict=True)]
        return TrialState.COMPLETE, raw if self.is_multi_objective else raw[0]

    def tell(self, observation: Observation) -> None:
        state, result = self._result(observation)
        found, number = self._pending.pop(observation.genotype)
        with quiet_logger("optuna"):
            if found:
                self.study.tell(number, result, state=state)
                self._trials[number][1:] = [state.name, result]
            else:
                indices = list(encode(self.space, observation.genotype))
                self._add_trial(indices, state, result)
                self._trials.append([indices, state.name, result])

    def _add_trial(
        self,
        indices: list[int],
        state: TrialState,
        result: Result,
        system_attrs: dict[str, Any] | None = None,
    ) -> None:
        params = dict(zip(self.distributions, indices, strict=True))
        many = isinstance(result, list)
        self.study.add_trial(
            create_trial(
                state=state,
                value=None if many else result,
                values=result if many else None,
                params=params,
                distributions=self.distributions,
                system_attrs=system_attrs,
            )
        )

    def rng_states(self) -> dict[str, Any]:
        """The numpy ``RandomState`` objects of the sampler, by checkpoint key."""
        return {
            "sampler_rng": self.sampler._rng.rng,  # type: ignore[attr-defined]
            "random_sampler_rng": self.sampler._random_sampler._rng.rng,  # type: ignore[attr-defined]
        }

    def state_dict(self) -> dict[str, Any]:
        state = {
            **super().state_dict(),
            "trials": [list(t) for t in self._trials],
            "pending": self._pending.to_list(),
            **{key: random_state(rng) for key, rng in self.rng_states().items()},
        }
        prefix = self.replayed_attrs
        if prefix is not None:
            trials = self.study.get_trials(deepcopy=False)
            state["system_attrs"] = [_starting(t.system_attrs, prefix) for t in trials]
            storage, study_id = self.study._storage, self.study._study_id
            state["study_system_attrs"] = _starting(
                storage.get_study_system_attrs(study_id), prefix
            )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._new_study()
        attrs = state.get("system_attrs") or [None] * len(state["trials"])
        with quiet_logger("optuna"):
            for (indices, state_name, result), system in zip(state["trials"], attrs, strict=True):
                self._add_trial(list(indices), TrialState[state_name], result, system)
                self._trials.append([list(indices), state_name, result])
        storage, study_id = self.study._storage, self.study._study_id
        for key, value in state.get("study_system_attrs", {}).items():
            storage.set_study_system_attr(study_id, key, value)
        self._pending = PendingAsks.from_list(state["pending"])
        for key, rng in self.rng_states().items():
            set_random_state(rng, state[key])


def _starting(attrs: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {key: value for key, value in attrs.items() if key.startswith(prefix)}
