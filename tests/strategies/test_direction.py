"""Every black-box strategy takes its direction as a string or a Direction and keeps a Direction."""

from __future__ import annotations

import json
from typing import Any

import pytest
from toy import ToySpace, objective, observe

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from strategies.evolution import RegularizedEvolution
from strategies.random_search import RandomSearch
from strategies.rl import ReinforceStrategy
from strategies.tpe import TPEStrategy

FACTORIES: list[Any] = [RandomSearch, RegularizedEvolution, ReinforceStrategy, TPEStrategy]


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.name)
def test_direction_is_parsed_once_and_orients_scores(factory: Any) -> None:
    for given, expected in [
        ("maximize", Direction.MAXIMIZE),
        (" Minimize", Direction.MINIMIZE),
        (Direction.MINIMIZE, Direction.MINIMIZE),
    ]:
        strategy = factory(ToySpace(), direction=given)
        assert strategy.direction is expected
        assert strategy.score(2.0) == expected.sign * 2.0
    assert factory(ToySpace()).direction is Direction.MAXIMIZE
    with pytest.raises(ConfigError, match="direction must be maximize or minimize, got 'up'"):
        factory(ToySpace(), direction="up")


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.name)
def test_a_minimizing_strategy_checkpoints_as_plain_json(factory: Any) -> None:
    strategy = factory(ToySpace(), seed=1, direction="minimize")
    for _ in range(3):
        genotype = strategy.ask()
        strategy.tell(observe(genotype, -objective(genotype)))
    state = json.loads(json.dumps(strategy.state_dict()))
    fresh = factory(ToySpace(), seed=1, direction="minimize")
    fresh.load_state_dict(state)
    assert fresh.ask() == strategy.ask()
