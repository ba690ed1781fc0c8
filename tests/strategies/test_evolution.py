import random
from collections import deque

import pytest
from toy import (
    OBJECTIVES,
    ToySpace,
    check_beats_random,
    check_deterministic,
    check_exact_resume,
    check_front_beats_random,
    objective,
    observe,
    roundtrip,
)

from nasplat.errors import ConfigError
from nasplat.strategy import INFEASIBLE, Observation
from strategies.evolution import RegularizedEvolution
from strategies.random_search import RandomSearch


def test_evolution_beats_random_search() -> None:
    check_beats_random(RegularizedEvolution, n=80, seeds=range(6), margin=0.5)


def test_contract_determinism_and_exact_resume() -> None:
    check_deterministic(RegularizedEvolution)
    check_exact_resume(RegularizedEvolution)
    check_deterministic(RandomSearch)
    check_exact_resume(RandomSearch)


def test_first_asks_are_random_then_children_of_tournament_winners() -> None:
    space = ToySpace()
    evo = RegularizedEvolution(space, seed=0, population_size=4, tournament_size=4)
    parents = [evo.ask() for _ in range(4)]
    for g in parents:
        evo.tell(observe(g, objective(g)))
    best = max(parents, key=objective)
    for _ in range(10):  # tournament over the whole population always picks the best parent
        child = evo.ask()
        assert sum(child[k] != best[k] or type(child[k]) is not type(best[k]) for k in child) == 1
        evo.population = deque(evo.population)  # untouched: no tell


def test_aging_removes_the_oldest_and_non_aging_the_worst() -> None:
    space = ToySpace()
    genotypes = [space.sample(random.Random(i)) for i in range(4)]
    values = [5.0, 1.0, 3.0, 4.0]
    for aging, survivor_values in ((True, [1.0, 3.0, 4.0]), (False, [5.0, 3.0, 4.0])):
        evo = RegularizedEvolution(space, population_size=3, tournament_size=2, aging=aging)
        for g, v in zip(genotypes, values, strict=True):
            evo.tell(observe(g, v))
        assert [v for _, v in evo.population] == survivor_values


def test_minimize_failed_and_bad_options() -> None:
    space = ToySpace()
    evo = RegularizedEvolution(space, population_size=2, tournament_size=2, direction="minimize")
    a, b = space.sample(random.Random(1)), space.sample(random.Random(2))
    evo.tell(observe(a, 1.0))
    evo.tell(observe(b, None))  # failed: not added
    assert len(evo.population) == 1
    evo.tell(observe(b, 0.5))
    evo.asked = 5
    child = evo.ask()  # tournament of both picks the smaller value's genotype as parent
    assert sum(child[k] != b[k] or type(child[k]) is not type(b[k]) for k in child) == 1
    with pytest.raises(ConfigError):
        RegularizedEvolution(space, population_size=1)
    with pytest.raises(ConfigError):
        RegularizedEvolution(space, population_size=3, tournament_size=4)
    with pytest.raises(TypeError):
        RandomSearch(space, colour="red")


def test_multi_objective_front_beats_random_search() -> None:
    check_front_beats_random(RegularizedEvolution, n=60, seeds=range(4), margin=5.0)


def test_multi_objective_tournament_ranks_by_front_then_crowding() -> None:
    space = ToySpace()
    evo = RegularizedEvolution(
        space, population_size=4, tournament_size=4, aging=False, objectives=OBJECTIVES
    )
    members = [space.sample(random.Random(i)) for i in range(4)]
    metrics = [(5.0, 5.0), (3.0, 1.0), (2.0, 4.0), (1.0, 0.0)]  # (score, cost): #2 is dominated
    for g, (score, price) in zip(members, metrics, strict=True):
        evo.tell(Observation(g, score, "COMPLETE", metrics={"score": score, "cost": price}))
    evo.tell(Observation(members[0], None, INFEASIBLE))  # not a result: the population stays
    merit = evo._merit(list(evo.population))
    assert merit[2] < min(merit[0], merit[1], merit[3])  # the dominated member ranks last
    assert merit[1] < merit[0] and merit[1] < merit[3]  # inner point of the front: less crowded
    child = space.sample(random.Random(9))
    evo.tell(Observation(child, 9.0, "COMPLETE", metrics={"score": 9.0, "cost": 0.0}))
    assert child in [g for g, _ in evo.population] and members[2] not in [
        g for g, _ in evo.population
    ]  # without aging the worst ranked (dominated) leaves
    state = roundtrip(evo.state_dict())
    restored = RegularizedEvolution(
        space, population_size=4, tournament_size=4, aging=False, objectives=OBJECTIVES
    )
    restored.load_state_dict(state)
    assert list(restored.population) == list(evo.population)
