"""nasplat.profile: FLOPs from torch's flop counter, parameter counts, mode restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasplat.ml.profiling import profile


@pytest.mark.parametrize("c_in,c_out,k,h,w", [(3, 5, 3, 8, 8), (4, 2, 1, 7, 5), (2, 6, 5, 6, 9)])
def test_conv_flops_and_params(c_in: int, c_out: int, k: int, h: int, w: int) -> None:
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
    result = profile(conv, (1, c_in, h, w))
    assert result["flops"] == 2 * c_in * c_out * k * k * h * w
    assert result["params"] == c_in * c_out * k * k


def test_params_count_every_parameter() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    net(torch.zeros(1, 3, 5, 5))
    assert profile(net, (1, 3, 5, 5))["params"] == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("training", [True, False])
def test_training_flag_restored_and_eval_used(training: bool) -> None:
    seen: list[bool] = []
    net = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 4))
    net[1].register_forward_hook(lambda m, i, o: seen.append(m.training))
    net.train(training)
    profile(net, (2, 4))
    assert seen == [False]
    assert net.training is training and net[1].training is training


def test_attention_flops_are_counted() -> None:
    class Attend(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.scaled_dot_product_attention(x, x, x)

    batch, heads, length, dim = 1, 2, 16, 4
    flops = profile(Attend(), (batch, heads, length, dim))["flops"]
    assert flops == 2 * (2 * batch * heads * length * length * dim)  # QK^T and AV
