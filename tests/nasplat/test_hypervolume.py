"""Pareto helpers on oriented points: fronts, crowding distance, exact hypervolume."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from nasplat.pareto import (
    ParetoArchive,
    crowding_distances,
    default_reference,
    dominates,
    fronts_of,
    hypervolume,
    orient,
)


def counted_volume(points: list[tuple[int, ...]], reference: tuple[int, ...]) -> int:
    """The hypervolume of integer points by counting the unit cells they dominate."""
    ranges = [range(r, max([r, *(p[k] for p in points)])) for k, r in enumerate(reference)]
    return sum(
        any(all(c < x for c, x in zip(cell, p, strict=True)) for p in points)
        for cell in itertools.product(*ranges)
    )


@pytest.mark.parametrize("dims", [1, 2, 3, 4])
def test_hypervolume_is_exact(dims: int) -> None:
    rng = random.Random(dims)
    for _ in range(20):
        points = [tuple(rng.randint(-2, 6) for _ in range(dims)) for _ in range(rng.randint(0, 7))]
        reference = tuple(rng.randint(-3, 1) for _ in range(dims))
        assert hypervolume(points, reference) == counted_volume(points, reference)


def test_hypervolume_ignores_points_not_beating_the_reference() -> None:
    assert hypervolume([(1.0, 5.0), (3.0, 0.0)], (0.0, 0.0)) == 5.0
    assert hypervolume([], (0.0, 0.0)) == 0.0


def test_fronts_and_crowding() -> None:
    points = [(1, 5), (2, 4), (3, 3), (1, 1), (2, 2), (0, 0), (3, 3)]
    assert fronts_of(points) == [[0, 1, 2, 6], [4], [3], [5]]
    assert dominates((2, 2), (1, 2)) and not dominates((3, 3), (3, 3))
    distances = crowding_distances([(0, 4), (1, 3), (3, 1), (4, 0)])
    assert distances[0] == distances[3] == math.inf
    assert distances[1] == pytest.approx(3 / 4 + 3 / 4)
    assert distances[2] == pytest.approx(3 / 4 + 3 / 4)


def test_archive_keeps_the_front_and_a_monotone_hypervolume() -> None:
    archive = ParetoArchive()
    assert archive.hypervolume == 0.0  # no reference point yet
    archive.set_reference((0.0, 0.0))
    rng = random.Random(0)
    seen, last = [], 0.0
    for _ in range(60):
        point = (rng.uniform(0, 10), rng.uniform(0, 10))
        seen.append(point)
        archive.add(point)
        assert archive.hypervolume >= last
        last = archive.hypervolume
        assert last == pytest.approx(hypervolume(seen, (0.0, 0.0)))
    assert sorted(archive.front) == sorted(seen[i] for i in fronts_of(seen)[0])


def test_default_reference_and_orientation() -> None:
    objectives = [("val_acc", "maximize"), ("params", "minimize")]
    oriented = orient([85.0, 4e5], objectives)
    assert oriented == (85.0, -4e5)
    assert orient(default_reference(oriented), objectives) == (0.0, 8e5)
    assert default_reference((0.2,)) == (-0.8,)  # at least one unit
