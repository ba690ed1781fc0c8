"""MLP-Mixer block (Tolstikhin et al.) that works on any spatial size."""

from __future__ import annotations

import torch
from torch import nn

from nasplat.registry import OPS
from search_spaces.ops.common import LayerNorm2d, Resample, TokenMLP, resize


class MixerBlock(nn.Module):
    """Token mixing on a fixed ``grid`` x ``grid`` token grid, then per-position channel mixing.

    Token mixing: ``x + up(MLP_tokens(down(LN(x))))`` where ``down`` resizes the map to the grid
    (adaptive average pooling, or bilinear when the map is smaller) and ``up`` resizes the mixed
    grid back (bilinear, or pooling). At ``H = W = grid`` both are the identity and this is the
    original Mixer; elsewhere the token weights are shared across sizes, so one parameter set
    serves every resolution. Channel mixing: ``x + MLP_channels(LN(x))`` at every position.
    """

    def __init__(
        self, dim: int, grid: int, token_ratio: float, channel_ratio: float, act: str
    ) -> None:
        super().__init__()
        tokens = grid * grid
        self.grid = grid
        self.norm1, self.norm2 = LayerNorm2d(dim), nn.LayerNorm(dim)
        self.token_mlp = TokenMLP(tokens, max(int(tokens * token_ratio), 1), act)
        self.channel_mlp = TokenMLP(dim, max(int(dim * channel_ratio), 1), act)

    def mix_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The token-mixing update (before the residual) of an NCHW map."""
        h, w = x.shape[-2:]
        small = resize(self.norm1(x), (self.grid, self.grid))
        mixed = self.token_mlp(small.flatten(2)).view_as(small)
        return resize(mixed, (h, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mix_tokens(x)
        t = x.permute(0, 2, 3, 1)
        return (t + self.channel_mlp(self.norm2(t))).permute(0, 3, 1, 2)


@OPS.register("mixer_block", family="mixer", description="MLP-Mixer block on a fixed token grid")
def mixer_block(
    c_in: int,
    c_out: int,
    stride: int,
    *,
    grid: int = 8,
    token_ratio: float = 2.0,
    channel_ratio: float = 2.0,
    act: str = "gelu",
) -> nn.Module:
    """Resample (pool at stride 2, 1x1 projection for channels), then a ``MixerBlock``."""
    if grid < 1:
        raise ValueError(f"grid must be positive, got {grid!r}")
    return nn.Sequential(
        Resample(c_in, c_out, stride), MixerBlock(c_out, grid, token_ratio, channel_ratio, act)
    )
