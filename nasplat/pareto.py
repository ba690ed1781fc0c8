"""Pareto fronts and hypervolumes of multi-objective studies.

A multi-objective study (``--objective val_acc,flops``) stores every objective's value as a
trial metric; its Pareto front is not a separate table but is computed from those stored values
on demand (so it is never stale): :func:`study_pareto_front`. Only COMPLETE trials that have a
finite value for every objective take part. Non-dominated sorting and crowding distance as in
NSGA-II (Deb et al. 2002).

The point functions (:func:`fronts_of`, :func:`crowding_distances`, :func:`hypervolume`) take
*oriented* points: tuples in which larger is better in every coordinate
(:func:`oriented_point`). A hypervolume is measured against a reference point that every
counted point must beat in every coordinate; a study fixes its reference point once
(:func:`default_reference`, or ``--reference-point``), so its hypervolume never decreases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.store.records import TrialRecord

Objectives = Sequence[tuple[str, str]]
Point = tuple[float, ...]
HYPERVOLUME = "hypervolume"
"""The trial metric holding the study's hypervolume after that trial finished."""


def oriented_point(metrics: Mapping[str, float], objectives: Objectives) -> Point | None:
    """The objectives' values in ``metrics``, negated where minimised (larger is better); None
    when one is missing or not finite."""
    values = []
    for metric, direction in objectives:
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            return None
        values.append(Direction.parse(direction).oriented(float(value)))
    return tuple(values)


def orient(values: Sequence[float], objectives: Objectives) -> Point:
    """Raw objective values (one per objective) turned so that larger is better, and back (the
    orientation is its own inverse)."""
    if len(values) != len(objectives):
        raise ConfigError(f"{len(values)} value(s) for {len(objectives)} objective(s)")
    return tuple(
        Direction.parse(direction).oriented(float(v))
        for v, (_, direction) in zip(values, objectives, strict=True)
    )


def _oriented(trial: TrialRecord, objectives: Objectives) -> Point | None:
    if trial.state != "COMPLETE":
        return None
    return oriented_point(trial.metrics, objectives)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` is at least as good as ``b`` everywhere and better somewhere (larger is
    better in every coordinate)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def fronts_of(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``points`` by non-dominated front, best first (each front ascending)."""
    dominated_by = [0] * len(points)
    beats: list[list[int]] = [[] for _ in points]
    for i, a in enumerate(points):
        for j in range(i + 1, len(points)):
            b = points[j]
            if dominates(a, b):
                beats[i].append(j)
                dominated_by[j] += 1
            elif dominates(b, a):
                beats[j].append(i)
                dominated_by[i] += 1
    fronts: list[list[int]] = []
    current = [i for i, count in enumerate(dominated_by) if count == 0]
    while current:
        fronts.append(sorted(current))
        following = []
        for i in current:
            for j in beats[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(j)
        current = following
    return fronts


def crowding_distances(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point within its set: the sum over objectives of the
    gap between its neighbours, normalised by the objective's range; boundary points get
    ``inf``. Ties are broken by index, so the result does not depend on anything random."""
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    distance = [0.0] * n
    for k in range(len(points[0])):
        order = sorted(range(n), key=lambda i: (points[i][k], i))
        low, high = points[order[0]][k], points[order[-1]][k]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for left, middle, right in zip(order, order[1:], order[2:], strict=False):
            distance[middle] += (points[right][k] - points[left][k]) / (high - low)
    return distance


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``points`` and dominating ``reference`` (larger is better in
    every coordinate; points not better than the reference everywhere add nothing). Exact: a
    sweep in two dimensions, slicing along the last coordinate above that."""
    ref = tuple(float(r) for r in reference)
    inside = sorted(
        {
            tuple(float(x) for x in p)
            for p in points
            if all(x > r for x, r in zip(p, ref, strict=True))
        },
        key=lambda p: p[-1],
        reverse=True,
    )
    if not inside:
        return 0.0
    if len(ref) == 1:
        return inside[0][0] - ref[0]
    if len(ref) == 2:
        volume, best_x = 0.0, ref[0]
        for i, (x, y) in enumerate(inside):  # descending y: each slice adds its new width
            best_x = max(best_x, x)
            below = inside[i + 1][1] if i + 1 < len(inside) else ref[1]
            volume += (best_x - ref[0]) * (y - below)
        return volume
    volume = 0.0
    for i, point in enumerate(inside):
        below = inside[i + 1][-1] if i + 1 < len(inside) else ref[-1]
        if point[-1] > below:
            volume += (point[-1] - below) * hypervolume([p[:-1] for p in inside[: i + 1]], ref[:-1])
    return volume


def default_reference(point: Sequence[float]) -> Point:
    """A reference point from one oriented point (a study's first completed trial): each
    coordinate made worse by its own size, at least 1 (accuracy 85 -> 0, params 4e5 -> 8e5)."""
    return tuple(float(x) - max(abs(float(x)), 1.0) for x in point)


class ParetoArchive:
    """The non-dominated oriented points seen so far and their hypervolume against a fixed
    reference point (None until it is set: hypervolume 0)."""

    def __init__(self, reference: Sequence[float] | None = None) -> None:
        self.reference: Point | None = None if reference is None else tuple(reference)
        self.front: list[Point] = []
        self._volume: float | None = 0.0

    def add(self, point: Sequence[float]) -> bool:
        """Add a point; True when it joined the front (it is dominated by no member)."""
        new = tuple(float(x) for x in point)
        if any(dominates(p, new) or p == new for p in self.front):
            return False
        self.front = [p for p in self.front if not dominates(new, p)] + [new]
        self._volume = None
        return True

    def set_reference(self, reference: Sequence[float]) -> None:
        self.reference = tuple(float(r) for r in reference)
        self._volume = None

    @property
    def hypervolume(self) -> float:
        if self._volume is None:
            self._volume = (
                0.0 if self.reference is None else hypervolume(self.front, self.reference)
            )
        return self._volume


def non_dominated_sort(
    trials: Sequence[TrialRecord], objectives: Objectives
) -> list[list[TrialRecord]]:
    """Fronts of the eligible trials, best first (front 0 is the Pareto front); each front in
    trial-number order."""
    if not objectives:
        raise ConfigError("non-dominated sorting needs at least one objective")
    for _, direction in objectives:
        Direction.parse(direction)  # ConfigError unless maximize or minimize
    eligible = [(t, v) for t in trials if (v := _oriented(t, objectives)) is not None]
    fronts = fronts_of([v for _, v in eligible])
    return [sorted((eligible[i][0] for i in front), key=lambda t: t.number) for front in fronts]


def pareto_front(trials: Sequence[TrialRecord], objectives: Objectives) -> list[TrialRecord]:
    """The non-dominated COMPLETE trials, in trial-number order."""
    fronts = non_dominated_sort(trials, objectives)
    return fronts[0] if fronts else []


def study_pareto_front(store: Any, study: str) -> list[TrialRecord]:
    """The Pareto front of the named stored study over all its objectives."""
    record = store.get_study(study)
    return pareto_front(store.trials(record.id, states=["COMPLETE"]), record.objectives)


def study_reference(config: Mapping[str, Any]) -> list[float] | None:
    """The reference point a study's config holds (raw objective units), if fixed yet."""
    reference = config.get("reference_point")
    return None if reference is None else [float(x) for x in reference]
