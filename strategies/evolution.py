"""Regularized (aging) evolution, Real et al. 2019 ("Regularized Evolution for Image
Classifier Architecture Search").

The population is a queue of at most ``population_size`` evaluated genotypes. Until it is
full, genotypes are sampled at random. Afterwards each child is a mutation of the best of
``tournament_size`` members drawn at random; when the child's result arrives it joins the
queue and, with ``aging`` on, the *oldest* member leaves (with aging off, the worst leaves,
i.e. non-regularized tournament evolution). Results may arrive out of order: each arrival
is one population step. Failed children are not added. A child the study has already
evaluated is mutated again (see ``Strategy.fresh``), so no proposal is spent on it.

Defaults scale with the study's trial ``budget`` (when the study passes it): the population is
``max(2, min(20, budget // 4))``, so at least three quarters of the trials are mutations (with
the README's ``--budget 20``: 5 random, then 15 children); 20 without a budget or from 80 on.
The tournament is ``min(10, population)``. Explicit options win.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from nasplat.strategy import Observation, Strategy


@STRATEGIES.register("evolution", description="regularized (aging) evolution, Real et al. 2019")
class RegularizedEvolution(Strategy):
    """Aging evolution with tournament selection and single-decision mutation."""

    name = "evolution"
    OPTIONS = (
        Option("population_size", "int", None, "population (default 20; at most budget / 4)"),
        Option(
            "tournament_size", "int", None, "tournament sample (default 10; at most the population)"
        ),
        Option("aging", "bool", True, "remove the oldest member (aging) rather than the worst"),
    )
    takes_budget = True

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        population_size: int | None = None,
        tournament_size: int | None = None,
        aging: bool = True,
        budget: int | None = None,
    ) -> None:
        super().__init__(space, seed=seed, direction=direction, budget=budget)
        if population_size is None:  # 20 (Real et al.'s NB201 setting), a quarter of the budget
            population_size = 20 if self.budget is None else max(2, min(20, self.budget // 4))
        if tournament_size is None:  # 10 (tuned on NB201), at most the population
            tournament_size = min(10, int(population_size))
        if population_size < 2:
            raise ConfigError(f"population_size must be >= 2, got {population_size}")
        if not 1 <= tournament_size <= population_size:
            raise ConfigError(
                f"tournament_size must be in [1, population_size], got {tournament_size}"
            )
        self.population_size = int(population_size)
        self.tournament_size = int(tournament_size)
        self.aging = bool(aging)
        self.population: deque[tuple[Genotype, float]] = deque()
        self.asked = 0

    def ask(self) -> Genotype:
        self.asked += 1
        filling = len(self.population) < self.population_size
        if (filling and self.asked <= self.population_size) or not self.population:
            # the initial population, or every early trial failed: keep exploring
            return self.fresh(lambda: self.space.sample(self.rng))
        k = min(self.tournament_size, len(self.population))
        contenders = self.rng.sample(list(self.population), k)
        parent = max(contenders, key=lambda member: self.score(member[1]))[0]
        return self.fresh(lambda: self.space.mutate(parent, self.rng))

    def tell(self, observation: Observation) -> None:
        if observation.value is None or observation.state == "FAILED":
            return
        self.population.append((observation.genotype, float(observation.value)))
        if len(self.population) > self.population_size:
            if self.aging:
                self.population.popleft()
            else:
                worst = min(self.population, key=lambda member: self.score(member[1]))
                self.population.remove(worst)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "asked": self.asked,
            "population": [[g.to_dict(), v] for g, v in self.population],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.asked = int(state["asked"])
        self.population = deque((Genotype.from_dict(g), float(v)) for g, v in state["population"])
