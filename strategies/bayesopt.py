"""Bayesian optimisation with a Gaussian process on the choices, the black-box ``bayesopt``
strategy.

A sample-efficient strategy for small budgets, in the family of BANANAS (White, Neiswanger and
Savani, 2021: a predictor of the results so far, candidates made by mutating the best evaluated
architectures, the next one picked by an acquisition function), with a Gaussian process in
place of BANANAS' ensemble of networks, as in NASBOT and COMBO:

- **Model.** A Gaussian process on the one-hot choice indices of each architecture's
  *canonical* form (so equivalent genotypes are one point), with the exponential Hamming kernel
  ``exp(-d / (D * lengthscale))`` (``d`` decisions differ, out of ``D``). The results are
  ranked and mapped to normal quantiles first (a copula transform: the long tail of broken
  architectures does not flatten the top). The lengthscale and noise are chosen on a small
  grid by marginal likelihood (the amplitude in closed form).
- **Candidates.** The genotypes one decision away from each of the ``parents`` best results
  (at most ``neighbours`` of each: a random subset of a larger neighbourhood), and
  ``n_random`` random genotypes (a pool kept between asks); architectures the study has,
  or that are asked and not yet told, are left out.
- **Acquisition.** Expected improvement over the best result (``acquisition="ucb"``: the
  upper confidence bound ``mean + beta * sd``).

The first ``n_init`` asks are random. Only the values the strategy is told are used. NumPy and
SciPy do the work, BLAS limited to one thread while they do (a process pool of searches would
otherwise oversubscribe the cores on matrices this small).
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from nasplat.strategy import Observation, Strategy
from strategies._encoding import encode, oriented_score
from strategies.declared import BAYESOPT

__all__ = ["BayesOpt", "HammingGP"]

ACQUISITIONS = ("ei", "ucb")
INFO_CACHE = 200_000
"""Genotypes whose canonical hash and encoding are remembered (cleared past this)."""


class HammingGP:
    """A Gaussian process on choice indices with the exponential Hamming kernel.

    ``sizes`` is the number of choices of each decision. ``fit`` ranks the targets and maps
    them to normal quantiles (ties share a rank); ``predict`` returns the posterior mean and
    standard deviation on that scale (larger is better, as the targets).
    """

    LENGTHSCALES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    """Of the Hamming distance as a fraction of the decisions."""
    NOISES = (1e-3, 1e-2, 0.1, 0.3)
    """Of the signal variance."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = [int(s) for s in sizes]
        self.offsets = np.cumsum([0, *self.sizes[:-1]]).astype(int)
        self.width = sum(self.sizes)
        self.decisions = max(1, len(self.sizes))
        self.hyper: tuple[float, float] | None = None  # (lengthscale, noise) of the last fit
        self.best = 0.0  # the best target, on the model's scale

    def features(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        x = np.zeros((len(rows), self.width))
        if rows:
            x[np.arange(len(rows))[:, None], self.offsets + np.asarray(rows, dtype=int)] = 1.0
        return x

    def kernel(self, a: np.ndarray, b: np.ndarray, lengthscale: float) -> np.ndarray:
        distance = (self.decisions - a @ b.T) / self.decisions
        return np.exp(-distance / lengthscale)

    def fit(
        self,
        rows: Sequence[Sequence[int]],
        values: Sequence[float],
        hyper: tuple[float, float] | None = None,
    ) -> HammingGP:
        """Fit to ``values`` (larger is better) at ``rows``; ``hyper`` (lengthscale, noise)
        skips the grid search."""
        from scipy.linalg import cho_solve

        y = copula(np.asarray(values, dtype=float))
        self.x = self.features(rows)
        self.best = float(y.max())
        n = len(y)
        grid = (
            [hyper]
            if hyper is not None
            else [(ls, noise) for ls in self.LENGTHSCALES for noise in self.NOISES]
        )
        best: tuple[float, Any, Any, float, tuple[float, float]] | None = None
        for lengthscale in dict.fromkeys(ls for ls, _ in grid):
            gram = self.kernel(self.x, self.x, lengthscale)
            for ls, noise in grid:
                if ls != lengthscale:
                    continue
                try:
                    chol = np.linalg.cholesky(gram + noise * np.eye(n))
                except np.linalg.LinAlgError:
                    continue
                alpha = cho_solve((chol, True), y)
                amplitude = max(float(y @ alpha) / n, 1e-12)
                # negative log marginal likelihood, amplitude profiled out (constants dropped)
                nll = 0.5 * n * math.log(amplitude) + float(np.log(np.diag(chol)).sum())
                if best is None or nll < best[0]:
                    best = (nll, chol, alpha, amplitude, (ls, noise))
        if best is None:  # pragma: no cover - the largest noise always factorises
            raise np.linalg.LinAlgError("no kernel setting factorised")
        _, self.chol, self.alpha, self.amplitude, self.hyper = best
        return self

    def predict(self, rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        from scipy.linalg import solve_triangular

        assert self.hyper is not None, "fit first"
        cross = self.kernel(self.features(rows), self.x, self.hyper[0])
        mean = cross @ self.alpha
        v = solve_triangular(self.chol, cross.T, lower=True)
        variance = np.maximum(1.0 - (v * v).sum(axis=0), 1e-12) * self.amplitude
        return mean, np.sqrt(variance)


def copula(values: np.ndarray) -> np.ndarray:
    """``values`` ranked (ties share their mean rank) and mapped to standard normal quantiles."""
    from scipy.special import ndtri

    n = len(values)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ranks = np.bincount(inverse, weights=ranks)[inverse] / counts[inverse]
    return ndtri((ranks + 0.5) / n)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    from scipy.special import ndtr

    z = (mean - best) / sd
    return (mean - best) * ndtr(z) + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


_BLAS: Any = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread for the duration (threadpoolctl, installed with scikit-learn)."""
    global _BLAS
    if _BLAS is None:
        import scipy.linalg  # noqa: F401 - loads SciPy's own BLAS, for the controller to find

        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:  # pragma: no cover - scikit-learn brings it
            _BLAS = False
    if _BLAS is False:
        yield
        return
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


@STRATEGIES.register(
    "bayesopt",
    description="Gaussian-process Bayesian optimisation over mutations of the best (BANANAS-like)",
)
class BayesOpt(Strategy):
    """Bayesian optimisation over one-decision neighbours of the best results.

    Options: ``n_init`` random genotypes first (10; with a study ``budget`` under 100,
    ``max(2, budget // 10)``); ``parents`` (10): the best results whose one-decision neighbours
    are candidates, at most ``neighbours`` (50) of each (a random subset of a larger
    neighbourhood); ``n_random`` (100) random candidates besides; ``acquisition`` (``ei``:
    expected improvement; ``ucb``: ``mean + beta * sd``); ``beta`` (1.0); ``max_points``
    (300): the model is fitted to at most this many results (the best half of them and an even
    spread of the rest).
    """

    name = "bayesopt"
    OPTIONS = BAYESOPT
    takes_budget = True

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        n_init: int | None = None,
        parents: int = 10,
        neighbours: int = 50,
        n_random: int = 100,
        acquisition: str = "ei",
        beta: float = 1.0,
        max_points: int = 300,
        budget: int | None = None,
    ) -> None:
        super().__init__(space, seed=seed, direction=direction, budget=budget)
        if n_init is None:
            n_init = self.budget_scaled(10, per=10, least=2)
        if n_init < 1:
            raise ConfigError(f"bayesopt: n_init must be >= 1, got {n_init}")
        if parents < 0 or n_random < 0 or parents + n_random == 0:
            raise ConfigError(
                f"bayesopt: parents and n_random must be >= 0, not both 0 "
                f"(got {parents} and {n_random})"
            )
        if neighbours < 1:
            raise ConfigError(f"bayesopt: neighbours must be >= 1, got {neighbours}")
        if acquisition not in ACQUISITIONS:
            raise ConfigError(
                f"bayesopt: acquisition must be one of {', '.join(ACQUISITIONS)}, "
                f"got {acquisition!r}"
            )
        if beta < 0:
            raise ConfigError(f"bayesopt: beta must be >= 0, got {beta}")
        if max_points < 2:
            raise ConfigError(f"bayesopt: max_points must be >= 2, got {max_points}")
        self.n_init = int(n_init)
        self.parents = int(parents)
        self.n_random = int(n_random)
        self.acquisition = acquisition
        self.beta = float(beta)
        self.max_points = int(max_points)
        self.max_neighbours = int(neighbours)
        decisions = space.decisions()
        self.model = HammingGP([len(d.choices) for d in decisions])
        self._names = [d.name for d in decisions]
        self._index = [{(type(c), c): k for k, c in enumerate(d.choices)} for d in decisions]
        self.history: list[tuple[Genotype, float]] = []  # results, in the order told
        self.told: set[str] = set()  # canonical hashes told (results, failures, infeasible)
        self.pending: dict[str, int] = {}  # canonical hash -> asks not yet told
        self.randoms: list[Genotype] = []  # the random part of the candidate pool
        self.asked = 0
        self.hyper: tuple[float, float] | None = None  # kernel setting of the last grid search
        self.hyper_at = 0  # results when the grid was last searched
        self._info: dict[Genotype, tuple[str, tuple[int, ...]]] = {}
        self._neighbours: dict[Genotype, list[Genotype]] = {}

    # --- encoding ------------------------------------------------------------------------------
    def info(self, genotype: Genotype) -> tuple[str, tuple[int, ...]]:
        """The canonical form's hash and choice indices (remembered)."""
        known = self._info.get(genotype)
        if known is None:
            if len(self._info) >= INFO_CACHE:
                self._info.clear()
            canonical = self.space.canonicalize(genotype)
            known = self._info[genotype] = (canonical.sha, self.encode(canonical))
        return known

    def encode(self, genotype: Genotype) -> tuple[int, ...]:
        """One choice index per decision (:func:`strategies._encoding.encode`, by lookup)."""
        try:
            return tuple(
                index[(type(value), value)]
                for index, value in zip(
                    self._index, (genotype[name] for name in self._names), strict=True
                )
            )
        except (KeyError, TypeError):
            return encode(self.space, genotype)  # raises InvalidGenotypeError naming it

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """The genotypes one decision away, at most ``neighbours`` of them (a random subset of
        a larger neighbourhood). Drawn and repaired with a generator seeded by the genotype, so
        the list does not depend on what was asked before."""
        known = self._neighbours.get(genotype)
        if known is None:
            if len(self._neighbours) >= INFO_CACHE:
                self._neighbours.clear()
            rng = random.Random(genotype.sha)
            changes = [
                (d.name, choice)
                for d, index in zip(self.space.decisions(), self.encode(genotype), strict=True)
                for k, choice in enumerate(d.choices)
                if k != index
            ]
            if len(changes) > self.max_neighbours:
                changes = rng.sample(changes, self.max_neighbours)
            known = self._neighbours[genotype] = [
                self.space.repair(genotype.replace({name: choice}), rng) for name, choice in changes
            ]
        return known

    # --- asking --------------------------------------------------------------------------------
    def candidates(self) -> list[tuple[Genotype, tuple[int, ...]]]:
        """Neighbours of the ``parents`` best results and the random pool, one genotype per
        architecture, none told or pending."""
        pool: dict[str, tuple[Genotype, tuple[int, ...]]] = {}

        def add(genotype: Genotype) -> None:
            sha, indices = self.info(genotype)
            if sha not in pool and sha not in self.told and sha not in self.pending:
                pool[sha] = (genotype, indices)

        ranked = sorted(range(len(self.history)), key=lambda i: -self.history[i][1])
        for i in ranked[: self.parents]:
            for genotype in self.neighbours(self.history[i][0]):
                add(genotype)
        self.randoms = [g for g in self.randoms if self.info(g)[0] not in self.told]
        while len(self.randoms) < self.n_random:
            self.randoms.append(self.space.sample(self.rng))
        for genotype in self.randoms:
            add(genotype)
        return list(pool.values())

    def fit(self) -> HammingGP:
        """The model fitted to the results (at most ``max_points``; the kernel's grid searched
        again once the results have grown by a tenth since the last search)."""
        items = [(self.info(g)[1], score) for g, score in self.history]
        if len(items) > self.max_points:
            items.sort(key=lambda item: -item[1])
            top = self.max_points // 2
            rest = items[top:]
            spread = np.linspace(0, len(rest) - 1, self.max_points - top).round().astype(int)
            items = items[:top] + [rest[i] for i in spread]
        n = len(self.history)
        regrid = self.hyper is None or n >= 1.1 * self.hyper_at
        self.model.fit(
            [rows for rows, _ in items], [s for _, s in items], None if regrid else self.hyper
        )
        if regrid:
            self.hyper, self.hyper_at = self.model.hyper, n
        return self.model

    def ask(self) -> Genotype:
        self.asked += 1
        if self.asked <= self.n_init or len(self.history) < 2:
            return self._pend(self.fresh(lambda: self.space.sample(self.rng)))
        pool = self.candidates()
        if not pool:
            return self._pend(self.fresh(lambda: self.space.sample(self.rng)))
        with one_blas_thread():
            model = self.fit()
            mean, sd = model.predict([indices for _, indices in pool])
            if self.acquisition == "ei":
                score = expected_improvement(mean, sd, model.best)
            else:
                score = mean + self.beta * sd
        for k in np.argsort(-score, kind="stable"):
            genotype = pool[int(k)][0]
            if not self._seen(genotype):
                return self._pend(genotype)
            self.told.add(self.info(genotype)[0])  # the study has it (another run of it)
        return self._pend(self.fresh(lambda: self.space.sample(self.rng)))

    def _pend(self, genotype: Genotype) -> Genotype:
        sha = self.info(genotype)[0]
        self.pending[sha] = self.pending.get(sha, 0) + 1
        return genotype

    def tell(self, observation: Observation) -> None:
        sha = self.info(observation.genotype)[0]
        if sha in self.pending:
            self.pending[sha] -= 1
            if not self.pending[sha]:
                del self.pending[sha]
        if sha in self.told:
            return  # an architecture told already (a duplicate ask answered from the book)
        self.told.add(sha)
        score = oriented_score(observation, self.direction)
        if score is None or observation.state not in ("COMPLETE", "PRUNED"):
            return  # failed or infeasible: never asked again, not a result
        self.history.append((observation.genotype, score))

    # --- resume --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "asked": self.asked,
            "history": [[g.to_dict(), s] for g, s in self.history],
            "told": sorted(self.told),
            "pending": dict(sorted(self.pending.items())),
            "randoms": [g.to_dict() for g in self.randoms],
            "hyper": None if self.hyper is None else list(self.hyper),
            "hyper_at": self.hyper_at,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.asked = int(state["asked"])
        self.history = [(Genotype.from_dict(g), float(s)) for g, s in state["history"]]
        self.told = set(state["told"])
        self.pending = {str(k): int(v) for k, v in state["pending"].items()}
        self.randoms = [Genotype.from_dict(g) for g in state["randoms"]]
        hyper = state["hyper"]
        self.hyper = None if hyper is None else (float(hyper[0]), float(hyper[1]))
        self.hyper_at = int(state["hyper_at"])
