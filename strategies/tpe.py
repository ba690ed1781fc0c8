"""Tree-structured Parzen Estimator through Optuna, the black-box ``tpe`` strategy.

Optuna is only the sampling engine here (:mod:`strategies.optuna_common`): an in-memory study
driven by ask/tell, whose history is replayed on resume. nasplat's store stays the record of
the search.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.samplers import TPESampler

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from strategies._encoding import decode
from strategies.declared import TPE
from strategies.optuna_common import OptunaStrategy

__all__ = ["TPEStrategy"]


@STRATEGIES.register("tpe", description="Tree-structured Parzen Estimator (Optuna TPESampler)")
class TPEStrategy(OptunaStrategy):
    """TPE over the space's decisions, each a categorical parameter of choice indices.

    Options: ``n_startup_trials`` (10; with a study ``budget`` under 50, ``max(2, budget // 5)``)
    random trials before TPE models the history;
    ``multivariate`` (True) models the decisions jointly; ``constant_liar`` (True) makes
    outstanding asks count as bad results, so parallel workers get different proposals.
    Asking, telling and resume: :class:`strategies.optuna_common.OptunaStrategy`.
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
            n_startup_trials = self.budget_scaled(10, per=5, least=2)
        if n_startup_trials < 0:
            raise ConfigError(f"tpe: n_startup_trials must be >= 0, got {n_startup_trials}")
        self.n_startup_trials = n_startup_trials
        self.multivariate = multivariate
        self.constant_liar = constant_liar
        self._new_study()

    def make_sampler(self) -> TPESampler:
        return UnseenFirstTPESampler(
            self._params_seen,
            n_startup_trials=self.n_startup_trials,
            multivariate=self.multivariate,
            constant_liar=self.constant_liar,
            seed=self.seed,
        )

    def _params_seen(self, params: dict[str, int]) -> bool:
        """Whether the study has seen the genotype of these choice indices (False while
        ``params`` does not name every decision: TPE's independent mode samples one at a
        time). A genotype once seen stays seen, so those are remembered by their indices."""
        if len(params) < len(self.distributions):
            return False
        key = tuple(params[name] for name in self.distributions)
        if key in self._seen_keys:
            return True
        if not self._seen(decode(self.space, key, self._decisions)):
            return False
        self._seen_keys.add(key)
        return True

    def _new_study(self) -> None:
        self._decisions = self.space.decisions()
        self._seen_keys: set[tuple[int, ...]] = set()
        super()._new_study()


class UnseenFirstTPESampler(TPESampler):
    """Optuna's TPE sampler that proposes the best candidate by acquisition *the study has not
    seen*.

    Plain TPE proposes the argmax of its ``n_ei_candidates`` candidates, which late in a search
    is often an architecture already evaluated (or one equivalent to it); each such proposal
    costs a whole TPE fit before the strategy can ask again. Here the seen candidates are ruled
    out of the argmax, and when all of them were seen the same fit draws up to
    ``extra_rounds`` more batches of candidates from its model of the good trials. Only when
    every one of those was seen is the argmax returned as before, and the strategy closes it
    and asks again.
    """

    extra_rounds = 8

    def __init__(self, is_seen: Any, **options: Any) -> None:
        super().__init__(**options)
        self._is_seen = is_seen

    def _compute_acquisition_func(
        self, samples: dict[str, np.ndarray], mpe_below: Any, mpe_above: Any
    ) -> np.ndarray:
        raw = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
        values = self._unseen_first(samples, raw)
        for _ in range(self.extra_rounds):
            if np.isfinite(values).any():
                break
            more = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
            more_raw = super()._compute_acquisition_func(more, mpe_below, mpe_above)
            for name in samples:  # the caller takes its proposal from this same dict
                samples[name] = np.concatenate([samples[name], more[name]])
            raw = np.concatenate([raw, more_raw])
            values = np.concatenate([values, self._unseen_first(more, more_raw)])
        # all seen: the plain argmax, which the strategy closes
        return values if np.isfinite(values).any() else raw

    def _unseen_first(self, samples: dict[str, np.ndarray], raw: np.ndarray) -> np.ndarray:
        """A copy of the acquisition values ``raw`` with the seen candidates ranked above the
        best unseen one set to -inf (all -inf when every candidate was seen)."""
        values = raw.copy()
        names = list(samples)
        for i in np.argsort(-values, kind="stable"):
            if not self._is_seen({name: int(samples[name][i]) for name in names}):
                break
            values[i] = -np.inf
        return values
