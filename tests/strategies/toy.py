"""A tiny search space with a known optimum, and helpers to drive strategies on it.

Imported by the strategy tests as ``toy`` (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from nasplat.genotype import Decision, Genotype
from nasplat.space import SearchSpace
from nasplat.strategy import Observation, Strategy

# Choice values deliberately mix types (None, bool, int, float, str) that compare equal in
# Python (1 == 1.0 == True), so strategies must keep them apart.
CHOICES: tuple[tuple[Any, ...], ...] = (
    ("conv", "pool", "skip", "none"),
    (0, 1, 2, 3),
    (None, True, False, 1.0),
    (1, True, 1.0, "1"),
    (0.25, 0.5, 0.75, 1.0),
    ("a", "b", "c", "d"),
)
TARGET: tuple[int, ...] = (2, 1, 3, 0, 2, 1)  # index of the best choice of each decision


class ToySpace(SearchSpace):
    """Six decisions with four choices each (4096 genotypes); nothing to build."""

    name = "toy"

    def decisions(self) -> list[Decision]:
        return [Decision(f"d{i}", choices) for i, choices in enumerate(CHOICES)]

    def build(self, genotype: Genotype, shape: Any = None, **net_options: Any) -> Any:
        raise NotImplementedError("the toy space has no networks")


def index_of(choices: tuple[Any, ...], value: Any) -> int:
    return next(i for i, c in enumerate(choices) if type(c) is type(value) and c == value)


def objective(genotype: Genotype) -> float:
    """Number of decisions at their target (0..6) plus a small closeness tie-break (< 0.1)."""
    matches = 0
    closeness = 0.0
    for i, choices in enumerate(CHOICES):
        index = index_of(choices, genotype[f"d{i}"])
        matches += index == TARGET[i]
        closeness += 1 - abs(index - TARGET[i]) / 3
    return matches + 0.1 * closeness / len(CHOICES)


OPTIMUM = 6.1


def observe(genotype: Genotype, value: float | None, number: int | None = None) -> Observation:
    state = "FAILED" if value is None else "COMPLETE"
    return Observation(genotype=genotype, value=value, state=state, number=number)


def run(
    strategy: Strategy,
    n: int,
    fn: Callable[[Genotype], float | None] = objective,
    *,
    parallel: int = 1,
) -> list[Genotype]:
    """Ask ``n`` genotypes, keeping ``parallel`` outstanding and telling the oldest-but-one
    first when ``parallel > 1`` (out-of-order results). Returns the asked genotypes in order."""
    asked: list[Genotype] = []
    outstanding: list[Genotype] = []
    while len(asked) < n or outstanding:
        while len(asked) < n and len(outstanding) < parallel:
            genotype = strategy.ask()
            strategy.space.validate(genotype)
            asked.append(genotype)
            outstanding.append(genotype)
        genotype = outstanding.pop(1 if len(outstanding) > 1 else 0)
        strategy.tell(observe(genotype, fn(genotype)))
    return asked


def best(genotypes: list[Genotype], fn: Callable[[Genotype], float] = objective) -> float:
    return max(fn(g) for g in genotypes)


def random_best(n: int, seed: int) -> float:
    """Best objective of ``n`` uniform random samples: the baseline a strategy must beat."""
    space = ToySpace()
    rng = random.Random(seed)
    return best([space.sample(rng) for _ in range(n)])


def roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    """The state through JSON text, as the store keeps it (fails if not serialisable)."""
    return json.loads(json.dumps(state, allow_nan=False))


# --- contract checks shared by the strategy tests ------------------------------------------------
Factory = Callable[..., Strategy]


def check_beats_random(factory: Factory, n: int, seeds: range, margin: float) -> float:
    """Mean best-of-``n`` of the strategy over ``seeds`` beats uniform random by ``margin``."""
    found = [best(run(factory(ToySpace(), seed=s), n)) for s in seeds]
    mean, baseline = sum(found) / len(found), sum(random_best(n, s) for s in seeds) / len(seeds)
    assert mean >= baseline + margin, (mean, baseline, found)
    return mean


def check_deterministic(factory: Factory, n: int = 30, *, seeded: bool = True) -> None:
    """Same seed, same asks (with out-of-order tells); another seed, other asks if ``seeded``."""
    first = run(factory(ToySpace(), seed=3), n, parallel=3)
    assert run(factory(ToySpace(), seed=3), n, parallel=3) == first
    if seeded:
        assert run(factory(ToySpace(), seed=4), n, parallel=3) != first


def check_exact_resume(factory: Factory, n_before: int = 14, n_after: int = 12) -> None:
    """A checkpoint taken with asks outstanding, through JSON, resumes exactly.

    The original and the restored instance get the same tells for the outstanding asks
    (out of order, one failed) and then the same run; they must propose the same genotypes.
    """
    original = factory(ToySpace(), seed=5)
    run(original, n_before, parallel=3)
    outstanding = [original.ask() for _ in range(3)]
    state = roundtrip(original.state_dict())
    restored = factory(ToySpace(), seed=5)
    restored.load_state_dict(state)
    assert roundtrip(restored.state_dict()) == state
    sequences = []
    for strategy in (original, restored):
        strategy.tell(observe(outstanding[2], objective(outstanding[2])))
        strategy.tell(observe(outstanding[0], None))
        strategy.tell(observe(outstanding[1], objective(outstanding[1])))
        sequences.append(run(strategy, n_after, parallel=2))
    assert sequences[0] == sequences[1]


def check_failures_and_order(factory: Factory, n: int = 40) -> Strategy:
    """Failed trials (every third) and out-of-order results are accepted; asks stay valid."""
    strategy = factory(ToySpace(), seed=7)
    calls = iter(range(10**6))

    def flaky(genotype: Genotype) -> float | None:
        return None if next(calls) % 3 == 0 else objective(genotype)

    run(strategy, n, flaky, parallel=4)
    return strategy


def check_minimize(factory: Factory, n: int, seeds: range, margin: float) -> None:
    """With ``direction="minimize"`` the strategy minimises ``-objective``."""
    found = []
    for s in seeds:
        strategy = factory(ToySpace(), seed=s, direction="minimize")
        found.append(best(run(strategy, n, lambda g: -objective(g))))
    baseline = sum(random_best(n, s) for s in seeds) / len(seeds)
    assert sum(found) / len(found) >= baseline + margin, (found, baseline)


# --- two objectives: the toy objective against a cost ----------------------------------------------
OBJECTIVES = [("score", "maximize"), ("cost", "minimize")]
REFERENCE = (0.0, -19.0)  # oriented: score 0, cost 19 (the largest cost is 18)


def cost(genotype: Genotype) -> float:
    """The sum of the choice indices: the target (2, 1, 3, 0, 2, 1) costs 9, all-first 0."""
    return float(sum(index_of(c, genotype[f"d{i}"]) for i, c in enumerate(CHOICES)))


def observe_both(genotype: Genotype, number: int | None = None) -> Observation:
    """A COMPLETE observation carrying both objectives as metrics (as the loop tells them)."""
    metrics = {"score": objective(genotype), "cost": cost(genotype)}
    return Observation(genotype, metrics["score"], "COMPLETE", number, metrics)


def front_volume(genotypes: list[Genotype]) -> float:
    """The hypervolume of the genotypes' (score, -cost) points against :data:`REFERENCE`."""
    from nasplat.pareto import hypervolume

    return hypervolume([(objective(g), -cost(g)) for g in genotypes], REFERENCE)


def run_both(strategy: Strategy, n: int) -> list[Genotype]:
    """Ask ``n`` distinct genotypes (what the study has counts as seen), telling both
    objectives after each."""
    asked: list[Genotype] = []
    seen: set[Genotype] = set()
    strategy.avoid(seen.__contains__)
    while len(asked) < n:
        genotype = strategy.ask()
        strategy.space.validate(genotype)
        if genotype not in seen:
            seen.add(genotype)
            asked.append(genotype)
        strategy.tell(observe_both(genotype))
    return asked


def check_front_beats_random(factory: Factory, n: int, seeds: range, margin: float) -> float:
    """Mean hypervolume of ``n`` asks beats that of ``n`` distinct uniform samples."""
    found = [
        front_volume(run_both(factory(ToySpace(), seed=s, objectives=OBJECTIVES), n)) for s in seeds
    ]
    baseline = []
    for s in seeds:
        space, rng, samples = ToySpace(), random.Random(s), set()
        while len(samples) < n:
            samples.add(space.sample(rng))
        baseline.append(front_volume(list(samples)))
    mean = sum(found) / len(found)
    assert mean >= sum(baseline) / len(baseline) + margin, (found, baseline)
    return mean
