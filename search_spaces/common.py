"""Shared, torch-free pieces of the cell-based spaces: the weight-sharing base class, network
option handling and DAG helpers (pruning, the NAS-Bench-201 string form).

Torch modules live in :mod:`search_spaces.supernet`, imported only by ``build``/``supernet``.
"""

from __future__ import annotations

import itertools
import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar

from nasplat.diskcache import cached_marshal
from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.genotype import Genotype
from nasplat.shape import NetShape
from nasplat.space import SearchSpace

Dag = dict[tuple[int, int], str]
"""(successor j, predecessor i) -> op name, for ``0 <= i < j < n_nodes``."""

_GROUP = re.compile(r"\|((?:[A-Za-z0-9_\-]+~\d+\|)+)")
_TOKEN = re.compile(r"([A-Za-z0-9_\-]+)~(\d+)")


def net_options(
    space: str, defaults: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Network options: ``defaults`` overridden by ``given``; an unknown name is a ConfigError."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = f"; known: {', '.join(defaults)}" if defaults else ""
        raise ConfigError(f"unknown network option(s) for {space}: {', '.join(unknown)}{known}")
    return {**defaults, **given}


def dag_edges(n_nodes: int) -> list[tuple[int, int]]:
    """All edges ``(j, i)``, ``i < j``, in NAS-Bench-201 string order (by ``j``, then ``i``)."""
    return [(j, i) for j in range(1, n_nodes) for i in range(j)]


def prune_dag(n_nodes: int, ops: Mapping[tuple[int, int], str], zero: str = "none") -> Dag:
    """Set to ``zero`` every edge that cannot affect the output (the last node).

    An edge ``(j, i)`` matters when node ``i`` is reachable from node 0 through non-zero edges
    and node ``j`` reaches the output. If the output is unreachable the whole DAG is zero.
    One pass suffices, so the result is a fixed point (pruning is idempotent).
    """
    live = {e for e, op in ops.items() if op != zero}
    reached = {0}
    for j in range(1, n_nodes):
        if any((j, i) in live and i in reached for i in range(j)):
            reached.add(j)
    out = n_nodes - 1
    reaches = {out}
    for i in range(out - 1, -1, -1):
        if any((j, i) in live and j in reaches for j in range(i + 1, n_nodes)):
            reaches.add(i)
    alive = out in reached
    return {
        (j, i): op if alive and (j, i) in live and i in reached and j in reaches else zero
        for (j, i), op in ops.items()
    }


ENUMERATION_LIMIT = 250_000
"""Cell spaces with at most this many cells get exact isomorphism classes (enumerated once)."""


ISOMORPHISM_RULES = ("function", "nb201", "prune")
"""How cell spaces merge equivalent cells; see :func:`canonical_dag` and docs/spaces.md."""


def dag_expression(
    n_nodes: int,
    ops: Mapping[tuple[int, int], str],
    zero: str = "none",
    identity: str = "skip_connect",
    rule: str = "function",
) -> str:
    """The output node as a normalised expression: equal keys, same function.

    ``rule="function"``: node 0 is ``x``; a node is the multiset of its non-zero terms, an
    edge ``op`` from a non-zero node ``i`` adds the term ``op(node i)``, an ``identity`` edge
    adds node ``i``'s terms themselves (``skip(a + b) = a + b``), a ``zero`` edge or an edge
    from a zero node (no terms) adds nothing. Terms are sorted, so the order of summation
    does not matter. The key is the output node's terms joined by ``+`` (``0`` when none).

    ``rule="nb201"``: NAS-Bench-201's own ``to_unique_str(consider_zero=True)`` rule, which
    keeps a ``#`` per zero term and only recognises a zero source when it had a single input,
    so it merges less (6,466 classes on the 15,625 cells against 4,930).
    """
    if rule == "nb201":
        strings = ["0"]
        for j in range(1, n_nodes):
            terms = []
            for i in range(j):
                op, source = ops[(j, i)], strings[i]
                if op == zero or source == "#":
                    terms.append("#")
                else:
                    terms.append(source if op == identity else f"({source})@{op}")
            strings.append("+".join(sorted(terms)))
        return strings[-1]
    nodes: list[list[str]] = [["x"]]
    for j in range(1, n_nodes):
        node: list[str] = []
        for i in range(j):
            op, source = ops[(j, i)], nodes[i]
            if op == zero or not source:
                continue
            if op == identity:
                node.extend(source)
            else:
                node.append(f"{op}({'+'.join(source)})")
        node.sort()
        nodes.append(node)
    return "+".join(nodes[-1]) or "0"


CLASSES_VERSION = 1  # bump when the classes or their representatives change


@lru_cache(maxsize=16)
def _representatives(
    n_nodes: int, choices: tuple[str, ...], zero: str, identity: str, rule: str
) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Each cell (ops in ``dag_edges`` order) -> its class representative: the member with the
    fewest non-zero edges, then the smallest choice indices in edge order. Computed once per
    machine (kept in nasplat's disk cache: it is most of a short tabular search's set-up)."""
    key = (CLASSES_VERSION, n_nodes, choices, zero, identity, rule)
    codes = cached_marshal(
        "cell-classes", key, lambda: _enumerate_classes(n_nodes, choices, zero, identity, rule)
    )
    cells = list(itertools.product(choices, repeat=len(dag_edges(n_nodes))))
    return {cell: cells[code] for cell, code in zip(cells, codes, strict=True)}


def _enumerate_classes(
    n_nodes: int, choices: tuple[str, ...], zero: str, identity: str, rule: str
) -> list[int]:
    """The representative of every cell, both as positions in ``itertools.product`` order."""
    edges = dag_edges(n_nodes)
    best: dict[str, tuple[tuple[int, tuple[int, ...]], tuple[str, ...]]] = {}
    keys: dict[tuple[str, ...], str] = {}
    for indices in itertools.product(range(len(choices)), repeat=len(edges)):
        cell = tuple(choices[k] for k in indices)
        key = keys[cell] = dag_expression(
            n_nodes, dict(zip(edges, cell, strict=True)), zero, identity, rule
        )
        rank = (sum(op != zero for op in cell), indices)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, cell)
    position = {cell: n for n, cell in enumerate(keys)}
    return [position[best[key][1]] for key in keys.values()]


def _relabelled(n_nodes: int, ops: Mapping[tuple[int, int], str], zero: str, rank: Any) -> Dag:
    """The smallest (by ``rank``) relabelling of the intermediate nodes that keeps every
    non-zero edge pointing forward (a graph isomorphism, so the same function)."""
    best = dict(ops)
    if n_nodes > 7:  # 5! relabellings at most; larger cells keep their labels
        return best
    middle = list(range(1, n_nodes - 1))
    best_rank = rank(best)
    for perm in itertools.permutations(middle):
        label = {0: 0, n_nodes - 1: n_nodes - 1, **dict(zip(middle, perm, strict=True))}
        if any(op != zero and label[i] >= label[j] for (j, i), op in ops.items()):
            continue
        moved = {(label[j], label[i]): op for (j, i), op in ops.items() if op != zero}
        dag = {edge: moved.get(edge, zero) for edge in ops}
        if (r := rank(dag)) < best_rank:
            best, best_rank = dag, r
    return best


def canonical_dag(
    n_nodes: int,
    ops: Mapping[tuple[int, int], str],
    choices: Sequence[str],
    zero: str = "none",
    identity: str = "skip_connect",
    rule: str = "function",
) -> Dag:
    """One representative per class of equivalent cells (rules in docs/spaces.md).

    ``rule`` ``function`` or ``nb201`` on a space of at most :data:`ENUMERATION_LIMIT` cells:
    cells are equivalent when their :func:`dag_expression` keys are equal; the representative
    is the class member with the fewest non-zero edges, then the smallest choice indices in
    edge order (with ``function`` it is therefore pruned), computed once per space shape and
    cached. Larger spaces: :func:`prune_dag`, then the smallest relabelling of the
    intermediate nodes (graph isomorphism). ``rule="prune"``: :func:`prune_dag` only.
    """
    if rule not in ISOMORPHISM_RULES:
        raise ConfigError(
            f"unknown isomorphism rule {rule!r}; known: {', '.join(ISOMORPHISM_RULES)}"
        )
    if rule == "prune":
        return prune_dag(n_nodes, ops, zero)
    choices = tuple(choices)
    edges = dag_edges(n_nodes)
    if len(choices) ** len(edges) <= ENUMERATION_LIMIT and all(ops[e] in choices for e in edges):
        reps = _representatives(n_nodes, choices, zero, identity, rule)
        return dict(zip(edges, reps[tuple(ops[e] for e in edges)], strict=True))
    index = {op: k for k, op in enumerate(choices)}

    def rank(dag: Mapping[tuple[int, int], str]) -> tuple[int, ...]:
        return tuple(index.get(dag[e], len(index)) for e in edges)

    return _relabelled(n_nodes, prune_dag(n_nodes, ops, zero), zero, rank)


def format_dag(n_nodes: int, ops: Mapping[tuple[int, int], Any]) -> str:
    """``|op~0|+|op~0|op~1|+|...|``: one group per node ``j >= 1`` listing its inputs in order."""
    return "+".join(
        "|" + "|".join(f"{ops[(j, i)]}~{i}" for i in range(j)) + "|" for j in range(1, n_nodes)
    )


def parse_dag(text: str) -> tuple[int, Dag]:
    """Parse :func:`format_dag` output into ``(n_nodes, {(j, i): op})``; strict about order."""
    groups = text.strip().split("+")
    ops: Dag = {}
    for j, group in enumerate(groups, start=1):
        match = _GROUP.fullmatch(group.strip())
        if match is None:
            raise InvalidGenotypeError(f"cannot read the group of node {j}, {group!r}, in {text!r}")
        tokens = _TOKEN.findall(match.group(1))
        inputs = [int(i) for _, i in tokens]
        if inputs != list(range(j)):
            raise InvalidGenotypeError(
                f"the group of node {j}, {group!r}, must list inputs ~0..~{j - 1} in order; got {inputs}"
            )
        ops.update({(j, int(i)): op for op, i in tokens})
    return len(groups) + 1, ops


class NetOptionsSpace(SearchSpace):
    """A space with network options (``NET_DEFAULTS``): given to the space they become its
    defaults (kept in ``options``), and any ``build`` call may override them."""

    NET_DEFAULTS: ClassVar[dict[str, Any]] = {}

    def net_defaults(self) -> dict[str, Any]:
        return dict(self.NET_DEFAULTS)

    def net_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """This space's network options (its defaults, then ``given``)."""
        defaults = {k: self.options.get(k, v) for k, v in self.NET_DEFAULTS.items()}
        return net_options(self.name, defaults, given)


class WeightSharingSpace(NetOptionsSpace):
    """A space whose networks are built from named edges, so it also offers a supernet.

    Subclasses implement ``edge_candidates``, ``edge_ops``, ``network`` and ``derive`` (see
    :mod:`search_spaces.supernet`); ``build`` and ``supernet`` come from here.
    """

    def has_supernet(self) -> bool:
        return True

    @abstractmethod
    def edge_candidates(self) -> dict[str, tuple[str, ...]]:
        """Every edge key and its candidate ops (what the supernet holds)."""

    @abstractmethod
    def edge_ops(self, genotype: Genotype) -> dict[str, tuple[str, ...]]:
        """The ops each edge key runs for a genotype (its path); unused keys are absent."""

    @abstractmethod
    def network(
        self, candidates: Mapping[str, Sequence[str]], shape: NetShape, **net_options: Any
    ) -> Any:
        """A ``RoutedNetwork`` holding the given edges (all candidates, or one genotype's path)."""

    @abstractmethod
    def derive(self, weights: Mapping[str, Mapping[str, float]]) -> Genotype:
        """The genotype that softmax weights per edge key and op point to."""

    def build(self, genotype: Genotype, shape: NetShape | None = None, **net_options: Any) -> Any:
        """The standalone network of a genotype (module names mirror the supernet's)."""
        from search_spaces.supernet import build_standalone

        return build_standalone(self, genotype, shape or NetShape(), **net_options)

    def supernet(
        self,
        shape: NetShape | None = None,
        *,
        mode: str = "continuous",
        partial_channels: int = 1,
        edge_normalization: bool = False,
        **net_options: Any,
    ) -> Any:
        """A :class:`search_spaces.supernet.Supernet`: every candidate op on every edge
        (``partial_channels``, ``edge_normalization``: PC-DARTS, see
        :func:`search_spaces.supernet.build_supernet`)."""
        from search_spaces.supernet import build_supernet

        return build_supernet(
            self,
            shape or NetShape(),
            mode,
            partial_channels=partial_channels,
            edge_normalization=edge_normalization,
            **net_options,
        )
