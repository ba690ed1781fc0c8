"""The hierarchical space of Liu et al. (2018), "Hierarchical Representations for Efficient
Architecture Search", with three levels.

- Level 1: primitives from the registry (``ops``; default ``conv_1x1``, ``dw_conv_3x3``,
  ``sep_conv_3x3``, ``max_pool_3x3``, ``avg_pool_3x3``, ``skip_connect`` (identity), ``none``
  (no edge)); all keep the channel count and the resolution.
- Level 2: ``motifs`` (6) motifs, DAGs of ``motif_nodes`` (4) nodes whose edges ``i < j`` hold a
  level-1 op. Decisions ``motif2.m{k}.e{j}_{i}``.
- Level 3: one motif of ``top_nodes`` (5) nodes whose edges hold a level-2 motif (``"m{k}"``),
  ``"skip_connect"`` or ``"none"``. Decisions ``motif3.e{j}_{i}``. The level-3 motif is the cell.

Node 0 of a motif is its input, the last node its output; a node *sums* its incoming edges (the
paper concatenates along channels; summing keeps every op at ``channels`` and is documented as
our choice). Every use of a motif has its own weights.

Network (``build`` options): 3x3 conv + BN stem with ``channels`` (16), ``stages`` (3) stages of
``cells_per_stage`` (1) cells with a stride-2 ``sep_conv_3x3`` doubling the channels between
stages, then global average pooling and a linear classifier (the paper's small search model).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from nasplat.drawing import Drawing, dag_component
from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.genotype import Decision, Genotype
from nasplat.options import Option, from_defaults
from nasplat.registry import OPS, SPACES
from nasplat.shape import NetShape
from search_spaces.chain import parse_list
from search_spaces.common import (
    Dag,
    NetOptionsSpace,
    dag_edges,
    format_dag,
    net_options,
    parse_dag,
    prune_dag,
)

LEVEL1_OPS = (
    "conv_1x1",
    "dw_conv_3x3",
    "sep_conv_3x3",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "none",
)
NET_DEFAULTS: dict[str, Any] = {"channels": 16, "cells_per_stage": 1, "stages": 3}
_PART = re.compile(r"\s*(m\d+|top)\s*=\s*(\S+)\s*")
_LEVEL2 = re.compile(r"motif2\.(\w+)\.e(\d+)_(\d+)")
_LEVEL3 = re.compile(r"motif3\.e(\d+)_(\d+)")


@SPACES.register("hierarchical", description="Liu et al. 2018 three-level hierarchical motifs")
class HierarchicalSpace(NetOptionsSpace):
    """Level-1 primitives, ``motifs`` level-2 motifs and one level-3 motif (the cell)."""

    name = "hierarchical"
    notation_format = "hierarchical"
    NET_DEFAULTS: ClassVar[dict[str, Any]] = NET_DEFAULTS
    OPTIONS = (
        Option("ops", "list[str]", LEVEL1_OPS, "level-1 primitives"),
        Option("motifs", "int", 6, "level-2 motifs"),
        Option("motif_nodes", "int", 4, "nodes of each level-2 motif"),
        Option("top_nodes", "int", 5, "nodes of the level-3 motif (the cell)"),
        *from_defaults(
            NET_DEFAULTS,
            {
                "channels": "channels of the stem and the first stage",
                "cells_per_stage": "cells in each stage",
                "stages": "stages, each doubling the channels",
            },
        ),
    )

    def cell_count_option(self) -> str:
        return "cells_per_stage"

    def __init__(
        self,
        *,
        ops: Any = LEVEL1_OPS,
        motifs: int = 6,
        motif_nodes: int = 4,
        top_nodes: int = 5,
        **net_defaults: Any,
    ) -> None:
        ops_t = tuple(dict.fromkeys(parse_list(ops, "ops")))
        for op in (*ops_t, "none", "skip_connect"):
            OPS.get(op)
        motifs, motif_nodes, top_nodes = int(motifs), int(motif_nodes), int(top_nodes)
        if motifs < 1 or motif_nodes < 2 or top_nodes < 2:
            raise ConfigError(
                "hierarchical space needs motifs >= 1, motif_nodes >= 2, top_nodes >= 2"
            )
        net = net_options(self.name, NET_DEFAULTS, net_defaults)
        super().__init__(
            ops=list(ops_t), motifs=motifs, motif_nodes=motif_nodes, top_nodes=top_nodes, **net
        )

    # --- decisions ---------------------------------------------------------------------------
    @property
    def motif_names(self) -> tuple[str, ...]:
        return tuple(f"m{k}" for k in range(self.options["motifs"]))

    @property
    def top_choices(self) -> tuple[str, ...]:
        return ("none", "skip_connect", *self.motif_names)

    @staticmethod
    def level2_name(motif: str, j: int, i: int) -> str:
        return f"motif2.{motif}.e{j}_{i}"

    @staticmethod
    def level3_name(j: int, i: int) -> str:
        return f"motif3.e{j}_{i}"

    def decisions(self) -> list[Decision]:
        ops = tuple(self.options["ops"])
        out = [
            Decision(self.level2_name(m, j, i), ops)
            for m in self.motif_names
            for j, i in dag_edges(self.options["motif_nodes"])
        ]
        out += [
            Decision(self.level3_name(j, i), self.top_choices)
            for j, i in dag_edges(self.options["top_nodes"])
        ]
        return out

    def motif_dag(self, genotype: Genotype, motif: str) -> Dag:
        return {
            (j, i): str(genotype[self.level2_name(motif, j, i)])
            for j, i in dag_edges(self.options["motif_nodes"])
        }

    def top_dag(self, genotype: Genotype) -> Dag:
        return {
            (j, i): str(genotype[self.level3_name(j, i)])
            for j, i in dag_edges(self.options["top_nodes"])
        }

    def from_dags(self, motifs: Mapping[str, Dag], top: Dag) -> Genotype:
        values: dict[str, Any] = {
            self.level2_name(m, j, i): op for m, dag in motifs.items() for (j, i), op in dag.items()
        }
        values.update({self.level3_name(j, i): op for (j, i), op in top.items()})
        return self.genotype(values)

    # --- identity and mutation -----------------------------------------------------------------
    def canonicalize(self, genotype: Genotype) -> Genotype:
        """Prune edges that cannot reach a motif's output, drop zero motifs from level 3, and
        reset level-2 motifs the cell does not use to all-``none``.

        Motif relabelling (swapping two level-2 motifs and their uses) is not canonicalized.
        """
        self.validate(genotype)
        g2, g3 = self.options["motif_nodes"], self.options["top_nodes"]
        motifs = {m: prune_dag(g2, self.motif_dag(genotype, m)) for m in self.motif_names}
        zero = {m for m, dag in motifs.items() if all(op == "none" for op in dag.values())}
        top = prune_dag(
            g3, {e: "none" if op in zero else op for e, op in self.top_dag(genotype).items()}
        )
        used = set(top.values())
        motifs = {m: dag if m in used else dict.fromkeys(dag, "none") for m, dag in motifs.items()}
        return self.from_dags(motifs, top)

    def mutate(self, genotype: Genotype, rng: random.Random, max_tries: int = 100) -> Genotype:
        """The paper's mutation: a level (2 or 3), a motif at it, an edge (successor j,
        predecessor i) and a different op; retried until the canonical form changes."""
        base = self.canonicalize(genotype).sha
        names = {d.name: d for d in self.decisions()}
        for _ in range(max_tries):
            level3 = rng.random() < 0.5
            nodes = self.options["top_nodes" if level3 else "motif_nodes"]
            j = rng.randrange(1, nodes)
            i = rng.randrange(j)
            name = (
                self.level3_name(j, i)
                if level3
                else self.level2_name(rng.choice(self.motif_names), j, i)
            )
            value = rng.choice([c for c in names[name].choices if c != genotype[name]])
            child = genotype.replace({name: value})
            if self.canonicalize(child).sha != base:
                return child
        return self._exhaustive_mutation(genotype, rng, base)

    def _exhaustive_mutation(self, genotype: Genotype, rng: random.Random, base: str) -> Genotype:
        """Fallback: any single change that alters the canonical form, in random order."""
        changes = [
            (d.name, c) for d in self.decisions() for c in d.choices if c != genotype[d.name]
        ]
        rng.shuffle(changes)
        for name, value in changes:
            child = genotype.replace({name: value})
            if self.canonicalize(child).sha != base:
                return child
        return genotype

    # --- notation ----------------------------------------------------------------------------
    def to_notation(self, genotype: Genotype) -> str:
        """``m0=|op~0|+|...|;...;top=|m3~0|+|...|``: each motif as a NAS-Bench-201 string."""
        parts = [
            f"{m}={format_dag(self.options['motif_nodes'], self.motif_dag(genotype, m))}"
            for m in self.motif_names
        ]
        parts.append(f"top={format_dag(self.options['top_nodes'], self.top_dag(genotype))}")
        return ";".join(parts)

    @classmethod
    def recognizes_notation(cls, text: str) -> bool:
        """``m0=...;...;top=...``: every part ``name=dag``, the last one ``top``."""
        parts = [_PART.fullmatch(part) for part in text.split(";")]
        return len(parts) > 1 and all(parts) and parts[-1].group(1) == "top"  # type: ignore[union-attr]

    def from_notation(self, text: str) -> Genotype:
        if text.strip().startswith("{"):
            return super().from_notation(text)
        parts = []
        for part in text.split(";"):
            match = _PART.fullmatch(part)
            if match is None:
                raise InvalidGenotypeError(f"cannot read {part!r}; expected name=|op~0|+|...|")
            parts.append(match.groups())
        expected = [*self.motif_names, "top"]
        if [name for name, _ in parts] != expected:
            raise InvalidGenotypeError(
                f"expected parts {', '.join(expected)} in order; got {text[:80]!r}"
            )
        dags = {}
        for name, dag_text in parts:
            nodes, dags[name] = parse_dag(dag_text)
            want = self.options["top_nodes" if name == "top" else "motif_nodes"]
            if nodes != want:
                raise InvalidGenotypeError(f"{name} has {nodes} nodes; expected {want}")
        top = dags.pop("top")
        genotype = self.from_dags(dags, top)
        self.validate(genotype)
        return genotype

    # --- presentation --------------------------------------------------------------------------
    def drawing(self, genotype: Genotype) -> Drawing:
        """The level-3 cell (edges labelled with motifs) and every level-2 motif it uses."""
        top: dict[tuple[int, int], str] = {}
        motifs: dict[str, dict[tuple[int, int], str]] = {}
        for key, value in genotype.items():
            if m := _LEVEL3.fullmatch(key):
                top[(int(m.group(1)), int(m.group(2)))] = str(value)
            elif m := _LEVEL2.fullmatch(key):
                motifs.setdefault(m.group(1), {})[(int(m.group(2)), int(m.group(3)))] = str(value)
        n_top = max((j for j, _ in top), default=0) + 1
        out = [dag_component("cell (level 3)", n_top, top)]
        used = set(top.values())
        for name, dag in motifs.items():
            if name in used:
                out.append(
                    dag_component(f"motif {name} (level 2)", max(j for j, _ in dag) + 1, dag)
                )
        return Drawing(tuple(out))

    def decision_slot(self, name: str) -> str | None:
        """``motif2.m1.e2_0`` -> ``m1 edge 0→2``; ``motif3.e4_3`` -> ``cell edge 3→4``."""
        if match := _LEVEL2.fullmatch(name):
            return f"{match.group(1)} edge {match.group(3)}→{match.group(2)}"
        if match := _LEVEL3.fullmatch(name):
            return f"cell edge {match.group(2)}→{match.group(1)}"
        return None

    # --- network -----------------------------------------------------------------------------
    def build(self, genotype: Genotype, shape: NetShape | None = None, **net_options: Any) -> Any:
        """Stem, stages of level-3 cells with stride-2 separable convs between, GAP, linear."""
        from search_spaces.supernet import (
            CellNetwork,
            CellOp,
            ClassifierHead,
            DagCell,
            Edge,
            conv_bn,
            scaled,
        )

        self.validate(genotype)
        shape = shape or NetShape()
        opts = self.net_options(net_options)
        path = {name: (str(value),) for name, value in genotype.items()}
        g2, g3 = self.options["motif_nodes"], self.options["top_nodes"]

        def edges(keys: Mapping[tuple[int, int], str], make: Any) -> dict[tuple[int, int], Any]:
            return {e: Edge(key, path[key], make) for e, key in keys.items()}

        def motif(name: str, c: int) -> CellOp:
            keys = {(j, i): self.level2_name(name, j, i) for j, i in dag_edges(g2)}
            return CellOp(DagCell(1, g2, edges(keys, lambda op: OPS.get(op)(c, c, 1))), path)

        def level3_op(value: str, c: int) -> Any:
            return motif(value, c) if value in self.motif_names else OPS.get(value)(c, c, 1)

        top_keys = {(j, i): self.level3_name(j, i) for j, i in dag_edges(g3)}
        c = scaled(int(opts["channels"]), shape.width_mult)
        blocks: list[Any] = []
        c_prev = c
        for stage in range(int(opts["stages"])):
            c_stage = c * 2**stage
            if stage:
                blocks.append(OPS.get("sep_conv_3x3")(c_prev, c_stage, 2))
            for _ in range(int(opts["cells_per_stage"])):
                make = lambda v, c=c_stage: level3_op(v, c)  # noqa: E731
                blocks.append(DagCell(1, g3, edges(top_keys, make)))
            c_prev = c_stage
        head = ClassifierHead(c_prev, shape.num_classes)
        net = CellNetwork(conv_bn(shape.in_channels, c), blocks, head)
        net.path = path
        return net
