"""nasplat.nn supernets: continuous mixtures, single paths equal to standalone networks,
weight-sliced layers, value choices consumed by ordinary code."""

from __future__ import annotations

import random

import pytest
import torch
from nn_models import InputNet, PlainUse, ThreeBlockCNN
from torch import nn

import nasplat.nn as nsn
from nasplat.errors import ConfigError


def test_continuous_forward_backward_reaches_every_alpha() -> None:
    torch.manual_seed(0)
    space = nsn.ModelSpace(ThreeBlockCNN)
    net = space.supernet()
    assert list(net.labels) == [d.name for d in space.decisions()]
    out = net(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 10)
    out.square().mean().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())
    assert {id(p) for p in net.weight_parameters()}.isdisjoint(map(id, net.arch_parameters()))
    weights = net.arch_weights()
    assert set(weights["b0.op"]) == {"conv3x3", "sepconv", "identity"}
    assert set(weights["b0.width"]) == {"16", "32"}
    assert space.edge_candidates()["b1.width"] == ("16", "32")
    derived = net.derive_genotype()
    space.validate(derived)


@pytest.mark.parametrize("model", [ThreeBlockCNN, InputNet])
def test_single_path_equals_the_standalone_network(model: type[nn.Module]) -> None:
    torch.manual_seed(0)
    space = nsn.ModelSpace(model)
    supernet = space.supernet(mode="single_path")
    supernet.train()
    x = torch.randn(4, 1, 8, 8)
    for _ in range(3):  # train-mode passes move the sliced BatchNorm statistics
        supernet(x, genotype=space.sample(random.Random(3)))
    for seed in range(6):
        g = space.sample(random.Random(seed))
        standalone = space.build(g)
        supernet.load_path_into(standalone, g)
        supernet.eval(), standalone.eval()
        with torch.no_grad():
            diff = (supernet(x, genotype=g) - standalone(x)).abs().max().item()
        assert diff < 1e-6, (g, diff)
    with pytest.raises(ValueError, match="needs forward"):
        supernet(x)
    supernet.active = g
    assert supernet(x).shape == (4, 10)


class Sliced(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        c = nsn.choice("c", [2, 4])
        self.conv = nsn.Conv2d(3, c, nsn.choice("k", [3, 5]), stride=2, padding="same")
        self.bn = nsn.BatchNorm2d(c)
        self.dw = nsn.Conv2d(c, c, 3, padding=1, groups=c)
        self.fc = nsn.Linear(c, nsn.choice("f", [3, 6]))
        self.bn1 = nsn.BatchNorm1d(nsn.choice("f", [3, 6]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.bn(self.conv(x)))
        return self.bn1(self.fc(y.mean(dim=(2, 3))))


def test_sliced_layers_equal_the_plain_layers_in_train_and_eval_mode() -> None:
    torch.manual_seed(0)
    space = nsn.ModelSpace(Sliced)
    supernet = space.supernet(mode="single_path")
    assert all(
        isinstance(m, nsn.layers.MutableLayer)
        for m in (supernet.net.conv, supernet.net.bn, supernet.net.dw, supernet.net.fc)
    )
    x = torch.randn(5, 3, 9, 9)
    for values in ({"c": 2, "k": 5, "f": 3}, {"c": 4, "k": 3, "f": 6}, {"c": 2, "k": 3, "f": 6}):
        g = space.genotype(values)
        plain = space.build(g)
        assert isinstance(plain.conv, nn.Conv2d) and plain.conv.padding == (values["k"] // 2,) * 2
        supernet.load_path_into(plain, g)
        for train in (True, False):
            supernet.train(train), plain.train(train)
            a, b = supernet(x, genotype=g), plain(x)
            assert (a - b).abs().max().item() < 1e-6
        sliced = supernet.extract_weights(g)
        assert torch.equal(sliced["bn.running_mean"], plain.bn.running_mean)  # updated in place


def test_continuous_mixture_with_one_hot_alphas_is_the_single_path() -> None:
    """Channel masking and the kernel mixture reduce to the sliced layers when one choice of
    every label has all the weight."""
    torch.manual_seed(0)
    space = nsn.ModelSpace(Sliced)
    supernet = space.supernet()
    supernet.eval()
    x = torch.randn(2, 3, 9, 9)
    assert supernet.labels == ("c", "k", "f")
    for values in ({"c": 4, "k": 5, "f": 6}, {"c": 2, "k": 3, "f": 3}, {"c": 2, "k": 5, "f": 6}):
        g = space.genotype(values)
        with torch.no_grad():
            for alpha, label in zip(supernet.alphas, supernet.labels, strict=True):
                choices = supernet.searched[label]
                alpha.copy_(torch.tensor([50.0 if c == g[label] else 0.0 for c in choices]))
            mixed, path = supernet(x), supernet(x, genotype=g)
        f = values["f"]  # the mixture runs at the largest width, masked beyond the choice
        assert (mixed[:, :f] - path).abs().max() < 1e-5
        assert mixed[:, f:].abs().sum() < 1e-12


def test_value_choices_used_by_ordinary_code_keep_their_first_value() -> None:
    space = nsn.ModelSpace(PlainUse)
    assert [d.name for d in space.decisions()] == ["width", "depth", "layerchoice_1"]
    with pytest.warns(UserWarning, match="not searched: depth, width"):
        supernet = space.supernet()
    assert supernet.labels == ("layerchoice_1",)
    assert supernet(torch.randn(2, 1, 5, 5)).shape == (2, 3)
    assert dict(supernet.derive_genotype())["width"] == 4
    one_shot = space.one_shot_decisions()
    assert [d.choices for d in one_shot] == [(4,), (1,), ("Conv2d_0", "Conv2d_1")]
    assert list(space.edge_candidates()) == ["layerchoice_1"]


def test_bad_supernet_requests() -> None:
    with pytest.raises(ConfigError, match="supernet mode"):
        nsn.ModelSpace(ThreeBlockCNN).supernet(mode="soft")
