"""What to draw for a genotype: plain data a space returns from ``SearchSpace.drawing``.

A :class:`Drawing` is one or more :class:`Component` (a chain, a normal and a reduction cell, a
motif, ...), each a tuple of positioned :class:`Node` and labelled :class:`Edge`. The dashboards
turn it into a figure; the core knows nothing of plotting. :func:`dag_component` draws the common
case, a DAG whose node 0 is the input and whose last node is the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NONE_OPS = frozenset({"none", "zero"})
"""Op names that mean "no edge" (left out of drawings)."""


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    x: float
    y: float
    kind: str = "node"  # "input", "node", "output"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    style: str = "op"  # "op", "skip" (residual), "concat" (to the cell output)
    bend: float = 0.0  # 0: straight; otherwise the curve's height relative to its length


@dataclass(frozen=True)
class Component:
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


@dataclass(frozen=True)
class Drawing:
    """A genotype's drawing: its components (none: draw the decisions as a table)."""

    components: tuple[Component, ...] = ()


def arc(count: int, width: float = 1.0) -> list[tuple[float, float]]:
    """Positions on a convex arc (no three collinear: straight edges never overlap)."""
    if count == 1:
        return [(0.0, 0.0)]
    mid = (count - 1) / 2
    return [(i * width, -((i - mid) ** 2) / max(mid, 1) * 0.6) for i in range(count)]


def dag_component(title: str, n_nodes: int, ops: Mapping[tuple[int, int], str]) -> Component:
    """A DAG given as ``{(j, i): op}`` (edge from node i to node j); node 0 is the input, the last
    node the output; edges whose op is in :data:`NONE_OPS` are left out."""
    nodes = []
    for k, (x, y) in enumerate(arc(n_nodes)):
        kind = "input" if k == 0 else "output" if k == n_nodes - 1 else "node"
        nodes.append(Node(str(k), str(k), x, y, kind))
    edges = [
        Edge(str(i), str(j), op)
        for (j, i), op in sorted(ops.items(), key=lambda item: (item[0][1], item[0][0]))
        if op not in NONE_OPS
    ]
    return Component(title, tuple(nodes), tuple(edges))
