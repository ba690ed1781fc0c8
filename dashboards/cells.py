"""A genotype as a drawable graph, as its space draws it (no plotly here).

:func:`genotype_graph` returns a :class:`CellGraph`: the components of the space's
:meth:`~nasplat.space.SearchSpace.drawing` (a chain, the normal and reduction cells, a
NAS-Bench-201 cell, a hierarchical cell and its motifs, any plugin space's drawing), each a list
of positioned nodes and labelled edges; unknown spaces, and spaces that draw nothing, fall back
to a table of decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nasplat.drawing import NONE_OPS, Component, Edge, Node
from nasplat.errors import NasplatError
from nasplat.genotype import Genotype

__all__ = ["NONE_OPS", "CellGraph", "Component", "Edge", "Node", "genotype_graph", "space_of"]


@dataclass(frozen=True)
class CellGraph:
    """What to draw for a genotype: components, or (unknown spaces) a decisions table."""

    space: str
    components: tuple[Component, ...] = ()
    table: tuple[tuple[str, str], ...] = field(default=())


def space_of(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """An instance of the registered space ``name`` (with ``options`` when they are accepted,
    else its defaults), or None when no such space can be made."""
    from nasplat.registry import SPACES, load_builtins

    load_builtins()
    try:
        factory = SPACES.get(name)  # imports a ``package.module:Class`` space
    except NasplatError:
        return None
    for given in (dict(options or {}), {}):
        try:
            return factory(**given)
        except (NasplatError, TypeError, ValueError):
            continue
    return None


def genotype_graph(
    genotype: Genotype | Mapping[str, Any], space_options: Mapping[str, Any] | None = None
) -> CellGraph:
    """Nodes and labelled edges for a genotype, drawn by its space (made with
    ``space_options``); a decisions table otherwise (also when the space's drawing does not fit
    the genotype's decisions)."""
    if not isinstance(genotype, Genotype):
        genotype = Genotype.from_dict(genotype)
    space = space_of(genotype.space, space_options)
    components: tuple[Component, ...] = ()
    if space is not None:
        try:
            components = space.drawing(genotype).components
        except (KeyError, ValueError, TypeError):
            components = ()
    if components and any(c.edges for c in components):
        return CellGraph(genotype.space, components)
    return CellGraph(genotype.space, table=tuple((k, str(v)) for k, v in genotype.items()))
