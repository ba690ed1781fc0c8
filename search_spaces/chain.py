"""The chain space: a plain sequence of layers, each choosing an operator and a width.

Decisions per layer ``i``: ``layer{i}.op`` (an operator name), ``layer{i}.width`` (output
channels before ``width_mult``), optionally ``layer{i}.skip`` (add a residual connection
around the layer) and ``layer{i}.act`` / ``layer{i}.norm`` when more than one activation or
normalisation is offered (passed to operators that take ``act``/``norm`` keywords).
Layers listed in ``reduce_at`` use stride 2.
"""

from __future__ import annotations

import inspect
from typing import Any

from nasplat.errors import ConfigError
from nasplat.genotype import Decision, Genotype
from nasplat.registry import OPS, SPACES
from nasplat.space import SearchSpace

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

    def build(
        self,
        genotype: Genotype,
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: int = 8,
        width_mult: float = 1.0,
        **net_kwargs: Any,
    ) -> Any:
        from search_spaces.chain_net import ChainNet

        if net_kwargs:
            raise ConfigError(f"unknown network option(s) for chain: {', '.join(net_kwargs)}")
        self.validate(genotype)
        return ChainNet(
            self.layer_specs(genotype),
            in_channels=in_channels,
            num_classes=num_classes,
            stem_channels=self.options["stem_channels"],
            width_mult=width_mult,
        )
