"""The SearchSpace interface."""

from __future__ import annotations

import json
import random
import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from nasplat.errors import InvalidGenotypeError
from nasplat.genotype import Decision, Genotype, Value
from nasplat.options import Option

if TYPE_CHECKING:
    from nasplat.drawing import Drawing
    from nasplat.shape import NetShape

_OP_DECISION = re.compile(r"(^|\.)op\d*$|(^|\.)ops?\.|(^|\.)edge\.")


def op_decision_slot(name: str) -> str | None:
    """The default of :meth:`SearchSpace.decision_slot`: a decision whose name looks like an
    operator choice (``...op``, ``...op<k>``, ``...ops.``, ``edge....``) is its own slot."""
    return name if _OP_DECISION.search(name) else None


class SearchSpace(ABC):
    """A set of architectures described by named decisions.

    Rules:
    - ``decisions()`` is fixed for an instance (same order every call); strategies see only it,
      so every strategy works on every space.
    - ``sample``/``mutate`` draw randomness only from the ``random.Random`` they are given, so a
      search is deterministic for a seed.
    - ``canonicalize`` maps genotypes that compute the same function to one genotype; its
      ``sha`` is the architecture's identity in the store. It must be idempotent.
    - ``validate`` raises :class:`InvalidGenotypeError` whose message names the bad decision.
    - ``build(genotype, shape, **net_options)`` returns a fresh ``nn.Module`` mapping
      ``(N, shape.in_channels, H, W)`` to ``(N, shape.num_classes)`` logits; it never mutates the
      genotype. ``shape`` (a :class:`~nasplat.shape.NetShape`) is everything the data and the
      budget fix; ``net_options`` are only the space's own network options (``net_defaults``).
    - Instances are cheap, immutable after ``__init__`` and picklable (they travel to workers).
    - Every optional hook below has a default; the platform never probes for attributes.
    """

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[tuple[Option, ...] | None] = None
    """The keyword options (:mod:`nasplat.options`): what ``nasplat list options`` shows and
    the registry accepts; None: not declared, the constructor's signature is used."""
    notation_format: ClassVar[str | None] = None
    """Name of the field's notation this space writes (``nasplat export --format``), or None."""

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)

    # --- decisions -------------------------------------------------------------------------
    @abstractmethod
    def decisions(self) -> list[Decision]:
        """The named decisions, each with its choices."""

    def decision_map(self) -> dict[str, Decision]:
        cached = self.__dict__.get("_decision_map")
        if cached is None:
            cached = {d.name: d for d in self.decisions()}
            self.__dict__["_decision_map"] = cached
        return cached

    def genotype(self, values: dict[str, Value]) -> Genotype:
        """A genotype of this space with decisions in the space's order."""
        return Genotype(self.name, {k: values[k] for k in self.decision_map() if k in values})

    # --- sampling and mutation ----------------------------------------------------------------
    def sample(self, rng: random.Random) -> Genotype:
        """A uniformly random valid genotype (subclasses with constraints override)."""
        return self.genotype({d.name: rng.choice(d.choices) for d in self.decision_map().values()})

    def mutate(self, genotype: Genotype, rng: random.Random, max_tries: int = 100) -> Genotype:
        """Change one decision so that the canonical form differs (falls back to any change)."""
        mutable = [d for d in self.decisions() if len(d.choices) > 1]
        if not mutable:
            return genotype
        base = self.canonicalize(genotype).sha
        child = genotype
        for _ in range(max_tries):
            decision = rng.choice(mutable)
            value = rng.choice([c for c in decision.choices if c != genotype[decision.name]])
            child = self.repair(genotype.replace({decision.name: value}), rng)
            if self.canonicalize(child).sha != base:
                return child
        return child

    def repair(self, genotype: Genotype, rng: random.Random) -> Genotype:
        """Make a genotype valid after a single-decision change (default: unchanged)."""
        return genotype

    # --- identity and validity --------------------------------------------------------------
    def canonicalize(self, genotype: Genotype) -> Genotype:
        """The canonical form of equivalent genotypes (default: the genotype in decision order)."""
        return self.genotype(dict(genotype))

    def validate(self, genotype: Genotype) -> None:
        """Raise InvalidGenotypeError, naming the decision, if the genotype is not in this space."""
        if genotype.space != self.name:
            raise InvalidGenotypeError(
                f"genotype is for space {genotype.space!r}, not {self.name!r}"
            )
        known = self.decision_map()
        allowed = self._allowed_values()
        if len(genotype) != len(known) or not all(
            (type(v), v) in allowed.get(k, ()) for k, v in genotype.items()
        ):  # something is off: find what, in the order a user reads it
            for key in genotype:
                if key not in known:
                    raise InvalidGenotypeError(f"unknown decision {key!r} for space {self.name!r}")
            for decision in known.values():
                if decision.name not in genotype:
                    raise InvalidGenotypeError(f"decision {decision.name!r} is missing")
                value = genotype[decision.name]
                if (type(value), value) not in allowed[decision.name]:
                    raise InvalidGenotypeError(
                        f"decision {decision.name!r} has value {value!r}; choices: "
                        + ", ".join(map(repr, decision.choices))
                    )
        self.check(genotype)

    def _allowed_values(self) -> dict[str, frozenset[tuple[type, Value]]]:
        """Per decision, its choices as (type, value) pairs: 1, 1.0 and True are different
        choices."""
        cached = self.__dict__.get("_allowed")
        if cached is None:
            cached = {
                name: frozenset((type(c), c) for c in d.choices)
                for name, d in self.decision_map().items()
            }
            self.__dict__["_allowed"] = cached
        return cached

    def check(self, genotype: Genotype) -> None:
        """Structural checks beyond per-decision choices (override in subclasses)."""

    # --- notation -------------------------------------------------------------------------
    def to_notation(self, genotype: Genotype) -> str:
        """The field's familiar string form (default: JSON)."""
        return genotype.to_json()

    def from_notation(self, text: str) -> Genotype:
        """Parse ``to_notation`` output (or genotype JSON) back into a Genotype."""
        text = text.strip()
        if text.startswith("{"):
            data = json.loads(text)
            if "decisions" not in data:
                return self.genotype(data)
            return Genotype.from_dict(data)
        raise InvalidGenotypeError(f"space {self.name!r} cannot parse {text[:60]!r}")

    @classmethod
    def recognizes_notation(cls, text: str) -> bool:
        """Whether ``text`` looks like this space's notation (default: False); asked of every
        registered space class to find the space of a notation given without ``--space``."""
        return False

    # --- networks -------------------------------------------------------------------------
    @abstractmethod
    def build(self, genotype: Genotype, shape: NetShape | None = None, **net_options: Any) -> Any:
        """A fresh ``nn.Module`` for the genotype at ``shape`` (None: ``NetShape()``)."""

    def net_defaults(self) -> dict[str, Any]:
        """The space's own network options and their class defaults (default: none)."""
        return {}

    def cell_count_option(self) -> str | None:
        """The network option that counts stacked cells (budget field ``cells``), or None."""
        return None

    def search_net_options(self) -> dict[str, Any]:
        """Smaller network options a one-shot search (DARTS/ENAS) trains its supernet with by
        default (default: none, i.e. the space's own)."""
        return {}

    def has_supernet(self) -> bool:
        """Whether ``supernet`` and ``edge_candidates`` are implemented (default: False)."""
        return False

    def supernet(
        self, shape: NetShape | None = None, *, mode: str = "continuous", **net_options: Any
    ) -> Any:
        """A weight-sharing network holding every candidate op (when ``has_supernet()``)."""
        raise NotImplementedError(f"space {self.name!r} has no supernet")

    def edge_candidates(self) -> dict[str, tuple[str, ...]]:
        """Every supernet edge key and its candidate ops (when ``has_supernet()``)."""
        raise NotImplementedError(f"space {self.name!r} has no supernet")

    def one_shot_decisions(self) -> list[Decision]:
        """``decisions()`` as a supernet's weight sharing can search them: same names and order,
        a decision the supernet cannot vary reduced to the one choice it takes there (sampled
        by ENAS's controller instead of ``decisions()``; default: ``decisions()``)."""
        return self.decisions()

    # --- presentation -------------------------------------------------------------------------
    def summary(self, genotype: Genotype) -> str:
        """A short readable form for listings such as ``nasplat trials`` (default: the notation
        of a space that has one, else ``decision=value`` pairs)."""
        if self.notation_format is not None:
            return self.to_notation(genotype)
        return " ".join(f"{name}={value}" for name, value in genotype.items())

    def drawing(self, genotype: Genotype) -> Drawing:
        """Nodes and labelled edges to draw the genotype (default: none, a decisions table)."""
        from nasplat.drawing import Drawing

        return Drawing()

    def decision_slot(self, name: str) -> str | None:
        """The layer/edge an operator decision fills (op-frequency heatmap), None for decisions
        that choose no operator (default: :func:`op_decision_slot`)."""
        return op_decision_slot(name)
