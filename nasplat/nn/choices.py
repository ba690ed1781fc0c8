"""The choice primitives: ``LayerChoice``, ``InputChoice`` and ``choice``.

Decision values: a layer choice over a dict chooses among its keys; over a list among the
candidates' class names (a name that repeats gets ``_<index>`` appended, e.g. ``Conv2d_0``,
``Conv2d_1``). An input choice of one input chooses an int index; of ``k`` inputs a string of
``k`` sorted indices (``"0,2"``). A value choice chooses among its values.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nasplat.errors import ConfigError
from nasplat.genotype import Value
from nasplat.nn import frame as frames

REDUCTIONS = ("sum", "mean", "concat")


# --- value choices ---------------------------------------------------------------------------
class ValueChoice:
    """A value choice inside a supernet construction (``choice`` returns plain values elsewhere).

    nasplat.nn's layers read ``label`` and ``values`` and search them by weight sharing. Any
    other use (``int(w)``, ``range(w)``, ``w * 2``, ``w == 16``, passing it to a torch layer)
    fixes the choice to its first value in this supernet and returns that use of the value.
    """

    __slots__ = ("label", "values", "_frame")

    def __init__(self, label: str, values: tuple[Value, ...], frame: frames.Frame) -> None:
        self.label, self.values, self._frame = label, values, frame

    def value(self) -> Any:
        """The plain value (the first), marking the choice fixed."""
        self._frame.fix(self.label, self.values[0])
        return self.values[0]

    def __repr__(self) -> str:
        return f"choice({self.label!r}, {list(self.values)!r})"

    def __hash__(self) -> int:
        return hash(self.value())


def _unary(op: Callable[[Any], Any]) -> Callable[[ValueChoice], Any]:
    return lambda self: op(self.value())


def _binary(op: Callable[[Any, Any], Any], reflected: bool) -> Callable[[ValueChoice, Any], Any]:
    def method(self: ValueChoice, other: Any) -> Any:
        other = other.value() if isinstance(other, ValueChoice) else other
        return op(other, self.value()) if reflected else op(self.value(), other)

    return method


for _name, _op in {
    "index": operator.index,
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "neg": operator.neg,
    "abs": abs,
}.items():
    setattr(ValueChoice, f"__{_name}__", _unary(_op))
ValueChoice.__format__ = lambda self, spec: format(self.value(), spec)  # type: ignore[method-assign]
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(ValueChoice, f"__{_name}__", _binary(getattr(operator, _name), reflected=False))
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow"):
    _op = getattr(operator, _name)
    setattr(ValueChoice, f"__{_name}__", _binary(_op, reflected=False))
    setattr(ValueChoice, f"__r{_name}__", _binary(_op, reflected=True))


def choice(label: str, values: Sequence[Value]) -> Any:
    """A value choice: the chosen value in a fixed build (pass it to any torch layer or loop),
    a :class:`ValueChoice` in a supernet construction."""
    frame = frames.current()
    values = tuple(values)
    if not values:
        raise ConfigError(f"choice {label!r} has no values")
    value = frame.decide(frame.label(label, "choice"), "choice", values)
    return ValueChoice(label, values, frame) if frame.mode == "supernet" else value


def plain(value: Any) -> Any:
    """``value`` with any value choice (also inside a tuple or list) replaced by its fixed value."""
    if isinstance(value, ValueChoice):
        return value.value()
    if isinstance(value, tuple | list):
        return type(value)(plain(v) for v in value)
    return value


def strip_value_choices(module: nn.Module) -> None:
    """Replace value choices stored as module attributes by their plain values (after a
    supernet construction: torch layers keep their arguments, e.g. ``out_channels``)."""
    for sub in module.modules():
        for key, value in list(vars(sub).items()):
            if isinstance(value, ValueChoice) or (
                isinstance(value, tuple | list) and any(isinstance(v, ValueChoice) for v in value)
            ):
                object.__setattr__(sub, key, plain(value))


# --- layer choices ---------------------------------------------------------------------------
def candidate_names(candidates: Sequence[nn.Module] | Mapping[str, nn.Module]) -> dict[str, Any]:
    """Name -> candidate: a dict's keys, or a list's class names made unique."""
    if isinstance(candidates, Mapping):
        named = dict(candidates)
    else:
        classes = [type(c).__name__ for c in candidates]
        repeated = {name for name, n in Counter(classes).items() if n > 1}
        named = {
            f"{name}_{i}" if name in repeated else name: c
            for i, (name, c) in enumerate(zip(classes, candidates, strict=True))
        }
    if not named:
        raise ConfigError("a LayerChoice needs at least one candidate")
    for name, module in named.items():
        if not isinstance(name, str) or not name or "." in name:
            raise ConfigError(f"LayerChoice candidate names must be strings without '.': {name!r}")
        if not isinstance(module, nn.Module):
            raise ConfigError(f"LayerChoice candidate {name!r} is not an nn.Module")
    return named


class LayerChoice(nn.Module):
    """One of several candidate modules.

    In a fixed build ``LayerChoice(...)`` *is* the chosen candidate (no wrapper is left); in a
    supernet it holds every candidate in ``candidates`` and runs the route's (single path) or
    the softmax-weighted sum of all of them (continuous).
    """

    label: str

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:  # copy.deepcopy / pickle
            return super().__new__(cls)
        return _layer_choice(cls, *args, **kwargs)

    def __init__(
        self,
        candidates: Sequence[nn.Module] | Mapping[str, nn.Module] = (),
        label: str | None = None,
    ) -> None:
        pending = self.__dict__.pop("_pending", None)
        super().__init__()
        if pending is not None:
            self.label = pending[0]
            self.candidates = nn.ModuleDict(pending[1])

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        active = frames.route()
        weights = active.weights.get(self.label)
        if weights is None:
            return self.candidates[str(active.values[self.label])](*args, **kwargs)
        terms = [
            w * op(*args, **kwargs) for w, op in zip(weights, self.candidates.values(), strict=True)
        ]
        return torch.stack(terms).sum(dim=0)


def _layer_choice(
    cls: type[LayerChoice],
    candidates: Sequence[nn.Module] | Mapping[str, nn.Module],
    label: str | None = None,
) -> Any:
    frame = frames.current()
    named = candidate_names(candidates)
    label = frame.label(label, "layerchoice")
    chosen = frame.decide(label, "layerchoice", tuple(named))
    if frame.mode != "supernet":
        return named[str(chosen)]
    instance = nn.Module.__new__(cls)
    object.__setattr__(instance, "_pending", (label, named))
    return instance


# --- input choices ---------------------------------------------------------------------------
def input_choices(n_candidates: int, n_chosen: int) -> tuple[Value, ...]:
    """The decision values of an input choice (see the module doc)."""
    if n_chosen == 1:
        return tuple(range(n_candidates))
    combos = itertools.combinations(range(n_candidates), n_chosen)
    return tuple(",".join(map(str, c)) for c in combos)


def chosen_indices(value: Value) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(int(i) for i in str(value).split(","))


def reduce_inputs(inputs: Sequence[torch.Tensor], reduction: str) -> torch.Tensor:
    if len(inputs) == 1:
        return inputs[0]
    if reduction == "concat":
        return torch.cat(list(inputs), dim=1)
    total = torch.stack(list(inputs)).sum(dim=0)
    return total / len(inputs) if reduction == "mean" else total


class ChosenInputs(nn.Module):
    """A fixed input choice: reduces the inputs at ``indices`` (``sum``, ``mean``, ``concat``)."""

    def __init__(self, indices: Sequence[int], reduction: str = "sum") -> None:
        super().__init__()
        self.indices = tuple(indices)
        self.reduction = reduction

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return reduce_inputs([inputs[i] for i in self.indices], self.reduction)

    def extra_repr(self) -> str:
        return f"indices={self.indices}, reduction={self.reduction!r}"


class InputChoice(nn.Module):
    """Chooses ``n_chosen`` of ``n_candidates`` input tensors and reduces them.

    ``forward(inputs)`` takes the list of candidate tensors. In a fixed build it is a
    :class:`ChosenInputs`; in a supernet it runs the route's inputs or (continuous) the
    softmax-weighted sum over the decision's choices.
    """

    label: str

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:  # copy.deepcopy / pickle
            return super().__new__(cls)
        return _input_choice(cls, *args, **kwargs)

    def __init__(
        self,
        n_candidates: int = 1,
        n_chosen: int = 1,
        label: str | None = None,
        reduction: str = "sum",
    ) -> None:
        pending = self.__dict__.pop("_pending", None)
        super().__init__()
        if pending is not None:
            self.label, self.choices, self.reduction = pending

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        active = frames.route()
        weights = active.weights.get(self.label)
        if weights is None:
            picked = chosen_indices(active.values[self.label])
            return reduce_inputs([inputs[i] for i in picked], self.reduction)
        terms = [
            w * reduce_inputs([inputs[i] for i in chosen_indices(c)], self.reduction)
            for w, c in zip(weights, self.choices, strict=True)
        ]
        return torch.stack(terms).sum(dim=0)


def _input_choice(
    cls: type[InputChoice],
    n_candidates: int,
    n_chosen: int = 1,
    label: str | None = None,
    reduction: str = "sum",
) -> Any:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"InputChoice reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 1 <= int(n_chosen) <= int(n_candidates):
        raise ConfigError(f"InputChoice needs 1 <= n_chosen <= n_candidates, got {n_chosen}")
    frame = frames.current()
    choices = input_choices(int(n_candidates), int(n_chosen))
    label = frame.label(label, "inputchoice")
    chosen = frame.decide(label, "inputchoice", choices)
    if frame.mode != "supernet":
        return ChosenInputs(chosen_indices(chosen), reduction)
    instance = nn.Module.__new__(cls)
    object.__setattr__(instance, "_pending", (label, choices, reduction))
    return instance
