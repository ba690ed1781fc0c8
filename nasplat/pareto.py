"""Pareto fronts of multi-objective studies, computed from the trials' stored metrics.

A multi-objective study (``--objective val_acc,flops``) stores every objective's value as a
trial metric; its Pareto front is not a separate table but is computed from those stored values
on demand (so it is never stale): :func:`study_pareto_front`. Only COMPLETE trials that have a
finite value for every objective take part. Non-dominated sorting as in NSGA-II (Deb et al.).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.store.records import TrialRecord

Objectives = Sequence[tuple[str, str]]


def _oriented(trial: TrialRecord, objectives: Objectives) -> tuple[float, ...] | None:
    """The trial's objective values, negated where minimised (so larger is better); None when
    the trial did not complete or lacks a finite value."""
    if trial.state != "COMPLETE":
        return None
    values = []
    for metric, direction in objectives:
        way = Direction.parse(direction)  # ConfigError unless maximize or minimize
        value = trial.metrics.get(metric)
        if value is None or not math.isfinite(value):
            return None
        values.append(way.oriented(value))
    return tuple(values)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` is at least as good as ``b`` everywhere and better somewhere (larger is
    better in every coordinate)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def non_dominated_sort(
    trials: Sequence[TrialRecord], objectives: Objectives
) -> list[list[TrialRecord]]:
    """Fronts of the eligible trials, best first (front 0 is the Pareto front); each front in
    trial-number order."""
    if not objectives:
        raise ConfigError("non-dominated sorting needs at least one objective")
    points = [(t, v) for t in trials if (v := _oriented(t, objectives)) is not None]
    dominated_by: list[int] = [0] * len(points)
    dominates_list: list[list[int]] = [[] for _ in points]
    for i, (_, a) in enumerate(points):
        for j in range(i + 1, len(points)):
            b = points[j][1]
            if dominates(a, b):
                dominates_list[i].append(j)
                dominated_by[j] += 1
            elif dominates(b, a):
                dominates_list[j].append(i)
                dominated_by[i] += 1
    fronts: list[list[TrialRecord]] = []
    current = [i for i, count in enumerate(dominated_by) if count == 0]
    while current:
        fronts.append(sorted((points[i][0] for i in current), key=lambda t: t.number))
        following = []
        for i in current:
            for j in dominates_list[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(j)
        current = following
    return fronts


def pareto_front(trials: Sequence[TrialRecord], objectives: Objectives) -> list[TrialRecord]:
    """The non-dominated COMPLETE trials, in trial-number order."""
    fronts = non_dominated_sort(trials, objectives)
    return fronts[0] if fronts else []


def study_pareto_front(store: Any, study: str) -> list[TrialRecord]:
    """The Pareto front of the named stored study over all its objectives."""
    record = store.get_study(study)
    return pareto_front(store.trials(record.id, states=["COMPLETE"]), record.objectives)
