"""The NAS-Bench-201 space: one cell (a DAG with an op on every edge) in a fixed ResNet-like skeleton.

Cell: nodes ``0..nodes-1`` (default 4); node 0 is the cell input, node ``j`` sums ``op_{j,i}(node i)``
over ``i < j``, the last node is the output. Decisions ``edge.{j}.{i}``. Default ops are the
benchmark's five; ``nor_conv_kxk`` is the registry's ReLU-conv-BN ``conv_kxk``. A custom ``ops=``
list uses registry names directly.

Skeleton (``build`` options): 3x3 conv + BN stem with ``channels`` (16), three stages of
``cells_per_stage`` (5) cells with ``channels`` x1/x2/x4, a stride-2 ResNet basic block between
stages, then BN-ReLU, global average pooling and a linear classifier.

The module also holds the DAG helpers the hierarchical space reuses: the NAS-Bench-201 string
``|op~0|+|op~0|op~1|+|...|`` and the pruning of edges that cannot affect the output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from nasplat.drawing import Drawing, dag_component
from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.genotype import Decision, Genotype
from nasplat.options import Option, from_defaults
from nasplat.registry import OPS, SPACES
from nasplat.shape import NetShape
from search_spaces.chain import parse_list
from search_spaces.common import (
    ISOMORPHISM_RULES,
    Dag,
    WeightSharingSpace,
    canonical_dag,
    dag_edges,
    format_dag,
    parse_dag,
)

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
ALIASES = {"nor_conv_1x1": "conv_1x1", "nor_conv_3x3": "conv_3x3"}
"""NAS-Bench-201 op names -> registry names."""
MEMO_SIZE = 20_000
"""Genotypes whose canonical form is remembered per space shape (the default has 15,625)."""
_CANONICAL_MEMO: dict[tuple[Any, ...], dict[Genotype, Genotype]] = {}


def resolve_op(name: str) -> str:
    """The registry name of an op (NAS-Bench-201 aliases resolved); unknown -> UnknownNameError."""
    registry_name = ALIASES.get(name, name)
    OPS.get(registry_name)
    return registry_name


def edge_name(j: int, i: int) -> str:
    return f"edge.{j}.{i}"


_EDGE_NAME = re.compile(r"edge\.(\d+)\.(\d+)")


@SPACES.register(
    "nb201", description="NAS-Bench-201 cell (4 nodes, 6 edges) in the benchmark skeleton"
)
class NB201Space(WeightSharingSpace):
    """The NAS-Bench-201 cell space (15,625 genotypes with the default five ops)."""

    name = "nb201"
    notation_format = "nb201"
    NET_DEFAULTS: ClassVar[dict[str, Any]] = {"channels": 16, "cells_per_stage": 5}
    OPTIONS = (
        Option("ops", "list[str]", NB201_OPS, "op of every edge (NAS-Bench-201 or registry names)"),
        Option("nodes", "int", 4, "nodes of the cell, input and output included"),
        Option(
            "isomorphism", "str", "function", f"equivalent cells: {', '.join(ISOMORPHISM_RULES)}"
        ),
        *from_defaults(
            NET_DEFAULTS,
            {
                "channels": "channels of the first stage (x2, x4 after)",
                "cells_per_stage": "cells in each of the three stages",
            },
        ),
    )

    def cell_count_option(self) -> str:
        return "cells_per_stage"

    def search_net_options(self) -> dict[str, Any]:
        """2 cells per stage of 8 channels (the benchmark's network has 5 of 16)."""
        return {"cells_per_stage": 2, "channels": 8}

    def __init__(
        self,
        *,
        ops: Any = NB201_OPS,
        nodes: int = 4,
        isomorphism: str = "function",
        **net_defaults: Any,
    ) -> None:
        ops_t = parse_list(ops, "ops")
        for op in ops_t:
            resolve_op(op)
        nodes = int(nodes)
        if nodes < 2:
            raise ConfigError(f"nb201 space needs nodes >= 2, got {nodes}")
        if isomorphism not in ISOMORPHISM_RULES:
            raise ConfigError(
                f"nb201: isomorphism must be one of {', '.join(ISOMORPHISM_RULES)}, "
                f"got {isomorphism!r}"
            )
        super().__init__(ops=list(dict.fromkeys(ops_t)), nodes=nodes, isomorphism=isomorphism)
        self.options.update(self.net_options(net_defaults))
        self._memo_key = (self.name, nodes, tuple(self.options["ops"]), isomorphism)

    def decisions(self) -> list[Decision]:
        ops = tuple(self.options["ops"])
        return [Decision(edge_name(j, i), ops) for j, i in dag_edges(self.options["nodes"])]

    def dag(self, genotype: Genotype) -> Dag:
        return {(j, i): str(genotype[edge_name(j, i)]) for j, i in dag_edges(self.options["nodes"])}

    def from_dag(self, ops: Mapping[tuple[int, int], str]) -> Genotype:
        return self.genotype({edge_name(j, i): op for (j, i), op in ops.items()})

    def canonicalize(self, genotype: Genotype) -> Genotype:
        """One representative per class of cells that compute the same function.

        With ``isomorphism="function"`` (the default) two cells are equivalent when their
        outputs are the same sum of the same ops applied to the same sub-expressions, using
        ``none`` = 0, ``skip_connect`` = identity, ``op(0)`` = 0 and that a sum's order (and
        nesting) does not matter; in particular intermediate nodes can be renumbered and edges
        that cannot reach the output are dead. The representative is the class member with
        the fewest non-``none`` edges, then the smallest op indices in edge order: a pruned
        cell. 4,930 classes on the benchmark's 15,625 cells. ``isomorphism="nb201"`` uses
        NAS-Bench-201's own key (6,466 classes), ``"prune"`` only prunes dead edges (9,445).
        Cached per space shape; a call is a dictionary lookup after ~0.4 s the first time, and
        the answers are remembered per space shape (up to :data:`MEMO_SIZE` genotypes), so the
        loop's space and the evaluator's compute each one once.
        """
        memo = _CANONICAL_MEMO.setdefault(self._memo_key, {})
        found = memo.get(genotype)
        if found is not None:
            return found
        self.validate(genotype)
        dag = canonical_dag(
            self.options["nodes"],
            self.dag(genotype),
            self.options["ops"],
            rule=self.options["isomorphism"],
        )
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[genotype] = canonical = self.from_dag(dag)
        return canonical

    def to_notation(self, genotype: Genotype) -> str:
        return format_dag(self.options["nodes"], self.dag(genotype))

    @classmethod
    def recognizes_notation(cls, text: str) -> bool:
        return text.lstrip().startswith("|")

    def from_notation(self, text: str) -> Genotype:
        if text.strip().startswith("{"):
            return super().from_notation(text)
        n_nodes, ops = parse_dag(text)
        if n_nodes != self.options["nodes"]:
            raise InvalidGenotypeError(
                f"{text!r} has {n_nodes} nodes; this nb201 space has nodes={self.options['nodes']}"
            )
        genotype = self.from_dag(ops)
        self.validate(genotype)
        return genotype

    # --- presentation --------------------------------------------------------------------------
    def drawing(self, genotype: Genotype) -> Drawing:
        """One cell: nodes 0..n-1, edge ``edge.j.i`` from node i to node j labelled with its op."""
        ops = {
            (int(m.group(1)), int(m.group(2))): str(value)
            for key, value in genotype.items()
            if (m := _EDGE_NAME.fullmatch(key))
        }
        n_nodes = max((j for j, _ in ops), default=0) + 1
        return Drawing((dag_component("cell", n_nodes, ops),))

    def decision_slot(self, name: str) -> str | None:
        """Every edge is its own slot: ``edge.3.1`` -> ``edge 1→3``."""
        match = _EDGE_NAME.fullmatch(name)
        return f"edge {match.group(2)}→{match.group(1)}" if match else None

    # --- networks ----------------------------------------------------------------------------
    def edge_candidates(self) -> dict[str, tuple[str, ...]]:
        return {d.name: tuple(d.choices) for d in self.decisions()}  # type: ignore[misc]

    def edge_ops(self, genotype: Genotype) -> dict[str, tuple[str, ...]]:
        return {d.name: (str(genotype[d.name]),) for d in self.decisions()}

    def derive(self, weights: Mapping[str, Mapping[str, float]]) -> Genotype:
        """Per edge the op with the largest weight, ``none`` included (as NAS-Bench-201's DARTS)."""
        return self.genotype({key: max(w, key=w.__getitem__) for key, w in weights.items()})

    def network(
        self, candidates: Mapping[str, Sequence[str]], shape: NetShape, **net_options: Any
    ) -> Any:
        """Stem, three stages of cells with residual reductions between, BN-ReLU-GAP-linear."""
        from search_spaces.supernet import (
            CellNetwork,
            ClassifierHead,
            DagCell,
            Edge,
            ResidualReduction,
            conv_bn,
            scaled,
        )

        opts = self.net_options(net_options)
        c = scaled(int(opts["channels"]), shape.width_mult)
        n = self.options["nodes"]
        blocks = []
        c_prev = c
        for stage in range(3):
            c_stage = c * 2**stage
            if stage:
                blocks.append(ResidualReduction(c_prev, c_stage))
            for _ in range(int(opts["cells_per_stage"])):
                edges = {
                    (j, i): Edge(
                        key,
                        candidates[key],
                        lambda op, c=c_stage: OPS.get(ALIASES.get(op, op))(c, c, 1),
                        channels=c_stage,
                    )
                    for j, i in dag_edges(n)
                    if (key := edge_name(j, i)) in candidates
                }
                blocks.append(DagCell(1, n, edges))
            c_prev = c_stage
        head = ClassifierHead(c_prev, shape.num_classes, pre_act=True)
        return CellNetwork(conv_bn(shape.in_channels, c), blocks, head)
