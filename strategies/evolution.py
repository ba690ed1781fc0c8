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

Multi-objective studies (``--objective val_acc,params``): the same aging population, ranked
for the Pareto front as NSGA-II ranks (Deb et al. 2002): a member is better when it lies on a
better non-dominated front of the population, then when its crowding distance within that front
is larger (it stands in a less crowded part of the front). The tournament's winner is the best
so ranked; without aging the worst so ranked leaves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.pareto import crowding_distances, fronts_of
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from nasplat.strategy import Observation, Strategy


@STRATEGIES.register("evolution", description="regularized (aging) evolution, Real et al. 2019")
class RegularizedEvolution(Strategy):
    """Aging evolution with tournament selection and single-decision mutation; Pareto ranking
    of the population in a multi-objective study."""

    name = "evolution"
    OPTIONS = (
        Option("population_size", "int", None, "population (default 20; at most budget / 4)"),
        Option(
            "tournament_size", "int", None, "tournament sample (default 10; at most the population)"
        ),
        Option("aging", "bool", True, "remove the oldest member (aging) rather than the worst"),
    )
    takes_budget = True
    multi_objective = True

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
        objectives: Sequence[tuple[str, str | Direction]] | None = None,
    ) -> None:
        super().__init__(
            space, seed=seed, direction=direction, budget=budget, objectives=objectives
        )
        if population_size is None:  # 20 (Real et al.'s NB201 setting), a quarter of the budget
            population_size = self.budget_scaled(20, per=4, least=2)
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
        # (genotype, value), or (genotype, oriented objective values) in a multi-objective study
        self.population: deque[tuple[Genotype, Any]] = deque()
        self.asked = 0

    def ask(self) -> Genotype:
        self.asked += 1
        filling = len(self.population) < self.population_size
        if (filling and self.asked <= self.population_size) or not self.population:
            # the initial population, or every early trial failed: keep exploring
            return self.fresh(lambda: self.space.sample(self.rng))
        k = min(self.tournament_size, len(self.population))
        members = list(self.population)
        merit = self._merit(members)
        contenders = self.rng.sample(range(len(members)), k)
        parent = members[max(contenders, key=merit.__getitem__)][0]
        return self.fresh(lambda: self.space.mutate(parent, self.rng))

    def _merit(self, members: list[tuple[Genotype, Any]]) -> list[Any]:
        """A sort key per member, larger is better: the oriented value, or in a multi-objective
        study (minus the non-dominated front's index, crowding distance within that front)."""
        if not self.is_multi_objective:
            return [self.score(value) for _, value in members]
        merit: list[Any] = [None] * len(members)
        for rank, front in enumerate(fronts_of([values for _, values in members])):
            crowding = crowding_distances([members[i][1] for i in front])
            for i, distance in zip(front, crowding, strict=True):
                merit[i] = (-rank, distance)
        return merit

    def tell(self, observation: Observation) -> None:
        if self.is_multi_objective:
            values = self.objective_values(observation)
            if values is None:
                return
            self.population.append((observation.genotype, values))
        else:
            if observation.value is None or observation.state == "FAILED":
                return
            self.population.append((observation.genotype, float(observation.value)))
        if len(self.population) > self.population_size:
            if self.aging:
                self.population.popleft()
            else:
                members = list(self.population)
                merit = self._merit(members)
                worst = min(range(len(members)), key=merit.__getitem__)
                del self.population[worst]

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "asked": self.asked,
            "population": [[g.to_dict(), _plain(v)] for g, v in self.population],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.asked = int(state["asked"])
        self.population = deque(
            (Genotype.from_dict(g), tuple(map(float, v)) if isinstance(v, list) else float(v))
            for g, v in state["population"]
        )


def _plain(value: Any) -> Any:
    """A population value as JSON data (a list for a multi-objective one)."""
    return list(value) if isinstance(value, tuple) else value
