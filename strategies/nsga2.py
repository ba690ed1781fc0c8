"""NSGA-II (Deb et al. 2002) through Optuna's ``NSGAIISampler``, the black-box ``nsga2``
strategy: a genetic algorithm for the Pareto front of a multi-objective study.

Each generation of ``population_size`` completed children is bred from the parents that
survive non-dominated sorting and crowding-distance selection over the previous generation and
its parents: uniform crossover of two parents (probability ``crossover_prob``, each decision
swapped with probability ``swapping_prob``), then each decision resampled with probability
``mutation_prob`` (default ``1 / decisions``). The first generation is random. With one
objective it is a plain elitist genetic algorithm. Optuna drives the generations; asking,
telling and resume are :class:`strategies.optuna_common.OptunaStrategy`'s (the generation of
every trial and the cached parent populations are part of the replayed history).
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna.samplers import NSGAIISampler

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from strategies.declared import NSGA2
from strategies.optuna_common import OptunaStrategy

__all__ = ["NSGA2Strategy"]


@STRATEGIES.register("nsga2", description="NSGA-II for the Pareto front (Optuna NSGAIISampler)")
class NSGA2Strategy(OptunaStrategy):
    """NSGA-II over the space's decisions (every objective of the study).

    Options: ``population_size`` (children per generation; 50, Optuna's default, or with a
    study budget ``max(4, min(50, budget // 10))``: ten generations, tuned on NAS-Bench-201,
    docs/benchmarks.md), ``mutation_prob`` (None: one decision per child on average),
    ``crossover_prob`` (0.9), ``swapping_prob`` (0.5).
    """

    name = "nsga2"
    OPTIONS = NSGA2
    takes_budget = True
    multi_objective = True
    seen_tries = 20  # a child equal to an evaluated architecture is common and cheap to redraw
    replayed_attrs = "NSGAIISampler:"  # each trial's generation, each generation's parents

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        objectives: Sequence[tuple[str, str | Direction]] | None = None,
        population_size: int | None = None,
        mutation_prob: float | None = None,
        crossover_prob: float = 0.9,
        swapping_prob: float = 0.5,
        budget: int | None = None,
    ) -> None:
        super().__init__(
            space, seed=seed, direction=direction, budget=budget, objectives=objectives
        )
        if population_size is None:
            population_size = self.budget_scaled(50, per=10, least=4)
        if int(population_size) < 2:
            raise ConfigError(f"nsga2: population_size must be >= 2, got {population_size}")
        for option, value in (
            ("mutation_prob", mutation_prob),
            ("crossover_prob", crossover_prob),
            ("swapping_prob", swapping_prob),
        ):
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"nsga2: {option} must be in [0, 1], got {value}")
        self.population_size = int(population_size)
        self.mutation_prob = None if mutation_prob is None else float(mutation_prob)
        self.crossover_prob = float(crossover_prob)
        self.swapping_prob = float(swapping_prob)
        self._new_study()

    def make_sampler(self) -> NSGAIISampler:
        return NSGAIISampler(
            population_size=self.population_size,
            mutation_prob=self.mutation_prob,
            crossover_prob=self.crossover_prob,
            swapping_prob=self.swapping_prob,
            seed=self.seed,
        )
