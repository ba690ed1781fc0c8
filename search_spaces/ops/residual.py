"""Residual blocks: a branch of ReLU-conv-norm units plus a (projection) shortcut."""

from __future__ import annotations

import torch
from torch import nn

from nasplat.registry import OPS
from search_spaces.ops.common import check_stride, conv_norm
from search_spaces.ops.conv import ActConvNorm, conv


class Residual(nn.Module):
    """``branch(x) + shortcut(x)``; the shortcut is identity unless the shape changes.

    When ``stride == 2`` or ``c_in != c_out`` it is a 1x1 conv (stride ``stride``) + norm.
    """

    def __init__(self, branch: nn.Module, c_in: int, c_out: int, stride: int, norm: str) -> None:
        super().__init__()
        self.branch = branch
        same = check_stride(stride) == 1 and c_in == c_out
        self.shortcut: nn.Module = nn.Identity() if same else conv_norm(c_in, c_out, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + self.shortcut(x)


def _unit(c_in: int, c_out: int, k: int, stride: int, act: str, norm: str) -> ActConvNorm:
    return ActConvNorm(c_in, c_out, [conv(c_in, c_out, k, stride)], act, norm)


@OPS.register("res_basic", family="residual", description="two 3x3 act-conv-norm units + shortcut")
def res_basic(
    c_in: int, c_out: int, stride: int, *, act: str = "relu", norm: str = "batch"
) -> nn.Module:
    """Basic residual block: 3x3 (stride) and 3x3 act-conv-norm units plus a shortcut."""
    branch = nn.Sequential(
        _unit(c_in, c_out, 3, stride, act, norm), _unit(c_out, c_out, 3, 1, act, norm)
    )
    return Residual(branch, c_in, c_out, stride, norm)


@OPS.register(
    "res_bottleneck", family="residual", description="1x1 reduce, 3x3, 1x1 expand + shortcut"
)
def res_bottleneck(
    c_in: int,
    c_out: int,
    stride: int,
    *,
    reduction: int = 4,
    act: str = "relu",
    norm: str = "batch",
) -> nn.Module:
    """Bottleneck block: 1x1 to ``max(c_out // reduction, 1)`` channels, 3x3 (stride), 1x1 expand."""
    mid = max(c_out // reduction, 1)
    branch = nn.Sequential(
        _unit(c_in, mid, 1, 1, act, norm),
        _unit(mid, mid, 3, stride, act, norm),
        _unit(mid, c_out, 1, 1, act, norm),
    )
    return Residual(branch, c_in, c_out, stride, norm)
