"""``skip_connect`` and ``none``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasplat.registry import OPS
from search_spaces.ops.common import (
    PointwiseConv2d,
    check_stride,
    make_act,
    make_norm,
    out_size,
)
from search_spaces.ops.conv import ActConvNorm, conv


class FactorizedReduce(nn.Module):
    """DARTS factorized reduce: act, two stride-2 1x1 convs on offset grids, concat, norm.

    The second path sees the input shifted by one pixel; it is zero-padded on the bottom/right
    first, so both paths give ``ceil(H / 2)`` for odd sizes too.
    """

    def __init__(self, c_in: int, c_out: int, act: str, norm: str) -> None:
        super().__init__()
        half = c_out // 2
        self.act = make_act(act, c_in)
        self.conv_a = PointwiseConv2d(c_in, half, 2)
        self.conv_b = PointwiseConv2d(c_in, c_out - half, 2)
        self.norm = make_norm(norm, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.norm(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


@OPS.register("skip_connect", family="basic", description="identity; factorized reduce at stride 2")
def skip_connect(
    c_in: int, c_out: int, stride: int, *, act: str = "relu", norm: str = "batch"
) -> nn.Module:
    """Identity; DARTS factorized reduce at stride 2; act -> 1x1 conv -> norm if only channels change.

    ``act``/``norm`` are used only when the op is not the identity.
    """
    if check_stride(stride) == 2:
        return FactorizedReduce(c_in, c_out, act, norm)
    if c_in != c_out:
        return ActConvNorm(c_in, c_out, [conv(c_in, c_out, 1, 1)], act, norm)
    return nn.Identity()


class Zero(nn.Module):
    """Zeros of the output shape, still attached to the input's graph (its gradient is zero)."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, check_stride(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        zeros = x.new_zeros(n, self.c_out, out_size(h, self.stride), out_size(w, self.stride))
        return zeros + x[:, :1, :: self.stride, :: self.stride].mul(0.0)


@OPS.register("none", family="basic", description="zeros (no connection)")
def none(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Zeros of shape (N, c_out, H', W'); gradients to the input are zero."""
    return Zero(c_out, stride)
