"""``ModelSpace``: a search space written as an ordinary PyTorch module."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.genotype import Decision, Genotype, Value
from nasplat.nn import frame as frames
from nasplat.nn.choices import strip_value_choices
from nasplat.nn.supernet import SUPERNET_MODES, ModelSupernet
from nasplat.space import SearchSpace

if TYPE_CHECKING:
    from nasplat.shape import NetShape

MAX_DISCOVERY_RUNS = 2000
CANONICAL_CACHE = 4096


class ModelSpace(SearchSpace):
    """The architectures of ``module_class(**init_kwargs)``, whose constructor makes decisions
    with :class:`~nasplat.nn.LayerChoice`, :class:`~nasplat.nn.InputChoice` and
    :func:`~nasplat.nn.choice` (see docs/nn.md).

    ``decisions()`` are found by constructing the module (on the meta device, no weights)
    first with every decision at its first choice, then once more for every other choice of
    each decision, under the assignment where the decision was found, so decisions that exist
    only for some values (blocks of a deeper network) are found too. ``build`` constructs it
    with a genotype's values; ``supernet`` with every candidate. ``shape`` is ignored: the
    module decides its own sizes; network options are extra constructor keyword arguments.
    """

    def __init__(
        self, module_class: type[nn.Module], *, name: str | None = None, **init_kwargs: Any
    ):
        super().__init__(**init_kwargs)
        self.module_class = module_class
        self.init_kwargs = dict(init_kwargs)
        self.name = name or f"{module_class.__module__}:{module_class.__qualname__}"  # type: ignore[misc]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    # --- constructing the user's module -----------------------------------------------------------
    def construct(self, frame: frames.Frame, meta: bool = False, **net_options: Any) -> nn.Module:
        """``module_class(**init_kwargs, **net_options)`` built in ``frame`` (on the meta
        device: no memory for weights, for discovery)."""
        kwargs = {**self.init_kwargs, **net_options}
        with frames.constructing(frame):
            if meta:
                with torch.device("meta"):
                    return self.module_class(**kwargs)
            return self.module_class(**kwargs)

    def _trace(self, mode: str, values: Mapping[str, Value] | None = None) -> frames.Frame:
        """The frame of a construction that only records decisions: on the meta device, or on
        the CPU when the module's constructor cannot run there (it reads tensor values)."""
        try:
            frame = frames.Frame(mode, values or {})
            self.construct(frame, meta=True)
        except (RuntimeError, NotImplementedError):
            frame = frames.Frame(mode, values or {})
            self.construct(frame)
        return frame

    # --- decisions ----------------------------------------------------------------------------------
    def decisions(self) -> list[Decision]:
        cached = self.__dict__.get("_decisions")
        if cached is None:
            cached = self.__dict__["_decisions"] = self._discover()
        return list(cached)

    def _discover(self) -> list[Decision]:
        """Every decision, in construction order (see the class doc)."""
        found: dict[str, Decision] = {}
        order: list[str] = []
        queue: list[dict[str, Value]] = [{}]
        runs = 0
        while queue:
            assignment = queue.pop(0)
            runs += 1
            if runs > MAX_DISCOVERY_RUNS:
                raise ConfigError(f"{self.name}: more than {MAX_DISCOVERY_RUNS} discovery runs")
            previous: str | None = None
            for label, decision in self._trace("discover", assignment).seen.items():
                if label not in found:
                    found[label] = decision
                    order.insert(order.index(previous) + 1 if previous else 0, label)
                    queue += [{**assignment, label: v} for v in decision.choices[1:]]
                elif not frames.same_choices(found[label].choices, decision.choices):
                    raise ConfigError(
                        f"label {label!r} has choices {list(found[label].choices)} and "
                        f"{list(decision.choices)} (give choices in conditional code explicit labels)"
                    )
                previous = label
        return [found[label] for label in order]

    def one_shot_plan(self) -> tuple[frozenset[str], dict[str, Value]]:
        """``(labels the default supernet searches, value choices it fixes -> their value)``."""
        cached = self.__dict__.get("_one_shot")
        if cached is None:
            frame = self._trace("supernet")
            searched = frozenset(frame.seen) - set(frame.fixed)
            cached = self.__dict__["_one_shot"] = (searched, dict(frame.fixed))
        return cached[0], dict(cached[1])

    def one_shot_decisions(self) -> list[Decision]:
        searched, fixed = self.one_shot_plan()
        return [
            d if d.name in searched else Decision(d.name, (fixed.get(d.name, d.choices[0]),))
            for d in self.decisions()
        ]

    # --- identity -----------------------------------------------------------------------------------
    def canonicalize(self, genotype: Genotype) -> Genotype:
        """Decisions the built network does not use take their first choice (cached)."""
        cache: dict[Genotype, Genotype] = self.__dict__.setdefault("_canonical", {})
        canonical = cache.get(genotype)
        if canonical is None:
            used = self._trace("fixed", genotype).seen
            canonical = self.genotype(
                {
                    d.name: genotype[d.name] if d.name in used else d.choices[0]
                    for d in self.decisions()
                }
            )
            if len(cache) >= CANONICAL_CACHE:
                cache.clear()
            cache[genotype] = canonical
        return canonical

    # --- networks -----------------------------------------------------------------------------------
    def build(
        self, genotype: Genotype, shape: NetShape | None = None, **net_options: Any
    ) -> nn.Module:
        """The plain network of a genotype (``shape`` is ignored; options go to the module)."""
        self.validate(genotype)
        frame = frames.Frame("fixed", genotype)
        net = self.construct(frame, **net_options)
        unknown = set(frame.seen) - set(self.decision_map())
        if unknown:
            raise InvalidGenotypeError(f"{self.name}: discovery missed decisions {sorted(unknown)}")
        return net

    def has_supernet(self) -> bool:
        return True

    def supernet(
        self,
        shape: NetShape | None = None,
        *,
        mode: str = "continuous",
        partial_channels: int = 1,
        edge_normalization: bool = False,
        **net_options: Any,
    ) -> ModelSupernet:
        """Every candidate of every choice, with weight-sharing value-choice layers (docs/nn.md).
        ``partial_channels`` and ``edge_normalization`` (PC-DARTS, the cell spaces' supernets)
        are not supported here: anything but 1 and False is a ConfigError."""
        if mode not in SUPERNET_MODES:
            raise ConfigError(
                f"supernet mode must be one of {', '.join(SUPERNET_MODES)}; got {mode!r}"
            )
        if partial_channels != 1 or edge_normalization:
            raise ConfigError(
                f"{self.name}: a model space's supernet has no partial channels or edge "
                "normalisation (spaces that support them: cell, nb201)"
            )
        frame = frames.Frame("supernet")
        net = self.construct(frame, **net_options)
        strip_value_choices(net)
        known = self.decision_map()
        missing = sorted(set(frame.seen) - set(known))
        if missing:
            raise ConfigError(
                f"{self.name}: the supernet has decisions discovery missed: {missing}"
            )
        unsearched = [k for k in known if k in frame.fixed or k not in frame.seen]
        if frame.fixed:
            warnings.warn(
                f"{self.name}: value choices used by ordinary code keep one value in the supernet"
                f" and are not searched: {', '.join(sorted(frame.fixed))}",
                stacklevel=2,
            )
        searched = {k: d.choices for k, d in frame.seen.items() if k not in unsearched}
        return ModelSupernet(self, net, searched, frame.fixed, mode)

    def edge_candidates(self) -> dict[str, tuple[str, ...]]:
        """Every label the supernet searches and its choices as strings (alpha panels)."""
        searched, _ = self.one_shot_plan()
        return {d.name: tuple(map(str, d.choices)) for d in self.decisions() if d.name in searched}
