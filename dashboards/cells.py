"""A genotype as a drawable graph, by space name (no space class needed, no plotly).

:func:`genotype_graph` returns a :class:`CellGraph`: one or more components (a chain, the normal
and reduction cells, a NAS-Bench-201 cell, a hierarchical cell and its motifs), each a list of
positioned nodes and labelled edges; unknown spaces fall back to a table of decisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nasplat.genotype import Genotype

NONE_OPS = frozenset({"none", "zero"})


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
class CellGraph:
    """What to draw for a genotype: components, or (unknown spaces) a decisions table."""

    space: str
    components: tuple[Component, ...] = ()
    table: tuple[tuple[str, str], ...] = field(default=())

    def edge_labels(self) -> list[str]:
        return [e.label for c in self.components for e in c.edges]


def _arc(count: int, width: float = 1.0) -> list[tuple[float, float]]:
    """Positions on a convex arc (no three collinear: straight edges never overlap)."""
    if count == 1:
        return [(0.0, 0.0)]
    mid = (count - 1) / 2
    return [(i * width, -((i - mid) ** 2) / max(mid, 1) * 0.6) for i in range(count)]


def _dag(title: str, n_nodes: int, ops: Mapping[tuple[int, int], str]) -> Component:
    """A DAG whose node 0 is the input and last node the output; ``none`` edges are left out."""
    nodes = []
    for k, (x, y) in enumerate(_arc(n_nodes)):
        kind = "input" if k == 0 else "output" if k == n_nodes - 1 else "node"
        nodes.append(Node(str(k), str(k), x, y, kind))
    edges = [
        Edge(str(i), str(j), op)
        for (j, i), op in sorted(ops.items(), key=lambda item: (item[0][1], item[0][0]))
        if op not in NONE_OPS
    ]
    return Component(title, tuple(nodes), tuple(edges))


def chain_graph(genotype: Genotype) -> tuple[Component, ...]:
    """Input, then one node per layer; edges carry the op (and width), skips arc above."""
    layers = sorted({int(m.group(1)) for k in genotype if (m := re.match(r"layer(\d+)\.", k))})
    nodes = [Node("in", "input", 0.0, 0.0, "input")]
    edges = []
    for pos, i in enumerate(layers, start=1):
        last = pos == len(layers)
        nodes.append(Node(f"L{i}", f"L{i}", float(pos), 0.0, "output" if last else "node"))
        label = str(genotype.get(f"layer{i}.op", "?"))
        width = genotype.get(f"layer{i}.width")
        extras = [
            str(genotype[f"layer{i}.{k}"]) for k in ("act", "norm") if f"layer{i}.{k}" in genotype
        ]
        if width is not None:
            label += f" ×{width}"
        if extras:
            label += " (" + ", ".join(extras) + ")"
        edges.append(Edge(nodes[pos - 1].id, nodes[pos].id, label))
        if genotype.get(f"layer{i}.skip") is True:
            edges.append(Edge(nodes[pos - 1].id, nodes[pos].id, "+skip", "skip", 0.35))
    return (Component("chain", tuple(nodes), tuple(edges)),)


def darts_graph(genotype: Genotype) -> tuple[Component, ...]:
    """The normal and reduction cells: inputs c_{k-2}, c_{k-1}, nodes 2.., concat output."""
    out = []
    for kind in ("normal", "reduce"):
        found = [re.match(rf"{kind}\.n(\d+)\.op(\d+)$", k) for k in genotype]
        node_ids = sorted({int(m.group(1)) for m in found if m})
        if not node_ids:
            continue
        ids = ["0", "1", *map(str, node_ids), "out"]
        labels = ["c_{k-2}", "c_{k-1}", *map(str, node_ids), "c_{k}"]
        positions = _arc(len(ids))
        kinds = ["input", "input", *["node"] * len(node_ids), "output"]
        nodes = tuple(
            Node(i, label, x, y, k)
            for i, label, (x, y), k in zip(ids, labels, positions, kinds, strict=True)
        )
        edges = []
        for j in node_ids:
            slots = sorted(int(m.group(2)) for m in found if m and int(m.group(1)) == j)
            for s in slots:
                op = str(genotype[f"{kind}.n{j}.op{s}"])
                source = genotype.get(f"{kind}.n{j}.in{s}")
                if op in NONE_OPS or source is None:
                    continue
                twice = sum(1 for t in slots[:s] if genotype.get(f"{kind}.n{j}.in{t}") == source)
                edges.append(Edge(str(source), str(j), op, "op", 0.25 * twice))
        edges += [Edge(str(j), "out", "", "concat") for j in node_ids]
        out.append(Component(f"{kind} cell", nodes, tuple(edges)))
    return tuple(out)


def nb201_graph(genotype: Genotype) -> tuple[Component, ...]:
    """One cell: nodes 0..n-1, edge ``edge.j.i`` from node i to node j labelled with its op."""
    ops = {}
    for key, value in genotype.items():
        if m := re.fullmatch(r"edge\.(\d+)\.(\d+)", key):
            ops[(int(m.group(1)), int(m.group(2)))] = str(value)
    n_nodes = max((j for j, _ in ops), default=0) + 1
    return (_dag("cell", n_nodes, ops),)


def hierarchical_graph(genotype: Genotype) -> tuple[Component, ...]:
    """The level-3 cell (edges labelled with motifs) and every level-2 motif it uses."""
    top: dict[tuple[int, int], str] = {}
    motifs: dict[str, dict[tuple[int, int], str]] = {}
    for key, value in genotype.items():
        if m := re.fullmatch(r"motif3\.e(\d+)_(\d+)", key):
            top[(int(m.group(1)), int(m.group(2)))] = str(value)
        elif m := re.fullmatch(r"motif2\.(\w+)\.e(\d+)_(\d+)", key):
            motifs.setdefault(m.group(1), {})[(int(m.group(2)), int(m.group(3)))] = str(value)
    n_top = max((j for j, _ in top), default=0) + 1
    out = [_dag("cell (level 3)", n_top, top)]
    used = [m for m in motifs if m in set(top.values())]
    for name in used:
        dag = motifs[name]
        out.append(_dag(f"motif {name} (level 2)", max(j for j, _ in dag) + 1, dag))
    return tuple(out)


BUILDERS: dict[str, Callable[[Genotype], tuple[Component, ...]]] = {
    "chain": chain_graph,
    "cell": darts_graph,
    "nb201": nb201_graph,
    "hierarchical": hierarchical_graph,
}


def genotype_graph(genotype: Genotype | Mapping[str, Any]) -> CellGraph:
    """Nodes and labelled edges for a genotype of a known space; a decisions table otherwise
    (also when a known space's decisions are not the expected ones)."""
    if not isinstance(genotype, Genotype):
        genotype = Genotype.from_dict(genotype)
    builder = BUILDERS.get(genotype.space)
    components: tuple[Component, ...] = ()
    if builder is not None:
        try:
            components = builder(genotype)
        except (KeyError, ValueError, TypeError):
            components = ()
    if components and any(c.edges for c in components):
        return CellGraph(genotype.space, components)
    return CellGraph(genotype.space, table=tuple((k, str(v)) for k, v in genotype.items()))
