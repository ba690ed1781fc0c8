"""The construction frame: what ``LayerChoice``, ``InputChoice`` and ``choice`` do while a
:class:`~nasplat.nn.ModelSpace` constructs the user's module, and the route a supernet's
forward pass runs.

A frame is set (a context variable) for the duration of one construction, in one of three
modes:

- ``discover``: record every decision; each takes the value of the frame's assignment (default:
  its first choice), so the user's code runs as in a fixed build;
- ``fixed``: take every value from a genotype; the result is a plain network;
- ``supernet``: layer and input choices keep all candidates, ``choice`` returns a
  :class:`~nasplat.nn.choices.ValueChoice` that nasplat.nn's layers search by weight sharing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.genotype import Decision, Value

if TYPE_CHECKING:
    import torch

MODES = ("discover", "fixed", "supernet")


def same_choices(a: tuple[Value, ...], b: tuple[Value, ...]) -> bool:
    """Equal choices, compared with their types (``1`` is not ``True``)."""
    return len(a) == len(b) and all(
        type(x) is type(y) and x == y for x, y in zip(a, b, strict=True)
    )


@dataclass
class Frame:
    """One construction of the user's module (see the module doc).

    ``seen`` lists the decisions in the order the construction met them; ``fixed`` holds the
    value choices that ordinary code consumed in a supernet (they take their first value).
    """

    mode: str
    values: Mapping[str, Value] = field(default_factory=dict)
    seen: dict[str, Decision] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, Value] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    open: bool = True

    def label(self, label: str | None, kind: str) -> str:
        """``label``, or the next automatic one of its kind (``layerchoice_1``, ...)."""
        self.counters[kind] = self.counters.get(kind, 0) + 1
        if label is None:
            return f"{kind}_{self.counters[kind]}"
        if not isinstance(label, str) or not label:
            raise ConfigError(f"a decision label must be a non-empty string, got {label!r}")
        return label

    def decide(self, label: str, kind: str, choices: tuple[Value, ...]) -> Value:
        """Record a decision (one label, one decision everywhere) and return its value here."""
        known = self.seen.get(label)
        if known is None:
            self.seen[label] = Decision(label, choices)
            self.kinds[label] = kind
        elif self.kinds[label] != kind or not same_choices(known.choices, choices):
            raise ConfigError(
                f"label {label!r} is used twice with different choices: {self.kinds[label]} "
                f"{list(known.choices)} and {kind} {list(choices)}"
            )
        if self.mode != "fixed":
            return self.values.get(label, choices[0])
        if label not in self.values:
            raise InvalidGenotypeError(f"decision {label!r} is missing")
        value = self.values[label]
        if not any(type(c) is type(value) and c == value for c in choices):
            raise InvalidGenotypeError(
                f"decision {label!r} has value {value!r}; choices: {choices}"
            )
        return value

    def fix(self, label: str, value: Value) -> None:
        """Ordinary code consumed a value choice of a supernet: it keeps ``value``."""
        if self.open:
            self.fixed.setdefault(label, value)


_FRAME: ContextVar[Frame | None] = ContextVar("nasplat_nn_frame", default=None)


def current() -> Frame:
    """The active frame (a ConfigError outside a ModelSpace construction)."""
    frame = _FRAME.get()
    if frame is None:
        raise ConfigError(
            "nasplat.nn choices only work while a ModelSpace constructs the module: use "
            "ModelSpace(MyModule).build(genotype) or .supernet()"
        )
    return frame


@contextlib.contextmanager
def constructing(frame: Frame) -> Iterator[Frame]:
    """Make ``frame`` the active one for the duration."""
    token = _FRAME.set(frame)
    try:
        yield frame
    finally:
        frame.open = False
        _FRAME.reset(token)


@dataclass(frozen=True)
class Route:
    """How a supernet's forward pass runs: ``values[label]`` for labels on a single path (and
    value choices ordinary code fixed), ``weights[label]`` (softmax over the label's choices)
    for labels mixed continuously."""

    values: Mapping[str, Value]
    weights: Mapping[str, torch.Tensor]


_ROUTE: ContextVar[Route | None] = ContextVar("nasplat_nn_route", default=None)


def route() -> Route:
    """The route of the running supernet forward pass."""
    active = _ROUTE.get()
    if active is None:
        raise RuntimeError("a nasplat.nn supernet module runs only inside its supernet's forward")
    return active


@contextlib.contextmanager
def routing(active: Route) -> Iterator[None]:
    token = _ROUTE.set(active)
    try:
        yield
    finally:
        _ROUTE.reset(token)
