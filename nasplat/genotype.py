"""The Genotype: the one architecture representation that flows between all components."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nasplat.errors import InvalidGenotypeError

Value = str | int | float | bool | None
_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)  # exact types: the fast check (subclasses go the long way)


@dataclass(frozen=True)
class Decision:
    """One choice a space offers: a name such as ``"normal.n2.e0.op"`` and its options."""

    name: str
    choices: tuple[Value, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ValueError(f"decision {self.name!r} has no choices")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "choices": list(self.choices)}


def _checked(items: tuple[Any, ...]) -> dict[str, Value]:
    """(name, value) pairs as a dict, each checked: one error line naming what is wrong."""
    index: dict[str, Value] = {}
    for pair in items:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise InvalidGenotypeError(
                f"genotype entries must be (name, value) pairs, got {pair!r}"
            )
        key, value = pair
        if not isinstance(key, str):
            raise InvalidGenotypeError(f"decision name must be a string, got {key!r}")
        if not isinstance(value, _SCALARS):
            raise InvalidGenotypeError(
                f"decision {key!r} has a non-scalar value {value!r} (str, int, float, bool or null)"
            )
        if key in index:
            raise InvalidGenotypeError(f"decision {key!r} appears twice")
        index[key] = value
    return index


class Genotype(Mapping[str, Value]):
    """A space name plus a frozen, ordered mapping from decision names to chosen values.

    Immutable and hashable; ``to_json``/``from_json`` round-trip exactly (JSON, never pickle);
    ``sha`` is a content hash that is stable across processes and machines.
    A Genotype is never an ``nn.Module``: ``space.build(genotype)`` makes the network.
    """

    __slots__ = ("_space", "_items", "_index", "_sha")

    def __init__(self, space: str, decisions: Mapping[str, Value] | Any) -> None:
        if not isinstance(space, str) or not space:
            raise InvalidGenotypeError("genotype needs a non-empty space name")
        if isinstance(decisions, dict):  # the common case, checked in bulk
            index = dict(decisions)
            if not all(type(k) is str and type(v) in _SCALAR_TYPES for k, v in index.items()):
                index = _checked(tuple(index.items()))
        else:
            index = _checked(
                tuple(decisions.items() if isinstance(decisions, Mapping) else decisions)
            )
        self._space = space
        self._items = tuple(index.items())
        self._index = index
        self._sha: str | None = None

    @property
    def space(self) -> str:
        return self._space

    def __getitem__(self, key: str) -> Value:
        return self._index[key]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Genotype)
            and self._space == other._space
            and self._items == other._items
            and all(
                type(a[1]) is type(b[1]) for a, b in zip(self._items, other._items, strict=True)
            )
        )

    def __hash__(self) -> int:
        return hash((self._space, self._items))

    def __repr__(self) -> str:
        return f"Genotype({self._space!r}, {dict(self._items)!r})"

    def replace(self, changes: Mapping[str, Value]) -> Genotype:
        """A new genotype with some values changed (order kept; new names appended)."""
        merged = dict(self._items)
        merged.update(changes)
        return Genotype(self._space, merged)

    def to_dict(self) -> dict[str, Any]:
        return {"space": self._space, "decisions": dict(self._items)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> Genotype:
        if not isinstance(data, Mapping) or "space" not in data or "decisions" not in data:
            raise InvalidGenotypeError(
                'genotype JSON must be an object {"space": ..., "decisions": {...}}'
            )
        decisions = data["decisions"]
        if not isinstance(decisions, Mapping):
            raise InvalidGenotypeError('genotype "decisions" must be a JSON object')
        return cls(data["space"], decisions)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise InvalidGenotypeError(f"malformed genotype JSON: {exc}") from None
        return cls.from_dict(data)

    @property
    def sha(self) -> str:
        """SHA-256 of the canonical JSON: the same on every process and machine."""
        if self._sha is None:
            self._sha = hashlib.sha256(self.to_json().encode()).hexdigest()
        return self._sha
