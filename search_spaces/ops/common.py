"""Shared building blocks of the operator library: activation/norm resolution and resampling.

Every op factory takes ``(c_in, c_out, stride, *, <keywords>)``; keywords are keyword-only, so
an unknown one raises Python's own ``TypeError`` naming it. Stride 2 maps ``H`` to
``(H + 1) // 2`` (ceil), stride 1 keeps it, for every op, so parallel edges can be summed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "prelu", "silu", "gelu", "tanh", "sigmoid")
"""Activation names accepted by every ``act=`` keyword (``"swish"`` is an alias of ``"silu"``)."""

NORMS: tuple[str, ...] = ("batch", "layer", "group", "instance", "none")
"""Normalisation names accepted by every ``norm=`` keyword."""

_ACT_FACTORIES: dict[str, Callable[[int], nn.Module]] = {
    "relu": lambda c: nn.ReLU(),
    "leaky_relu": lambda c: nn.LeakyReLU(0.2),
    "prelu": lambda c: nn.PReLU(c),
    "silu": lambda c: nn.SiLU(),
    "swish": lambda c: nn.SiLU(),
    "gelu": lambda c: nn.GELU(),
    "tanh": lambda c: nn.Tanh(),
    "sigmoid": lambda c: nn.Sigmoid(),
}


def _choice_error(kind: str, name: str, known: tuple[str, ...]) -> ValueError:
    return ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")


def make_act(name: str, channels: int) -> nn.Module:
    """An activation module by name.

    ``channels`` sizes PReLU's per-channel slopes (dim 1 of an NCHW map); pass 1 for
    channel-last tensors, where PReLU then learns a single slope.
    """
    try:
        return _ACT_FACTORIES[name](channels)
    except KeyError:
        raise _choice_error("activation", name, ACTIVATIONS) from None


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of each position of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def group_count(channels: int, groups: int) -> int:
    """``groups`` if it divides ``channels``, else their greatest common divisor."""
    return math.gcd(channels, groups) or 1


def make_norm(name: str, channels: int) -> nn.Module:
    """A normalisation module for NCHW maps by name (see ``NORMS``)."""
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":
        return LayerNorm2d(channels)
    if name == "group":
        return nn.GroupNorm(group_count(channels, 8), channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "none":
        return nn.Identity()
    raise _choice_error("normalisation", name, NORMS)


def out_size(size: int, stride: int) -> int:
    """The spatial size every op produces: ``size`` at stride 1, ``ceil(size / 2)`` at stride 2."""
    return (size + stride - 1) // stride


def check_stride(stride: int) -> int:
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    return stride


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 conv (no padding) that, strided on CPU input not in plain NCHW order (channels-last
    or a view), keeps every stride-th pixel first and runs at stride 1: the same numbers.

    oneDNN's strided 1x1 conv on channels-last CPU input corrupts the heap with one thread and
    few channels (torch 2.13: e.g. 2 -> 1 channels at 8x8, the PC-DARTS supernet's factorized
    reduce), which kills the process.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, bias: bool = False) -> None:
        super().__init__(c_in, c_out, 1, stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1) or x.device.type != "cpu" or x.is_contiguous():
            return super().forward(x)
        x = x[:, :, :: self.stride[0], :: self.stride[1]]
        return F.conv2d(x, self.weight, self.bias, 1, 0, 1, self.groups)


def conv_norm(c_in: int, c_out: int, stride: int, norm: str) -> nn.Sequential:
    """1x1 convolution (stride ``stride``) followed by a norm: the standard projection."""
    return nn.Sequential(PointwiseConv2d(c_in, c_out, stride), make_norm(norm, c_out))


def projection(c_in: int, c_out: int, norm: str = "batch") -> nn.Module:
    """Identity when channels match, else a 1x1 conv + norm."""
    return nn.Identity() if c_in == c_out else conv_norm(c_in, c_out, 1, norm)


class Resample(nn.Sequential):
    """Prepares an input for a token/gating block: 3x3 average pool at stride 2, then projection.

    The pool (padding 1, ``count_include_pad=False``) gives ``ceil(H / 2)`` for odd and even
    sizes; the 1x1 conv + norm appears only when ``c_in != c_out``. Identity otherwise.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str = "batch") -> None:
        layers: list[nn.Module] = []
        if check_stride(stride) == 2:
            layers.append(nn.AvgPool2d(3, 2, 1, count_include_pad=False))
        if c_in != c_out:
            layers.append(conv_norm(c_in, c_out, 1, norm))
        super().__init__(*layers)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize an NCHW map: adaptive average pooling to shrink, bilinear interpolation to grow."""
    if tuple(x.shape[-2:]) == size:
        return x
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """NCHW -> (N, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def from_tokens(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, H*W, C) -> NCHW."""
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)


class TokenMLP(nn.Sequential):
    """Linear -> activation -> Linear on the last dimension."""

    def __init__(self, dim: int, hidden: int, act: str) -> None:
        super().__init__(nn.Linear(dim, hidden), make_act(act, 1), nn.Linear(hidden, dim))
