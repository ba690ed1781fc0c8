"""Helpers shared by the black-box strategies: decisions <-> indices, rewards, pending asks.

Strategies that model choices (RL, TPE, NNI tuners) work on choice *indices*, never on the
raw values, so a decision whose choices mix ``1``, ``1.0`` and ``True`` (equal in Python)
stays unambiguous, and every engine sees plain ints.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import InvalidGenotypeError
from nasplat.genotype import Decision, Genotype, Value
from nasplat.space import SearchSpace
from nasplat.strategy import Observation

__all__ = [
    "PendingAsks",
    "choice_index",
    "decode",
    "encode",
    "oriented_score",
    "quiet_logger",
]


def choice_index(decision: Decision, value: Value) -> int:
    """The index of ``value`` in ``decision.choices``, matching type as well as value."""
    for i, choice in enumerate(decision.choices):
        if type(choice) is type(value) and choice == value:
            return i
    raise InvalidGenotypeError(
        f"decision {decision.name!r} has value {value!r}; choices: "
        + ", ".join(map(repr, decision.choices))
    )


def encode(space: SearchSpace, genotype: Genotype) -> tuple[int, ...]:
    """One choice index per decision of ``space``, in the space's decision order."""
    indices = []
    for decision in space.decisions():
        if decision.name not in genotype:
            raise InvalidGenotypeError(f"decision {decision.name!r} is missing")
        indices.append(choice_index(decision, genotype[decision.name]))
    return tuple(indices)


def decode(
    space: SearchSpace, indices: Sequence[int], decisions: Sequence[Decision] | None = None
) -> Genotype:
    """The genotype whose decision ``i`` takes choice ``indices[i]`` (of ``decisions``, by
    default ``space.decisions()``)."""
    decisions = space.decisions() if decisions is None else decisions
    if len(indices) != len(decisions):
        raise ValueError(f"expected {len(decisions)} indices, got {len(indices)}")
    return space.genotype(
        {d.name: d.choices[int(i)] for d, i in zip(decisions, indices, strict=True)}
    )


def oriented_score(observation: Observation, direction: Direction) -> float | None:
    """The observation's value with larger meaning better, or None when it has no value."""
    value = observation.value
    if value is None or value != value:  # None or NaN
        return None
    return direction.oriented(float(value))


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise logger ``name`` to at least ``level`` for the duration (engines' per-trial INFO)."""
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(max(saved, level))
    try:
        yield
    finally:
        logger.setLevel(saved)


class PendingAsks:
    """Genotypes asked but not yet told, each with a JSON-serialisable payload.

    Tells are matched to asks by genotype (first asked, first matched when the same genotype
    is outstanding more than once), never by arrival order.
    """

    def __init__(self) -> None:
        self._items: list[tuple[Genotype, Any]] = []

    def add(self, genotype: Genotype, payload: Any) -> None:
        self._items.append((genotype, payload))

    def pop(self, genotype: Genotype) -> tuple[bool, Any]:
        """``(True, payload)`` of the oldest outstanding ask of ``genotype``, else ``(False, None)``."""
        for i, (asked, payload) in enumerate(self._items):
            if asked == genotype:
                del self._items[i]
                return True, payload
        return False, None

    def to_list(self) -> list[list[Any]]:
        return [[g.to_dict(), payload] for g, payload in self._items]

    @classmethod
    def from_list(cls, data: Sequence[Sequence[Any]]) -> PendingAsks:
        pending = cls()
        for genotype, payload in data:
            pending.add(Genotype.from_dict(genotype), payload)
        return pending
