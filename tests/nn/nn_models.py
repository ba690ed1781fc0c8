"""Model spaces of the nasplat.nn tests (importable by reference, so they pickle).

Imported by the tests as ``nn_models`` (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import torch
from torch import nn

import nasplat.nn as nsn


def conv_bn(c_in: int, c_out: int, k: int = 3, groups: int = 1) -> list[nn.Module]:
    return [
        nsn.Conv2d(c_in, c_out, k, padding="same", groups=groups, bias=False),
        nsn.BatchNorm2d(c_out),
    ]


class Block(nn.Module):
    """A 1x1 projection to the block's width choice, then conv3x3 / separable / identity."""

    def __init__(self, c_in: object, index: int) -> None:
        super().__init__()
        width = nsn.choice(f"b{index}.width", [16, 32])
        self.proj = nn.Sequential(*conv_bn(c_in, width, 1), nn.ReLU())
        self.op = nsn.LayerChoice(
            {
                "conv3x3": nn.Sequential(*conv_bn(width, width), nn.ReLU()),
                "sepconv": nn.Sequential(
                    *conv_bn(width, width, groups=width), *conv_bn(width, width, 1), nn.ReLU()
                ),
                "identity": nn.Identity(),
            },
            label=f"b{index}.op",
        )
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.proj(x))


class ThreeBlockCNN(nn.Module):
    """The reference user example: 3 blocks, each an op and a width choice."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, blocks: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU())
        layers, c = [], 8
        for i in range(blocks):
            block = Block(c, i)
            layers.append(block)
            c = block.width
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nsn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.blocks(self.stem(x))).flatten(1))


class DepthNet(nn.Module):
    """A depth choice (1 or 2 blocks, a plain Python loop) with an op choice in each block."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        depth = nsn.choice("depth", [1, 2])
        self.blocks = nn.Sequential(
            *[
                nsn.LayerChoice([nn.Conv2d(1, 1, 3, padding=1), nn.Identity()], label=f"op{i}")
                for i in range(depth)
            ]
        )
        self.head = nn.Linear(1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x).mean(dim=(2, 3)))


class InputNet(nn.Module):
    """Two branches and an input choice over (x, branch a, branch b); auto labels."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.a = nsn.LayerChoice([nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 4, 5, padding=2)])
        self.b = nsn.LayerChoice([nn.Conv2d(1, 4, 1), nn.Conv2d(1, 4, 3, padding=1)])
        self.pick = nsn.InputChoice(2, n_chosen=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pick([self.a(x), self.b(x)])
        return self.head(y.mean(dim=(2, 3)))


class PlainUse(nn.Module):
    """Value choices consumed by ordinary torch layers and a Python loop."""

    def __init__(self) -> None:
        super().__init__()
        width = nsn.choice("width", [4, 8])
        depth = nsn.choice("depth", [1, 2])
        self.op = nsn.LayerChoice([nn.Conv2d(1, width, 3, padding=1), nn.Conv2d(1, width, 1)])
        self.rest = nn.Sequential(*[nn.Conv2d(width, width, 1) for _ in range(depth)])
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rest(self.op(x)).mean(dim=(2, 3)))
