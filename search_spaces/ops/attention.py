"""Attention ops: a ViT encoder block over positions and four gating blocks (SE, CBAM, pixel).

Channel or stride changes are handled before the block by ``Resample`` (3x3 average pool at
stride 2, then 1x1 conv + BN when ``c_in != c_out``); the block itself keeps the shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nasplat.registry import OPS
from search_spaces.ops.common import (
    Resample,
    TokenMLP,
    from_tokens,
    group_count,
    make_act,
    resize,
    to_tokens,
)

POS_ENCODINGS: tuple[str | None, ...] = (None, "learned", "sinusoidal")


def sinusoidal_1d(positions: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """(positions, dim) sine/cosine encoding (Vaswani et al.), interleaved, odd ``dim`` allowed."""
    pos = torch.arange(positions, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(1e4) / max(dim, 1))
    )
    angles = pos * freq
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)[:, :dim]


def sinusoidal_2d(h: int, w: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """(h*w, dim) encoding: first ``dim // 2`` channels encode the row, the rest the column."""
    dim_h = dim // 2
    rows = sinusoidal_1d(h, dim_h, device)[:, None, :].expand(h, w, dim_h)
    cols = sinusoidal_1d(w, dim - dim_h, device)[None, :, :].expand(h, w, dim - dim_h)
    return torch.cat([rows, cols], dim=-1).reshape(h * w, dim)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention on (N, L, dim) tokens via ``F.scaled_dot_product_attention``.

    Written out (instead of ``nn.MultiheadAttention``, whose fused inference kernel is invisible
    to torch's flop counter) so that profiles count the attention matmuls.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = group_count(dim, heads)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        n, length, dim = t.shape
        q, k, v = (
            self.qkv(t).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        )
        attended = F.scaled_dot_product_attention(q, k, v)
        return self.out(attended.transpose(1, 2).reshape(n, length, dim))


class SelfAttentionBlock(nn.Module):
    """Pre-norm ViT encoder block over the H*W positions of a map with ``dim`` channels.

    ``t + MHSA(LN(t) + pos)``, then ``t + MLP(LN(t))``. The position encoding enters the attention
    branch only, so the residual stream carries no constant offset. ``"learned"`` keeps a
    ``pos_grid`` x ``pos_grid`` table, resized to each input (bilinear up, average pool down).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        pos_encoding: str | None,
        mlp_ratio: float,
        act: str,
        pos_grid: int,
    ) -> None:
        super().__init__()
        if pos_encoding not in POS_ENCODINGS:
            raise ValueError(f"unknown pos_encoding {pos_encoding!r}; known: {POS_ENCODINGS}")
        self.pos_encoding = pos_encoding
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads)
        self.mlp = TokenMLP(dim, max(int(dim * mlp_ratio), 1), act)
        self.pos_table = None
        if pos_encoding == "learned":
            self.pos_table = nn.Parameter(torch.randn(1, dim, pos_grid, pos_grid) * 0.02)

    def position(self, h: int, w: int, ref: torch.Tensor) -> torch.Tensor | float:
        if self.pos_encoding == "sinusoidal":
            return sinusoidal_2d(h, w, ref.shape[-1], ref.device).to(ref.dtype)
        if self.pos_table is not None:
            return to_tokens(resize(self.pos_table, (h, w)))
        return 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        t = to_tokens(x)
        q = self.norm1(t) + self.position(h, w, t)
        t = t + self.attn(q)
        t = t + self.mlp(self.norm2(t))
        return from_tokens(t, h, w)


@OPS.register("self_attention", family="attention", description="ViT encoder block over positions")
def self_attention(
    c_in: int,
    c_out: int,
    stride: int,
    *,
    heads: int = 4,
    pos_encoding: str | None = "sinusoidal",
    mlp_ratio: float = 2.0,
    act: str = "gelu",
    pos_grid: int = 8,
) -> nn.Module:
    """Resample, then a ViT block; ``heads`` falls back to gcd(heads, c_out)."""
    block = SelfAttentionBlock(c_out, heads, pos_encoding, mlp_ratio, act, pos_grid)
    return nn.Sequential(Resample(c_in, c_out, stride), block)


class ChannelGate(nn.Module):
    """``x * sigmoid(MLP(avgpool(x)) [+ MLP(maxpool(x))])``: SE, or CBAM's channel part with max."""

    def __init__(self, channels: int, reduction: int, act: str, use_max: bool) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.use_max = use_max
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), make_act(act, hidden), nn.Conv2d(hidden, channels, 1)
        )

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        score = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        if self.use_max:
            score = score + self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return torch.sigmoid(score)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class SpatialGate(nn.Module):
    """CBAM spatial attention: ``x * sigmoid(conv_k([mean_c(x), max_c(x)]))``."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class PixelGate(nn.Module):
    """Pixel attention: ``x * sigmoid(conv_1x1(x))``, a gate per position and channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


def _gated(c_in: int, c_out: int, stride: int, *gates: nn.Module) -> nn.Module:
    return nn.Sequential(Resample(c_in, c_out, stride), *gates)


def _odd_kernel(kernel: int) -> int:
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd number, got {kernel!r}")
    return kernel


@OPS.register(
    "se_attention", family="attention", description="squeeze-and-excitation channel gating"
)
def se_attention(
    c_in: int, c_out: int, stride: int, *, reduction: int = 4, act: str = "relu"
) -> nn.Module:
    """Resample, then squeeze-and-excitation (Hu et al.): scale each channel by a learnt gate."""
    return _gated(c_in, c_out, stride, ChannelGate(c_out, reduction, act, use_max=False))


@OPS.register("spatial_attention", family="attention", description="CBAM spatial gating")
def spatial_attention(c_in: int, c_out: int, stride: int, *, kernel: int = 7) -> nn.Module:
    """Resample, then CBAM's spatial attention (one gate per position)."""
    return _gated(c_in, c_out, stride, SpatialGate(_odd_kernel(kernel)))


@OPS.register("cbam", family="attention", description="CBAM: channel then spatial gating")
def cbam(
    c_in: int, c_out: int, stride: int, *, reduction: int = 4, kernel: int = 7, act: str = "relu"
) -> nn.Module:
    """Resample, then CBAM (Woo et al.): channel gate (avg + max) followed by spatial gate."""
    channel = ChannelGate(c_out, reduction, act, use_max=True)
    return _gated(c_in, c_out, stride, channel, SpatialGate(_odd_kernel(kernel)))


@OPS.register(
    "pixel_attention", family="attention", description="per-pixel gating (1x1 conv + sigmoid)"
)
def pixel_attention(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Resample, then pixel attention (Zhao et al., PAN)."""
    return _gated(c_in, c_out, stride, PixelGate(c_out))
