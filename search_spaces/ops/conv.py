"""Convolutions in DARTS's ReLU -> conv -> norm order."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasplat.registry import OPS
from search_spaces.ops.common import (
    PointwiseConv2d,
    check_stride,
    group_count,
    make_act,
    make_norm,
)


class ActConvNorm(nn.Sequential):
    """activation -> conv(s) -> norm; the convs are built by the caller.

    Padding of every conv here is ``dilation * (k - 1) // 2`` for odd ``k``, which with stride 2
    gives ``ceil(H / 2)`` for odd and even sizes.
    """

    def __init__(self, c_in: int, c_out: int, convs: list[nn.Module], act: str, norm: str) -> None:
        super().__init__(make_act(act, c_in), *convs, make_norm(norm, c_out))


def _pad(k: int, dilation: int = 1) -> int:
    return dilation * (k - 1) // 2


class _SameDepthwiseConv(torch.autograd.Function):
    """A stride-1 depthwise conv with "same" padding whose backward avoids oneDNN's slow
    dilated depthwise gradients on CPU: the input gradient is the forward conv of the output
    gradient with the kernel flipped (fast), the weight gradient one multiply-and-sum per tap."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, dilation: tuple[int, int]) -> Any:
        ctx.save_for_backward(x, weight)
        ctx.dilation = dilation
        return F.conv2d(x, weight, None, 1, _same_padding(weight, dilation), dilation, x.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        x, weight = ctx.saved_tensors
        dilation = ctx.dilation
        padding = _same_padding(weight, dilation)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            flipped = weight.flip(-2, -1)
            grad_x = F.conv2d(grad, flipped, None, 1, padding, dilation, x.shape[1])
        if ctx.needs_input_grad[1]:
            (h, w), (dh, dw) = x.shape[-2:], dilation
            padded = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
            taps = [
                (grad * padded[:, :, i * dh : i * dh + h, j * dw : j * dw + w]).sum((0, 2, 3))
                for i in range(weight.shape[-2])
                for j in range(weight.shape[-1])
            ]
            grad_w = torch.stack(taps, 1).view_as(weight)
        return grad_x, grad_w, None


def _same_padding(weight: torch.Tensor, dilation: tuple[int, int]) -> tuple[int, int]:
    return _pad(weight.shape[-2], dilation[0]), _pad(weight.shape[-1], dilation[1])


class CpuTrainConv2d(nn.Conv2d):
    """A dilated or wide depthwise conv with faster CPU training passes on channels-last input.

    oneDNN's dilated depthwise convs are a slow path on CPU: their backward takes 10-80x the
    forward (a 5x5, dilation 2, 48-channel conv at 7x7: 20 ms for the weight gradient against
    0.25 ms forward), strided ones are slower again, and so is an undilated depthwise kernel
    wider than its input (5x5 at 4x4: 12 ms). So in training on CPU with channels-last input
    (``python benchmarks/darts.py --retrain`` measures each path):

    - a dilated depthwise conv on an input at least ``K + 2`` wide, where
      ``K = dilation * (k - 1) + 1`` is the kernel's span, runs undilated with its kernel spread
      over ``K x K`` with zeros between the taps (``zero_insert``);
    - a narrower dilated depthwise conv, or an undilated one with a kernel wider than the
      input, keeps the direct forward but computes its own gradients (``own_backward``,
      ``_SameDepthwiseConv``);
    - a strided dilated conv runs at stride 1 and keeps every stride-th output.

    The numbers are the same as the direct conv's (up to float summation order); inference,
    NCHW input and GPUs take the direct conv, so FLOP counts are unchanged.
    """

    zero_insert = True
    own_backward = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (
            torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.is_contiguous(memory_format=torch.channels_last)
        ):
            return super().forward(x)
        dilated = self.dilation != (1, 1)
        span = [d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size, strict=True)]
        depthwise = (
            self.groups == self.in_channels == self.out_channels
            and self.bias is None
            and all(k % 2 for k in self.kernel_size)
            and self.padding == _same_padding(self.weight, self.dilation)
        )
        narrow = min(x.shape[-2:])
        if depthwise and dilated and self.zero_insert and narrow >= max(span) + 2:
            spread = self.weight.new_zeros(*self.weight.shape[:2], *span)
            spread[:, :, :: self.dilation[0], :: self.dilation[1]] = self.weight
            y = F.conv2d(x, spread, None, 1, self.padding, (1, 1), self.groups)
        elif depthwise and self.own_backward and (dilated or max(self.kernel_size) > narrow):
            y = _SameDepthwiseConv.apply(x, self.weight, self.dilation)
        elif self.stride == (1, 1) or not dilated:
            return super().forward(x)
        else:
            y = F.conv2d(x, self.weight, self.bias, 1, self.padding, self.dilation, self.groups)
        return y[:, :, :: self.stride[0], :: self.stride[1]]


def conv(
    c_in: int, c_out: int, k: int, stride: int, dilation: int = 1, groups: int = 1
) -> nn.Conv2d:
    stride = check_stride(stride)
    if k == 1 and groups == 1:
        return PointwiseConv2d(c_in, c_out, stride)
    wide_depthwise = groups == c_in == c_out and k >= 5
    cls = CpuTrainConv2d if dilation > 1 or wide_depthwise else nn.Conv2d
    return cls(c_in, c_out, k, stride, _pad(k, dilation), dilation, groups, bias=False)


def _conv_op(k: int) -> None:
    name = f"conv_{k}x{k}"

    def factory(
        c_in: int, c_out: int, stride: int, *, act: str = "relu", norm: str = "batch"
    ) -> nn.Module:
        return ActConvNorm(c_in, c_out, [conv(c_in, c_out, k, stride)], act, norm)

    factory.__name__ = name
    factory.__doc__ = f"ReLU -> {k}x{k} conv -> BN (DARTS ReLUConvBN)."
    OPS.register(name, family="conv", description=f"act -> {k}x{k} conv -> norm")(factory)


def _dil_conv_op(k: int) -> None:
    name = f"dil_conv_{k}x{k}"

    def factory(
        c_in: int, c_out: int, stride: int, *, act: str = "relu", norm: str = "batch"
    ) -> nn.Module:
        convs = [conv(c_in, c_in, k, stride, dilation=2, groups=c_in), conv(c_in, c_out, 1, 1)]
        return ActConvNorm(c_in, c_out, convs, act, norm)

    factory.__name__ = name
    factory.__doc__ = f"act -> depthwise {k}x{k} conv (dilation 2) -> 1x1 conv -> norm."
    OPS.register(name, family="conv", description=f"depthwise dilated (2) {k}x{k} + pointwise")(
        factory
    )


def _sep_conv_op(k: int) -> None:
    name = f"sep_conv_{k}x{k}"

    def factory(
        c_in: int, c_out: int, stride: int, *, act: str = "relu", norm: str = "batch"
    ) -> nn.Module:
        first = [conv(c_in, c_in, k, stride, groups=c_in), conv(c_in, c_in, 1, 1)]
        second = [conv(c_in, c_in, k, 1, groups=c_in), conv(c_in, c_out, 1, 1)]
        return nn.Sequential(
            ActConvNorm(c_in, c_in, first, act, norm), ActConvNorm(c_in, c_out, second, act, norm)
        )

    factory.__name__ = name
    factory.__doc__ = (
        f"Two stacked (act -> depthwise {k}x{k} -> 1x1 -> norm) units, stride on the first."
    )
    OPS.register(
        name, family="conv", description=f"depthwise-separable {k}x{k}, two units (DARTS)"
    )(factory)


for _k in (1, 3, 5):
    _conv_op(_k)
for _k in (3, 5):
    _dil_conv_op(_k)
for _k in (3, 5, 7):
    _sep_conv_op(_k)


@OPS.register(
    "dw_conv_3x3", family="conv", description="act -> depthwise 3x3 (+1x1 if c_in != c_out) -> norm"
)
def dw_conv_3x3(
    c_in: int, c_out: int, stride: int, *, act: str = "relu", norm: str = "batch"
) -> nn.Module:
    """act -> depthwise 3x3 conv -> 1x1 projection when ``c_in != c_out`` -> norm."""
    convs = [conv(c_in, c_in, 3, stride, groups=c_in)]
    if c_in != c_out:
        convs.append(conv(c_in, c_out, 1, 1))
    return ActConvNorm(c_in, c_out, convs, act, norm)


@OPS.register("group_conv_3x3", family="conv", description="act -> grouped 3x3 conv -> norm")
def group_conv_3x3(
    c_in: int, c_out: int, stride: int, *, groups: int = 4, act: str = "relu", norm: str = "batch"
) -> nn.Module:
    """act -> 3x3 conv with ``groups`` groups (gcd with both channel counts if not a divisor) -> norm."""
    g = group_count(group_count(c_in, groups), c_out)
    return ActConvNorm(c_in, c_out, [conv(c_in, c_out, 3, stride, groups=g)], act, norm)


@OPS.register(
    "conv_7x1_1x7", family="conv", description="act -> 1x7 conv -> 7x1 conv -> norm (factorized)"
)
def conv_7x1_1x7(
    c_in: int, c_out: int, stride: int, *, act: str = "relu", norm: str = "batch"
) -> nn.Module:
    """act -> 1x7 conv (stride along W) -> 7x1 conv (stride along H) -> norm, as in DARTS."""
    s = check_stride(stride)
    convs = [
        nn.Conv2d(c_in, c_in, (1, 7), (1, s), (0, 3), bias=False),
        nn.Conv2d(c_in, c_out, (7, 1), (s, 1), (3, 0), bias=False),
    ]
    return ActConvNorm(c_in, c_out, convs, act, norm)


class TransposedConv(nn.Module):
    """A 3x3 ``nn.ConvTranspose2d`` (stride 1, padding 1: same size); stride 2 keeps every other row/column.

    A stride-2 transposed conv upsamples, which no downsampling edge can use, so at stride 2 the
    op computes the stride-1 transposed conv and then subsamples it (``y[..., ::2, ::2]``, giving
    ``ceil(H / 2)``). Note that a stride-1 transposed conv equals an ordinary conv with the kernel
    flipped and its in/out axes swapped, so this op spans the same functions as ``conv_3x3``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = check_stride(stride)
        self.conv = nn.ConvTranspose2d(c_in, c_out, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y[..., :: self.stride, :: self.stride]


@OPS.register(
    "trans_conv_3x3",
    family="conv",
    description="act -> 3x3 transposed conv (stride 2: subsampled) -> norm",
)
def trans_conv_3x3(
    c_in: int, c_out: int, stride: int, *, act: str = "relu", norm: str = "batch"
) -> nn.Module:
    """act -> 3x3 ConvTranspose2d at stride 1 (subsampled by 2 at stride 2) -> norm."""
    return ActConvNorm(c_in, c_out, [TransposedConv(c_in, c_out, stride)], act, norm)
