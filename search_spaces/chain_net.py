"""The network a chain genotype builds (separate module so the space stays torch-free)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasplat.registry import OPS
from search_spaces.ops.common import PointwiseConv2d


def scaled(channels: int, width_mult: float) -> int:
    return max(1, int(round(channels * width_mult)))


class Shortcut(nn.Module):
    """Identity, or a strided 1x1 conv + BN when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.proj: nn.Module
        if stride == 1 and c_in == c_out:
            self.proj = nn.Identity()
        else:
            self.proj = nn.Sequential(PointwiseConv2d(c_in, c_out, stride), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.proj, nn.Identity):
            return x
        if x.shape[-1] % 2 or x.shape[-2] % 2:  # keep the (H+1)//2 convention on odd sizes
            x = nn.functional.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        return self.proj(x)


class ChainLayer(nn.Module):
    """One operator, with an optional residual connection around it."""

    def __init__(self, op: nn.Module, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.op = op
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.op(x)
        return out + self.shortcut(x) if self.shortcut is not None else out


class ChainNet(nn.Module):
    """Stem (3x3 conv + BN + ReLU), the chain of layers, global average pooling, linear head."""

    def __init__(
        self,
        specs: list[dict[str, Any]],
        *,
        in_channels: int,
        num_classes: int,
        stem_channels: int,
        width_mult: float,
    ) -> None:
        super().__init__()
        c = scaled(stem_channels, width_mult)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
        )
        layers = []
        for spec in specs:
            c_out = scaled(spec["width"], width_mult)
            op = OPS.get(spec["op"])(c, c_out, spec["stride"], **spec["kwargs"])
            shortcut = Shortcut(c, c_out, spec["stride"]) if spec["skip"] else None
            layers.append(ChainLayer(op, shortcut))
            c = c_out
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x.mean(dim=(2, 3)))
