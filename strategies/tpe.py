"""Tree-structured Parzen Estimator through Optuna, the black-box ``tpe`` strategy.

Optuna is only the sampling engine here: an in-memory study driven by ask/tell, whose
history is replayed on resume. nasplat's store stays the record of the search.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.samplers import TPESampler
from optuna.trial import TrialState, create_trial

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from nasplat.strategy import Observation, Strategy
from strategies._encoding import PendingAsks, decode, encode, quiet_logger
from strategies.declared import TPE

__all__ = ["TPEStrategy"]
SEEN_TRIES = 2
"""Optuna proposals of seen architectures before a uniform sample is used instead (each Optuna
ask costs time that grows with the history, and a closed FAIL does not move TPE's model)."""


def _random_state(rng: Any) -> list[Any]:
    """A numpy ``RandomState``'s state as JSON data."""
    kind, keys, pos, has_gauss, gauss = rng.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _set_random_state(rng: Any, state: list[Any]) -> None:
    kind, keys, pos, has_gauss, gauss = state
    rng.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))


@STRATEGIES.register("tpe", description="Tree-structured Parzen Estimator (Optuna TPESampler)")
class TPEStrategy(Strategy):
    """TPE over the space's decisions, each a categorical parameter of choice indices.

    Options: ``n_startup_trials`` (10; with a study ``budget`` under 50, ``max(2, budget // 5)``)
    random trials before TPE models the history;
    ``multivariate`` (True) models the decisions jointly; ``constant_liar`` (True) makes
    outstanding asks count as bad results, so parallel workers get different proposals.

    A FAILED observation (or one without a value) is told to Optuna as FAIL, PRUNED as
    PRUNED. A genotype told without having been asked is added as a finished trial.
    Resume replays the history: every trial in ask order (finished ones with their result,
    outstanding ones as RUNNING trials that a later ``tell`` completes), then the samplers'
    RNG states, so the next asks are those the original would have made.
    """

    name = "tpe"
    OPTIONS = TPE
    takes_budget = True

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        n_startup_trials: int | None = None,
        multivariate: bool = True,
        constant_liar: bool = True,
        budget: int | None = None,
    ) -> None:
        super().__init__(space, seed=seed, direction=direction, budget=budget)
        if n_startup_trials is None:  # 10, at most a fifth of the budget (at least 2)
            n_startup_trials = 10 if self.budget is None else max(2, min(10, self.budget // 5))
        if n_startup_trials < 0:
            raise ConfigError(f"tpe: n_startup_trials must be >= 0, got {n_startup_trials}")
        self.n_startup_trials = n_startup_trials
        self.multivariate = multivariate
        self.constant_liar = constant_liar
        self.distributions = {
            d.name: CategoricalDistribution(tuple(range(len(d.choices)))) for d in space.decisions()
        }
        self._new_study()

    def _new_study(self) -> None:
        self.sampler = TPESampler(
            n_startup_trials=self.n_startup_trials,
            multivariate=self.multivariate,
            constant_liar=self.constant_liar,
            seed=self.seed,
        )
        with quiet_logger("optuna"):
            self.study = optuna.create_study(
                storage=None, sampler=self.sampler, direction=self.direction.value
            )
        # One entry per Optuna trial, in trial-number order: [indices, state name, value].
        self._trials: list[list[Any]] = []
        self._pending = PendingAsks()  # payload: the Optuna trial number

    def _params(self, genotype: Genotype) -> dict[str, int]:
        return dict(zip(self.distributions, encode(self.space, genotype), strict=True))

    def ask(self) -> Genotype:
        """Optuna's next proposal the study has not seen: one it has is closed as FAIL (TPE
        leaves failed trials out of its model), so each architecture enters Optuna's history
        once. A FAIL teaches TPE nothing, so it tends to propose the same again: after
        ``SEEN_TRIES`` seen proposals the ask falls back to a uniform sample (told to Optuna
        as a trial it did not ask for)."""
        return self.fresh(self._ask_optuna, reject=self._close_seen, tries=SEEN_TRIES)

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

    @staticmethod
    def _result(observation: Observation) -> tuple[TrialState, float | None]:
        value = observation.value
        if value is None or value != value or observation.state == "FAILED":
            return TrialState.FAIL, None
        if observation.state == "PRUNED":
            return TrialState.PRUNED, None
        return TrialState.COMPLETE, float(value)

    def tell(self, observation: Observation) -> None:
        state, value = self._result(observation)
        found, number = self._pending.pop(observation.genotype)
        with quiet_logger("optuna"):
            if found:
                self.study.tell(number, value, state=state)
                self._trials[number][1:] = [state.name, value]
            else:
                params = self._params(observation.genotype)
                self._add_trial(list(params.values()), state, value)
                self._trials.append([list(params.values()), state.name, value])

    def _add_trial(self, indices: list[int], state: TrialState, value: float | None) -> None:
        params = dict(zip(self.distributions, indices, strict=True))
        self.study.add_trial(
            create_trial(state=state, value=value, params=params, distributions=self.distributions)
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "trials": [list(t) for t in self._trials],
            "pending": self._pending.to_list(),
            "sampler_rng": _random_state(self.sampler._rng.rng),
            "random_sampler_rng": _random_state(self.sampler._random_sampler._rng.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._new_study()
        with quiet_logger("optuna"):
            for indices, state_name, value in state["trials"]:
                self._add_trial(list(indices), TrialState[state_name], value)
                self._trials.append([list(indices), state_name, value])
        self._pending = PendingAsks.from_list(state["pending"])
        _set_random_state(self.sampler._rng.rng, state["sampler_rng"])
        _set_random_state(self.sampler._random_sampler._rng.rng, state["random_sampler_rng"])
