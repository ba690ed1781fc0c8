"""A plugin space written against the SearchSpace hooks only: ``myspace``, a short chain of
blocks that each choose an operator, with its own notation (``my:op>op>...``), drawing and
op-frequency slots. Registered through the ``nasplat.plugins`` entry point; no nasplat file
knows it."""

from __future__ import annotations

from typing import Any

from nasplat.drawing import Component, Drawing, Edge, Node
from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.genotype import Decision, Genotype
from nasplat.registry import OPS, SPACES
from nasplat.shape import NetShape
from nasplat.space import SearchSpace

BLOCK_OPS = ("conv_3x3", "max_pool_3x3", "skip_connect")
PREFIX = "my:"


@SPACES.register("myspace", description="plugin test space: a chain of blocks, one op each")
class MySpace(SearchSpace):
    """``blocks`` blocks of ``channels`` channels; decision ``block{i}.op`` per block."""

    name = "myspace"
    notation_format = "mynote"

    def __init__(self, *, blocks: int = 2, channels: int = 8) -> None:
        if int(blocks) < 1:
            raise ConfigError(f"myspace needs blocks >= 1, got {blocks}")
        super().__init__(blocks=int(blocks), channels=int(channels))

    def decisions(self) -> list[Decision]:
        return [Decision(f"block{i}.op", BLOCK_OPS) for i in range(self.options["blocks"])]

    # --- notation: my:conv_3x3>skip_connect ---------------------------------------------------
    def to_notation(self, genotype: Genotype) -> str:
        return PREFIX + ">".join(str(genotype[d.name]) for d in self.decisions())

    @classmethod
    def recognizes_notation(cls, text: str) -> bool:
        return text.strip().startswith(PREFIX)

    def from_notation(self, text: str) -> Genotype:
        text = text.strip()
        if text.startswith("{"):
            return super().from_notation(text)
        if not text.startswith(PREFIX):
            raise InvalidGenotypeError(f"myspace notation starts with {PREFIX!r}: {text[:60]!r}")
        ops = text[len(PREFIX) :].split(">")
        if len(ops) != self.options["blocks"]:
            raise InvalidGenotypeError(
                f"{text!r} has {len(ops)} blocks, not {self.options['blocks']}"
            )
        genotype = self.genotype({f"block{i}.op": op for i, op in enumerate(ops)})
        self.validate(genotype)
        return genotype

    # --- presentation -------------------------------------------------------------------------
    def drawing(self, genotype: Genotype) -> Drawing:
        names = [d.name for d in self.decisions()]
        nodes = [Node("in", "input", 0.0, 0.0, "input")]
        nodes += [
            Node(f"B{i}", f"B{i}", float(i + 1), 0.0, "output" if i == len(names) - 1 else "node")
            for i in range(len(names))
        ]
        edges = [
            Edge(nodes[i].id, nodes[i + 1].id, f"[{genotype[name]}]")
            for i, name in enumerate(names)
        ]
        return Drawing((Component("myspace blocks", tuple(nodes), tuple(edges)),))

    def decision_slot(self, name: str) -> str | None:
        if name.startswith("block") and name.endswith(".op"):
            return "my block #" + name[len("block") : -len(".op")]
        return None

    # --- network ------------------------------------------------------------------------------
    def build(self, genotype: Genotype, shape: NetShape | None = None, **net_options: Any) -> Any:
        from torch import nn

        if net_options:
            raise ConfigError(f"myspace has no network options; got {', '.join(net_options)}")
        self.validate(genotype)
        shape = shape or NetShape()
        c = max(1, round(self.options["channels"] * shape.width_mult))
        layers: list[nn.Module] = [
            nn.Conv2d(shape.in_channels, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
        ]
        layers += [OPS.get(str(genotype[d.name]))(c, c, 1) for d in self.decisions()]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, shape.num_classes)]
        return nn.Sequential(*layers)
