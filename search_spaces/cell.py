"""The DARTS cell space: a normal and a reduction cell stacked into a CIFAR-style network.

A cell takes the outputs of the two previous cells (nodes 0 and 1) and has ``nodes`` (4)
intermediate nodes ``2..nodes+1``; node ``j`` picks two inputs among nodes ``< j`` and an op for
each, and sums the two results; the cell outputs the concatenation of all intermediate nodes.
Decisions: ``{normal,reduce}.n{j}.{in0,op0,in1,op1}``.

``none`` is a supernet candidate only: as in DARTS, a genotype never chooses it (the op decisions
offer every configured op except ``none``). The two inputs of a node are unordered (canonical
form: pairs sorted); a node may take the same input twice (NASNet/AmoebaNet do), and an
(input, op) pair chosen twice applies one module twice, exactly as the supernet does; ``sample``
draws two distinct inputs, as DARTS derives them.

Network options (space defaults, overridable per ``build``): ``layers`` (5: small enough for
8x8 digits; DARTS uses 8 for search and 20 for CIFAR-10 evaluation), ``channels`` (16; DARTS
evaluation 36), ``stem_multiplier`` (3), ``stem_stride`` (1; 2 halves the input once, so the
cells of a 28x28 input run at 14x14), ``auxiliary`` (False: when True the network returns
``(logits, aux_logits)`` in training mode, the auxiliary head reading the cell at 2/3 depth;
eval mode always returns logits), ``drop_path_prob`` (0.0; an attribute of the network, set it
per epoch). Reduction cells sit at 1/3 and 2/3 depth and double the channels.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from nasplat.drawing import NONE_OPS, Component, Drawing, Edge, Node, arc
from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.genotype import Decision, Genotype
from nasplat.options import Option, from_defaults
from nasplat.registry import OPS, SPACES
from nasplat.shape import NetShape
from search_spaces.chain import parse_list
from search_spaces.common import WeightSharingSpace

DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
KINDS = ("normal", "reduce")

_PAIR = r"\(\s*(['\"])(\w+)\1\s*,\s*(\d+)\s*\)"
_PAIRS = re.compile(rf"\[\s*(?:{_PAIR}\s*(?:,\s*{_PAIR}\s*)*,?\s*)?\]")
_INTS = re.compile(r"\[\s*(?:\d+\s*(?:,\s*\d+\s*)*,?\s*)?\]")
_RANGE = re.compile(r"range\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_FIELD = re.compile(r"(\w+)\s*=\s*(\[[^\[\]]*\]|range\([^()]*\))")
_WRAPPER = re.compile(r"\s*(?:Genotype\s*)?\((.*)\)\s*", re.S)


def _parse_concat(field: str, text: str) -> list[int]:
    if (m := _RANGE.fullmatch(text)) is not None:
        return list(range(int(m.group(1)), int(m.group(2))))
    if _INTS.fullmatch(text) is None:
        raise InvalidGenotypeError(
            f"{field}: expected a list of node indices or range(a, b), got {text!r}"
        )
    return [int(v) for v in re.findall(r"\d+", text)]


def _parse_pairs(field: str, text: str) -> list[tuple[str, int]]:
    if _PAIRS.fullmatch(text) is None:
        raise InvalidGenotypeError(
            f"{field}: expected a list of ('op', input) pairs, got {text[:80]!r}"
        )
    return [(op, int(i)) for _, op, i in re.findall(_PAIR, text)]


def parse_darts(text: str) -> dict[str, Any]:
    """Read ``Genotype(normal=[('op', i), ...], normal_concat=[...], reduce=..., reduce_concat=...)``.

    A small regex parser (no eval): the ``Genotype(...)`` wrapper is optional, concat may be a
    list or ``range(a, b)``, quotes may be ' or ".
    """
    wrapped = _WRAPPER.fullmatch(text)
    body = wrapped.group(1) if wrapped is not None else text
    fields = {m.group(1): m.group(2) for m in _FIELD.finditer(body)}
    if _FIELD.sub("", body).replace(",", "").strip():
        raise InvalidGenotypeError(f"unreadable text in DARTS genotype: {text[:80]!r}")
    expected = [f"{kind}{suffix}" for kind in KINDS for suffix in ("", "_concat")]
    if sorted(fields) != sorted(expected):
        raise InvalidGenotypeError(
            f"a DARTS genotype has fields {', '.join(expected)}; got {', '.join(fields) or 'none'}"
        )
    return {
        name: _parse_concat(name, value) if name.endswith("_concat") else _parse_pairs(name, value)
        for name, value in fields.items()
    }


@SPACES.register("cell", description="DARTS cell space: normal + reduction cell, 4 nodes, 8 ops")
class CellSpace(WeightSharingSpace):
    """The DARTS search space (normal and reduction cells with ``nodes`` intermediate nodes)."""

    name = "cell"
    notation_format = "darts"
    NET_DEFAULTS: ClassVar[dict[str, Any]] = {
        "layers": 5,
        "channels": 16,
        "stem_multiplier": 3,
        "stem_stride": 1,
        "auxiliary": False,
        "drop_path_prob": 0.0,
    }
    OPTIONS = (
        Option("ops", "list[str]", DARTS_OPS, "candidate ops of every edge (none: supernet only)"),
        Option("nodes", "int", 4, "intermediate nodes per cell"),
        *from_defaults(
            NET_DEFAULTS,
            {
                "layers": "cells in the network (DARTS: 8 to search, 20 to evaluate)",
                "channels": "channels of the first cells (DARTS evaluation: 36)",
                "stem_multiplier": "stem channels = stem_multiplier x channels",
                "stem_stride": "stride of the stem conv (2: cells at half the input size)",
                "auxiliary": "auxiliary head at 2/3 depth (training returns two logits)",
                "drop_path_prob": "drop-path probability (set per epoch)",
            },
        ),
    )

    def __init__(self, *, ops: Any = DARTS_OPS, nodes: int = 4, **net_defaults: Any) -> None:
        ops_t = tuple(dict.fromkeys(parse_list(ops, "ops")))
        for op in ops_t:
            OPS.get(op)
        if all(op == "none" for op in ops_t):
            raise ConfigError("cell space needs at least one op other than 'none'")
        nodes = int(nodes)
        if nodes < 1:
            raise ConfigError(f"cell space needs nodes >= 1, got {nodes}")
        super().__init__(ops=list(ops_t), nodes=nodes)
        self.options.update(self.net_options(net_defaults))

    def cell_count_option(self) -> str:
        return "layers"

    def search_net_options(self) -> dict[str, Any]:
        """3 cells of 8 channels: as DARTS searches 8 cells and evaluates 20, smaller than the
        retrained network (a digits search takes a few CPU minutes)."""
        return {"layers": 3, "channels": 8}

    @property
    def node_ids(self) -> range:
        """Intermediate node ids ``2..nodes+1``."""
        return range(2, self.options["nodes"] + 2)

    @property
    def genotype_ops(self) -> tuple[str, ...]:
        """The ops a genotype may choose (every configured op but ``none``)."""
        return tuple(op for op in self.options["ops"] if op != "none")

    def decisions(self) -> list[Decision]:
        out = []
        for kind in KINDS:
            for j in self.node_ids:
                for slot in (0, 1):
                    out.append(Decision(f"{kind}.n{j}.in{slot}", tuple(range(j))))
                    out.append(Decision(f"{kind}.n{j}.op{slot}", self.genotype_ops))
        return out

    def pairs(self, genotype: Genotype, kind: str) -> list[tuple[str, int]]:
        """The DARTS list ``[(op, input), ...]`` of one cell kind (two pairs per node)."""
        return [
            (str(genotype[f"{kind}.n{j}.op{s}"]), int(genotype[f"{kind}.n{j}.in{s}"]))  # type: ignore[arg-type]
            for j in self.node_ids
            for s in (0, 1)
        ]

    def from_pairs(self, cells: Mapping[str, Sequence[tuple[str, int]]]) -> Genotype:
        """A genotype from DARTS pair lists per kind (in decision order, pairs kept in order)."""
        values: dict[str, Any] = {}
        for kind in KINDS:
            pairs = list(cells[kind])
            expected = 2 * self.options["nodes"]
            if len(pairs) != expected:
                raise InvalidGenotypeError(
                    f"{kind} has {len(pairs)} (op, input) pairs; nodes={self.options['nodes']} needs {expected}"
                )
            for k, (op, i) in enumerate(pairs):
                j, slot = 2 + k // 2, k % 2
                values[f"{kind}.n{j}.op{slot}"] = op
                values[f"{kind}.n{j}.in{slot}"] = i
        return self.genotype(values)

    def sample(self, rng: random.Random) -> Genotype:
        """Per node two distinct inputs and an op for each, uniformly."""
        values: dict[str, Any] = {}
        ops = self.genotype_ops
        for kind in KINDS:
            for j in self.node_ids:
                for slot, i in enumerate(rng.sample(range(j), 2)):
                    values[f"{kind}.n{j}.in{slot}"] = i
                    values[f"{kind}.n{j}.op{slot}"] = rng.choice(ops)
        return self.genotype(values)

    def canonicalize(self, genotype: Genotype) -> Genotype:
        """The two (input, op) pairs of every node sorted by input, then op."""
        self.validate(genotype)
        cells = {kind: self.pairs(genotype, kind) for kind in KINDS}
        for pairs in cells.values():
            for k in range(0, len(pairs), 2):
                pairs[k : k + 2] = sorted(pairs[k : k + 2], key=lambda p: (p[1], p[0]))
        return self.from_pairs(cells)

    # --- notation ----------------------------------------------------------------------------
    def to_notation(self, genotype: Genotype) -> str:
        """DARTS's ``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])``."""
        concat = list(self.node_ids)
        return (
            "Genotype("
            + ", ".join(
                f"{kind}={self.pairs(genotype, kind)!r}, {kind}_concat={concat!r}" for kind in KINDS
            )
            + ")"
        )

    @classmethod
    def recognizes_notation(cls, text: str) -> bool:
        return text.lstrip().startswith("Genotype(")

    def from_notation(self, text: str) -> Genotype:
        if text.strip().startswith("{"):
            return super().from_notation(text)
        fields = parse_darts(text)
        for kind in KINDS:
            if fields[f"{kind}_concat"] != list(self.node_ids):
                raise InvalidGenotypeError(
                    f"{kind}_concat must be {list(self.node_ids)} (every intermediate node); "
                    f"got {fields[f'{kind}_concat']}"
                )
        genotype = self.from_pairs({kind: fields[kind] for kind in KINDS})
        self.validate(genotype)
        return genotype

    # --- presentation --------------------------------------------------------------------------
    def drawing(self, genotype: Genotype) -> Drawing:
        """The normal and reduction cells: inputs c_{k-2}, c_{k-1}, nodes 2.., concat output."""
        out = []
        for kind in KINDS:
            found = [re.match(rf"{kind}\.n(\d+)\.op(\d+)$", k) for k in genotype]
            node_ids = sorted({int(m.group(1)) for m in found if m})
            if not node_ids:
                continue
            ids = ["0", "1", *map(str, node_ids), "out"]
            labels = ["c_{k-2}", "c_{k-1}", *map(str, node_ids), "c_{k}"]
            kinds = ["input", "input", *["node"] * len(node_ids), "output"]
            nodes = tuple(
                Node(i, label, x, y, k)
                for i, label, (x, y), k in zip(ids, labels, arc(len(ids)), kinds, strict=True)
            )
            edges = []
            for j in node_ids:
                slots = sorted(int(m.group(2)) for m in found if m and int(m.group(1)) == j)
                for s in slots:
                    op = str(genotype[f"{kind}.n{j}.op{s}"])
                    source = genotype.get(f"{kind}.n{j}.in{s}")
                    if op in NONE_OPS or source is None:
                        continue
                    twice = sum(
                        1 for t in slots[:s] if genotype.get(f"{kind}.n{j}.in{t}") == source
                    )
                    edges.append(Edge(str(source), str(j), op, "op", 0.25 * twice))
            edges += [Edge(str(j), "out", "", "concat") for j in node_ids]
            out.append(Component(f"{kind} cell", nodes, tuple(edges)))
        return Drawing(tuple(out))

    def decision_slot(self, name: str) -> str | None:
        """Both op decisions of a node fill the node: ``reduce.n4.op1`` -> ``reduce node 4``."""
        match = re.match(r"^(normal|reduce)\.n(\d+)\.op\d+$", name)
        return f"{match.group(1)} node {match.group(2)}" if match else None

    # --- networks ----------------------------------------------------------------------------
    def edge_key(self, kind: str, j: int, i: int) -> str:
        return f"{kind}.n{j}.e{i}"

    def edge_candidates(self) -> dict[str, tuple[str, ...]]:
        ops = tuple(self.options["ops"])
        return {
            self.edge_key(kind, j, i): ops
            for kind in KINDS
            for j in self.node_ids
            for i in range(j)
        }

    def edge_ops(self, genotype: Genotype) -> dict[str, tuple[str, ...]]:
        path: dict[str, tuple[str, ...]] = {}
        for kind in KINDS:
            for j in self.node_ids:
                for s in (0, 1):
                    key = self.edge_key(kind, j, int(genotype[f"{kind}.n{j}.in{s}"]))  # type: ignore[arg-type]
                    path[key] = (*path.get(key, ()), str(genotype[f"{kind}.n{j}.op{s}"]))
        return path

    def derive(self, weights: Mapping[str, Mapping[str, float]]) -> Genotype:
        """DARTS: per input edge its strongest non-``none`` op; keep the two strongest inputs."""
        values: dict[str, Any] = {}
        for kind in KINDS:
            for j in self.node_ids:
                scored = []
                for i in range(j):
                    w = weights[self.edge_key(kind, j, i)]
                    best = max((op for op in w if op != "none"), key=w.__getitem__)
                    scored.append((-w[best], i, best))
                for slot, (_, i, op) in enumerate(sorted(scored)[:2]):
                    values[f"{kind}.n{j}.in{slot}"] = i
                    values[f"{kind}.n{j}.op{slot}"] = op
        return self.canonicalize(self.genotype(values))

    def network(
        self, candidates: Mapping[str, Sequence[str]], shape: NetShape, **net_options: Any
    ) -> Any:
        """DARTS's evaluation network (NetworkCIFAR) holding the given edges."""
        from search_spaces.supernet import (
            AuxiliaryHead,
            CellNetwork,
            ClassifierHead,
            DagCell,
            Edge,
            conv_bn,
            scaled,
        )

        opts = self.net_options(net_options)
        layers, n = int(opts["layers"]), self.options["nodes"]
        if layers < 1:
            raise ConfigError(f"cell network needs layers >= 1, got {layers}")
        c_cur = scaled(int(opts["channels"]), shape.width_mult)
        stem_stride = int(opts["stem_stride"])
        if stem_stride not in (1, 2):
            raise ConfigError(f"cell network needs stem_stride 1 or 2, got {stem_stride}")
        c_pp = c_p = int(opts["stem_multiplier"]) * c_cur
        stem = conv_bn(shape.in_channels, c_p, stem_stride)
        aux_index = 2 * layers // 3
        reductions = {layers // 3, aux_index}
        blocks, reduction_prev, c_aux = [], False, c_p
        for index in range(layers):
            reduction = index in reductions
            c_cur *= 2 if reduction else 1
            kind = KINDS[reduction]
            pre0 = (
                OPS.get("skip_connect")(c_pp, c_cur, 2)
                if reduction_prev
                else OPS.get("conv_1x1")(c_pp, c_cur, 1)
            )
            pre1 = OPS.get("conv_1x1")(c_p, c_cur, 1)
            edges = {
                (j, i): Edge(
                    key,
                    candidates[key],
                    lambda op, c=c_cur, s=2 if reduction and i < 2 else 1: OPS.get(op)(c, c, s),
                    channels=c_cur,
                )
                for j in self.node_ids
                for i in range(j)
                if (key := self.edge_key(kind, j, i)) in candidates
            }
            blocks.append(DagCell(2, n + 2, edges, (pre0, pre1), concat=self.node_ids))
            reduction_prev, c_pp, c_p = reduction, c_p, n * c_cur
            if index == aux_index:
                c_aux = c_p
        classes = shape.num_classes
        aux = (aux_index, AuxiliaryHead(c_aux, classes)) if opts["auxiliary"] else None
        net = CellNetwork(stem, blocks, ClassifierHead(c_p, classes), aux)
        net.drop_path_prob = float(opts["drop_path_prob"])
        return net
