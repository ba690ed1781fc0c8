"""Random search: every genotype drawn uniformly from the space."""

from __future__ import annotations

from nasplat.genotype import Genotype
from nasplat.registry import STRATEGIES
from nasplat.strategy import Strategy


@STRATEGIES.register("random", description="uniform random sampling from the space")
class RandomSearch(Strategy):
    """Samples each genotype independently with the space's ``sample`` (sampling again when
    the study has the architecture already)."""

    name = "random"
    OPTIONS = ()

    def ask(self) -> Genotype:
        return self.fresh(lambda: self.space.sample(self.rng))
