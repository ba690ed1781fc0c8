"""The chain space: a plain sequence of layers, each choosing an operator and a width.

Decisions per layer ``i``: ``layer{i}.op`` (an operator name), ``layer{i}.width`` (output
channels before ``width_mult``), optionally ``layer{i}.skip`` (add a residual connection
around the layer) and ``layer{i}.act`` / ``layer{i}.norm`` when more than one activation or
normalisation is offered (passed to operators that take ``act``/``norm`` keywords).
Layers listed in ``reduce_at`` use stride 2.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from nasplat.drawing import Component, Drawing, Edge, Node
from nasplat.errors import ConfigError
from nasplat.genotype import Decision, Genotype
from nasplat.options import Option
from nasplat.registry import OPS, SPACES
from nasplat.shape import NetShape
from nasplat.space import SearchSpace
from search_spaces.common import net_options as net_options_of

DEFAULT_OPS = (
    "conv_3x3",
    "conv_5x5",
    "sep_conv_3x3",
    "dil_conv_3x3",
    "res_basic",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
)


def parse_list(value: Any, name: str, cast: type = str) -> tuple[Any, ...]:
    """A tuple from a list or a comma-separated string (as given on the command line)."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = tuple(cast(item.strip()) if isinstance(item, str) else cast(item) for item in items)
    except ValueError:
        raise ConfigError(
            f"option {name!r}: cannot read {value!r} as a list of {cast.__name__}"
        ) from None
    if not out:
        raise ConfigError(f"option {name!r} must not be empty")
    return out


def accepts_keyword(factory: Any, keyword: str) -> bool:
    """Whether an operator factory takes ``keyword`` explicitly."""
    try:
        return keyword in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


@SPACES.register(
    "chain", description="a chain of layers, each choosing an operator, width and skip"
)
class ChainSpace(SearchSpace):
    """A chain of ``layers`` layers: operator, width and residual skip per layer."""

    name = "chain"
    OPTIONS = (
        Option("layers", "int", 4, "number of layers"),
        Option("ops", "list[str]", DEFAULT_OPS, "operators each layer chooses from (list ops)"),
        Option("widths", "list[int]", (16, 32, 64), "output channels each layer chooses from"),
        Option("skip", "bool", True, "each layer also chooses a residual connection around it"),
        Option("acts", "list[str]", ("relu",), "activations (a decision when more than one)"),
        Option("norms", "list[str]", ("batch",), "normalisations (a decision when more than one)"),
        Option("reduce_at", "list[int]", None, "layers of stride 2 (default: middle and last)"),
        Option("stem_channels", "int", 16, "channels of the 3x3 stem convolution"),
    )

    def __init__(
        self,
        *,
        layers: int = 4,
        ops: Any = DEFAULT_OPS,
        widths: Any = (16, 32, 64),
        skip: bool = True,
        acts: Any = ("relu",),
        norms: Any = ("batch",),
        reduce_at: Any = None,
        stem_channels: int = 16,
    ) -> None:
        layers = int(layers)
        if layers < 1:
            raise ConfigError(f"chain space needs layers >= 1, got {layers}")
        ops_t = parse_list(ops, "ops")
        for op in ops_t:
            OPS.get(op)  # unknown operator -> error listing the known ones
        reduce_t = (
            parse_list(reduce_at, "reduce_at", int)
            if reduce_at is not None
            else tuple(sorted({layers // 2, layers - 1} - {0})) or ()
        )
        super().__init__(
            layers=layers,
            ops=list(ops_t),
            widths=list(parse_list(widths, "widths", int)),
            skip=bool(skip),
            acts=list(parse_list(acts, "acts")),
            norms=list(parse_list(norms, "norms")),
            reduce_at=list(reduce_t),
            stem_channels=int(stem_channels),
        )

    def decisions(self) -> list[Decision]:
        o = self.options
        out: list[Decision] = []
        for i in range(o["layers"]):
            out.append(Decision(f"layer{i}.op", tuple(o["ops"])))
            out.append(Decision(f"layer{i}.width", tuple(o["widths"])))
            if o["skip"]:
                out.append(Decision(f"layer{i}.skip", (False, True)))
            if len(o["acts"]) > 1:
                out.append(Decision(f"layer{i}.act", tuple(o["acts"])))
            if len(o["norms"]) > 1:
                out.append(Decision(f"layer{i}.norm", tuple(o["norms"])))
        return out

    def canonicalize(self, genotype: Genotype) -> Genotype:
        """Act/norm choices are irrelevant for operators that take no such keyword."""
        values = dict(genotype)
        for i in range(self.options["layers"]):
            op = values.get(f"layer{i}.op")
            if op not in OPS:
                continue
            factory = OPS.get(op)
            for key, default in (
                ("act", self.options["acts"][0]),
                ("norm", self.options["norms"][0]),
            ):
                name = f"layer{i}.{key}"
                if name in values and not accepts_keyword(factory, key):
                    values[name] = default
        return self.genotype(values)

    def layer_specs(self, genotype: Genotype) -> list[dict[str, Any]]:
        """Per layer: op, width, stride, skip and op keywords."""
        o = self.options
        specs = []
        for i in range(o["layers"]):
            kwargs = {}
            factory = OPS.get(genotype[f"layer{i}.op"])
            for key in ("act", "norm"):
                name = f"layer{i}.{key}"
                value = genotype[name] if name in genotype else o[f"{key}s"][0]
                if accepts_keyword(factory, key) and len(o[f"{key}s"]) > 1:
                    kwargs[key] = value
            specs.append(
                {
                    "op": genotype[f"layer{i}.op"],
                    "width": int(genotype[f"layer{i}.width"]),
                    "stride": 2 if i in o["reduce_at"] else 1,
                    "skip": bool(genotype[f"layer{i}.skip"]) if o["skip"] else False,
                    "kwargs": kwargs,
                }
            )
        return specs

    # --- presentation --------------------------------------------------------------------------
    def summary(self, genotype: Genotype) -> str:
        """One label per layer, ``conv_3x3 ×16 +skip | max_pool_3x3 ×32``."""
        return " | ".join(
            _layer_label(genotype, i) + (" +skip" if genotype.get(f"layer{i}.skip") is True else "")
            for i in _layers(genotype)
        )

    def drawing(self, genotype: Genotype) -> Drawing:
        """Input, then one node per layer; edges carry the op (and width), skips arc above."""
        layers = _layers(genotype)
        nodes = [Node("in", "input", 0.0, 0.0, "input")]
        edges = []
        for pos, i in enumerate(layers, start=1):
            last = pos == len(layers)
            nodes.append(Node(f"L{i}", f"L{i}", float(pos), 0.0, "output" if last else "node"))
            edges.append(Edge(nodes[pos - 1].id, nodes[pos].id, _layer_label(genotype, i)))
            if genotype.get(f"layer{i}.skip") is True:
                edges.append(Edge(nodes[pos - 1].id, nodes[pos].id, "+skip", "skip", 0.35))
        return Drawing((Component("chain", tuple(nodes), tuple(edges)),))

    def decision_slot(self, name: str) -> str | None:
        """``layer3.op`` -> ``layer 3``; widths, skips, activations choose no operator."""
        match = re.match(r"^layer(\d+)\.op$", name)
        return f"layer {match.group(1)}" if match else None

    # --- network -----------------------------------------------------------------------------
    def build(self, genotype: Genotype, shape: NetShape | None = None, **net_options: Any) -> Any:
        from search_spaces.chain_net import ChainNet

        net_options_of("chain", {}, net_options)
        self.validate(genotype)
        shape = shape or NetShape()
        return ChainNet(
            self.layer_specs(genotype),
            in_channels=shape.in_channels,
            num_classes=shape.num_classes,
            stem_channels=self.options["stem_channels"],
            width_mult=shape.width_mult,
        )

    # --- supernet (machinery in search_spaces.supernet) ---------------------------------------
    # Edge ``layer{i}`` holds one candidate per (input width, canonical layer decisions), named
    # "<c_in>-<values>"; edge ``head`` holds one linear classifier per last-layer width.

    def _layer_table(self, i: int) -> dict[str, tuple[int, dict[str, Any]]]:
        """Supernet candidates of layer ``i``: name -> (input width, canonical decision values)."""
        names = [d.name for d in self.decisions() if d.name.startswith(f"layer{i}.")]
        base = self.genotype({d.name: d.choices[0] for d in self.decisions()})
        c_ins = [self.options["stem_channels"]] if i == 0 else self.options["widths"]
        table: dict[str, tuple[int, dict[str, Any]]] = {}
        for combo in itertools.product(*(self.decision_map()[n].choices for n in names)):
            canonical = self.canonicalize(base.replace(dict(zip(names, combo, strict=True))))
            values = {n.split(".", 1)[1]: canonical[n] for n in names}
            for c_in in c_ins:
                table["-".join(map(str, (c_in, *values.values())))] = (c_in, values)
        return table

    def edge_candidates(self) -> dict[str, tuple[str, ...]]:
        out = {f"layer{i}": tuple(self._layer_table(i)) for i in range(self.options["layers"])}
        return {**out, "head": tuple(f"w{w}" for w in self.options["widths"])}

    def edge_ops(self, genotype: Genotype) -> dict[str, tuple[str, ...]]:
        canonical = self.canonicalize(genotype)
        path: dict[str, tuple[str, ...]] = {}
        c_in = self.options["stem_channels"]
        for i in range(self.options["layers"]):
            values = [
                canonical[d.name] for d in self.decisions() if d.name.startswith(f"layer{i}.")
            ]
            path[f"layer{i}"] = ("-".join(map(str, (c_in, *values))),)
            c_in = int(canonical[f"layer{i}.width"])  # type: ignore[arg-type]
        path["head"] = (f"w{c_in}",)
        return path

    def derive(self, weights: Mapping[str, Mapping[str, float]]) -> Genotype:
        """Per layer the strongest candidate whose input width matches the previous choice."""
        values: dict[str, Any] = {}
        c_in = self.options["stem_channels"]
        for i in range(self.options["layers"]):
            table, w = self._layer_table(i), weights[f"layer{i}"]
            best = max((n for n, (c, _) in table.items() if c == c_in), key=w.__getitem__)
            values.update({f"layer{i}.{k}": v for k, v in table[best][1].items()})
            c_in = int(values[f"layer{i}.width"])
        return self.canonicalize(self.genotype(values))

    def has_supernet(self) -> bool:
        return True

    def network(self, candidates: Mapping[str, Sequence[str]], shape: NetShape) -> Any:
        """An ``EdgeChain`` holding the given candidates (module names mirror ``ChainNet``)."""
        from torch import nn

        from search_spaces.chain_net import ChainLayer, ChainNet, Shortcut, scaled
        from search_spaces.supernet import Edge, EdgeChain

        base = self.genotype({d.name: d.choices[0] for d in self.decisions()})
        width_mult = shape.width_mult

        def layer(i: int, table: dict[str, tuple[int, dict[str, Any]]], name: str) -> nn.Module:
            c_in, values = table[name]
            genotype = base.replace({f"layer{i}.{k}": v for k, v in values.items()})
            spec = self.layer_specs(genotype)[i]
            c, c_out = scaled(c_in, width_mult), scaled(spec["width"], width_mult)
            op = OPS.get(spec["op"])(c, c_out, spec["stride"], **spec["kwargs"])
            shortcut = Shortcut(c, c_out, spec["stride"]) if spec["skip"] else None
            return ChainLayer(op, shortcut)

        layers = []
        for i in range(self.options["layers"]):
            table = self._layer_table(i)
            layers.append(
                Edge(f"layer{i}", candidates[f"layer{i}"], lambda n, i=i, t=table: layer(i, t, n))
            )
        head = Edge(
            "head",
            candidates["head"],
            lambda n: nn.Linear(scaled(int(n[1:]), width_mult), shape.num_classes),
        )
        stem = ChainNet(
            [],
            in_channels=shape.in_channels,
            num_classes=shape.num_classes,
            stem_channels=self.options["stem_channels"],
            width_mult=width_mult,
        ).stem
        return EdgeChain(stem, layers, head)

    def supernet(
        self,
        shape: NetShape | None = None,
        *,
        mode: str = "continuous",
        partial_channels: int = 1,
        edge_normalization: bool = False,
        **net_options: Any,
    ) -> Any:
        """Weight-sharing supernet: per layer one module per (input width, op, width, skip, ...).

        Single-path mode works for any genotype. The continuous (DARTS) mixture needs outputs of
        one width, so ``mode="continuous"`` requires a single entry in ``widths``. PC-DARTS's
        ``partial_channels`` and ``edge_normalization`` need cells: anything but 1 and False is
        a ConfigError (from :func:`~search_spaces.supernet.build_supernet`).
        """
        from search_spaces.supernet import build_supernet

        net_options_of("chain", {}, net_options)
        if mode == "continuous" and len(self.options["widths"]) > 1:
            raise ConfigError(
                "chain supernet: continuous mode mixes ops of one width; this space offers widths "
                f"{self.options['widths']} (use mode='single_path' or a single width)"
            )
        return build_supernet(
            self,
            shape or NetShape(),
            mode,
            partial_channels=partial_channels,
            edge_normalization=edge_normalization,
        )


def _layers(genotype: Genotype) -> list[int]:
    """The layer indices a genotype has decisions for, in order."""
    return sorted({int(m.group(1)) for k in genotype if (m := re.match(r"layer(\d+)\.", k))})


def _layer_label(genotype: Genotype, i: int) -> str:
    """``op ×width (act, norm)`` of layer ``i``."""
    label = str(genotype.get(f"layer{i}.op", "?"))
    width = genotype.get(f"layer{i}.width")
    extras = [
        str(genotype[f"layer{i}.{k}"]) for k in ("act", "norm") if f"layer{i}.{k}" in genotype
    ]
    if width is not None:
        label += f" ×{width}"
    if extras:
        label += " (" + ", ".join(extras) + ")"
    return label
