"""3x3 pooling ops (padding 1); a 1x1 conv + BN projection follows when ``c_in != c_out``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nasplat.registry import OPS
from search_spaces.ops.common import check_stride, projection


def l2_pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Root-mean-square over each 3x3 window (padding excluded from the mean)."""
    mean_sq = F.avg_pool2d(x * x, 3, stride, 1, count_include_pad=False)
    return torch.sqrt(mean_sq + 1e-6)


def _windows(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, int, int]:
    """Non-negative 3x3 windows of ``relu(x)``: (N, C, 9, L) plus the output size."""
    n, c, h, w = x.shape
    cols = F.unfold(x.clamp(min=0), 3, padding=1, stride=stride)
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    return cols.view(n, c, 9, ho * wo), ho, wo


def window_probabilities(windows: torch.Tensor) -> torch.Tensor:
    """Each element's activation over its window's sum (all zero for an all-zero window)."""
    total = windows.sum(dim=2, keepdim=True)
    return windows / total.clamp(min=1e-12)


def stochastic_pool(x: torch.Tensor, stride: int, training: bool) -> torch.Tensor:
    """Stochastic pooling over 3x3 windows of ``relu(x)`` (Zeiler & Fergus, 2013).

    Training: each window outputs one of its elements, drawn with probability proportional to
    its activation (inverse-CDF sampling with one ``torch.rand`` draw per window, so torch's
    RNG makes it deterministic; an all-zero window gives 0). Eval: the probability-weighted
    average ``sum_i p_i a_i``.
    """
    windows, ho, wo = _windows(x, stride)
    if training:
        cum = windows.detach().cumsum(dim=2)
        u = 1.0 - torch.rand(cum[:, :, :1].shape, device=x.device, dtype=x.dtype)  # in (0, 1]
        index = (cum < u * cum[:, :, -1:]).sum(dim=2, keepdim=True)
        out = windows.gather(2, index)
    else:
        out = (window_probabilities(windows) * windows).sum(dim=2, keepdim=True)
    return out.view(x.shape[0], x.shape[1], ho, wo)


class Pool(nn.Module):
    """A functional 3x3 pooling followed by an optional projection."""

    def __init__(
        self, fn: Callable[..., torch.Tensor], stride: int, proj: nn.Module, needs_mode: bool
    ) -> None:
        super().__init__()
        self.fn, self.stride, self.proj, self.needs_mode = (
            fn,
            check_stride(stride),
            proj,
            needs_mode,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        args = (self.training,) if self.needs_mode else ()
        return self.proj(self.fn(x, self.stride, *args))


def _max(x: torch.Tensor, stride: int) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride, 1)


def _avg(x: torch.Tensor, stride: int) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride, 1, count_include_pad=False)


def _register(
    name: str, fn: Callable[..., torch.Tensor], what: str, needs_mode: bool = False
) -> None:
    def factory(c_in: int, c_out: int, stride: int) -> nn.Module:
        return Pool(fn, stride, projection(c_in, c_out), needs_mode)

    factory.__name__ = name
    factory.__doc__ = f"{what}; 1x1 conv + BN projection when c_in != c_out."
    OPS.register(name, family="pool", description=what)(factory)


_register("max_pool_3x3", _max, "3x3 max pooling")
_register("avg_pool_3x3", _avg, "3x3 average pooling (padding not counted)")
_register("l2_pool_3x3", l2_pool, "3x3 L2 (root-mean-square) pooling")
_register(
    "stochastic_pool_3x3", stochastic_pool, "3x3 stochastic pooling of relu(x)", needs_mode=True
)
