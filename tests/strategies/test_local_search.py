"""Local search: climbs one-decision neighbours, restarts at local optima, resumes exactly."""

from __future__ import annotations

import json

import pytest

from nasplat.errors import ConfigError
from nasplat.strategy import Observation
from strategies._encoding import encode
from strategies.local_search import LocalSearch
from tests.strategies.toy import ToySpace


def score(genotype) -> float:  # noqa: ANN001 - a toy objective over the choice values
    return float(sum(hash((k, str(v))) % 97 for k, v in genotype.items()))


def run(strategy: LocalSearch, n: int) -> list:
    asked = []
    for _ in range(n):
        g = strategy.ask()
        asked.append(g)
        strategy.tell(Observation(g, score(g), "COMPLETE"))
    return asked


def distance(a, b) -> int:  # noqa: ANN001 - by choice index (1, 1.0 and True differ)
    space = ToySpace()
    return sum(x != y for x, y in zip(encode(space, a), encode(space, b), strict=True))


@pytest.mark.parametrize("order", ["random", "predicted"])
def test_climbs_neighbours_of_the_centre(order: str) -> None:
    strategy = LocalSearch(ToySpace(), seed=3, n_init=4, order=order)
    asked = run(strategy, 4)  # the random phase
    best = max(asked, key=score)
    child = strategy.ask()
    assert distance(child, best) == 1  # first neighbour of the best initial genotype
    strategy.tell(Observation(child, score(child), "COMPLETE"))
    asked = run(strategy, 60)
    assert strategy.moves >= 1
    assert max(map(score, asked)) >= score(best)


def test_first_improvement_moves_at_once_and_restarts_at_an_optimum() -> None:
    strategy = LocalSearch(ToySpace(), seed=0, n_init=1, order="random")
    start = strategy.ask()
    strategy.tell(Observation(start, 0.0, "COMPLETE"))
    neighbour = strategy.ask()
    strategy.tell(Observation(neighbour, 1.0, "COMPLETE"))  # better: the new centre
    assert strategy.center is not None and strategy.center[0] == neighbour
    # nothing beats the centre: after its whole neighbourhood the search restarts
    size = len(strategy.queue)
    for _ in range(size):
        g = strategy.ask()
        assert distance(g, neighbour) == 1
        strategy.tell(Observation(g, 0.5, "COMPLETE"))
    strategy.ask()
    assert strategy.restarts == 1 and strategy.center is None


def test_predicted_order_puts_the_best_predicted_neighbour_first() -> None:
    space = ToySpace()
    strategy = LocalSearch(space, seed=1, n_init=8)
    run(strategy, 8)
    centre = strategy.ask()  # the first neighbour: highest predicted of the centre's neighbours
    others = strategy.queue
    predicted = strategy.predict([centre, *others])
    assert predicted[0] >= max(predicted[1:]) - 1e-9


def test_state_dict_resumes_exactly() -> None:
    a = LocalSearch(ToySpace(), seed=5, n_init=3)
    run(a, 17)
    state = json.loads(json.dumps(a.state_dict()))
    b = LocalSearch(ToySpace(), seed=5, n_init=3)
    b.load_state_dict(state)
    assert run(a, 25) == run(b, 25)


def test_failed_trials_and_budget_defaults() -> None:
    strategy = LocalSearch(ToySpace(), budget=20)
    assert strategy.n_init == 4
    assert LocalSearch(ToySpace()).n_init == 10
    g = strategy.ask()
    strategy.tell(Observation(g, None, "FAILED"))
    assert strategy.candidates == []
    with pytest.raises(ConfigError):
        LocalSearch(ToySpace(), n_init=0)
    with pytest.raises(ConfigError):
        LocalSearch(ToySpace(), order="best")
