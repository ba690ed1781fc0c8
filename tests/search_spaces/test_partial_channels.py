"""PC-DARTS pieces of the cell spaces' supernets: partial-channel edges and edge normalisation."""

from __future__ import annotations

import pytest
import torch

from nasplat.errors import ConfigError
from nasplat.nn import LayerChoice, ModelSpace
from nasplat.shape import NetShape
from search_spaces.cell import CellSpace
from search_spaces.chain import ChainSpace
from search_spaces.nb201 import NB201Space
from search_spaces.supernet import Edge, Route, channel_shuffle, partial_channel_mix


def edges_of(supernet: torch.nn.Module) -> dict[str, Edge]:
    """One edge module per key (cells of a kind share keys; the first one is kept)."""
    out: dict[str, Edge] = {}
    for module in supernet.modules():
        if isinstance(module, Edge):
            out.setdefault(module.key, module)
    return out


def random_weights(edge: Edge, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(len(edge.names), generator=gen), dim=0)


def test_channel_shuffle_interleaves_the_groups() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert torch.equal(channel_shuffle(x, 1), x)


@pytest.mark.parametrize("key", ["normal.n3.e1", "reduce.n2.e0"])  # stride 1 and stride 2
def test_k1_partial_mix_equals_the_full_mixture_exactly(key: str) -> None:
    supernet = CellSpace(channels=4, layers=3).supernet(NetShape())
    edge = edges_of(supernet)[key]
    width = 4 if key.startswith("normal") else 8
    x = torch.randn(3, width, 8, 8, generator=torch.Generator().manual_seed(1))
    weights = random_weights(edge, 2)
    supernet.eval()  # BatchNorm with running statistics: both passes see the same ones
    full = edge._mixture(x, weights)
    partial = partial_channel_mix(x, 1, lambda h: edge._mixture(h, weights))
    assert partial.shape == full.shape
    assert torch.equal(partial, full)


def test_partial_edge_runs_its_ops_on_a_quarter_and_shuffles_the_bypass_in() -> None:
    supernet = NB201Space(channels=8, cells_per_stage=1).supernet(NetShape(), partial_channels=4)
    assert supernet.partial_channels == 4
    edge = edges_of(supernet)["edge.3.1"]  # first stage: 8 channels, ops 2 wide
    assert edge.partial == 4
    conv = next(m for m in edge.ops["nor_conv_3x3"].modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.in_channels == conv.out_channels == 2
    x = torch.randn(2, 8, 6, 6)
    weights = random_weights(edge, 3)
    route = Route(weights={edge.key: weights})
    supernet.eval()
    out = edge(x, route)
    assert out is not None and out.shape == x.shape
    # output channel 4 * i + g is group g's i-th channel: group 0 the ops, groups 1-3 bypass
    groups = out.view(2, 2, 4, 6, 6).transpose(1, 2)
    assert torch.equal(groups[:, 0], edge._mixture(x[:, :2], weights))
    assert torch.equal(groups[:, 1:].reshape(2, 6, 6, 6), x[:, 2:])


def test_partial_reduction_edge_max_pools_the_bypass() -> None:
    supernet = CellSpace(channels=4, layers=3).supernet(NetShape(), partial_channels=2)
    edge = edges_of(supernet)["reduce.n2.e0"]  # 8 channels in, stride 2
    x = torch.randn(2, 8, 7, 7)  # an odd size: ceil-mode pooling matches the ops' 4x4
    supernet.eval()
    out = edge(x, Route(weights={edge.key: random_weights(edge, 4)}))
    assert out is not None and out.shape == (2, 8, 4, 4)
    bypass = out.view(2, 4, 2, 4, 4)[:, :, 1]
    assert torch.equal(bypass, torch.nn.functional.max_pool2d(x[:, 4:], 2, 2, ceil_mode=True))


def test_partial_supernet_trains_and_runs_single_paths() -> None:
    space = CellSpace(channels=4, layers=3)
    supernet = space.supernet(NetShape(), partial_channels=4)
    out = supernet(torch.randn(2, 1, 8, 8))
    out.square().mean().backward()
    assert all(a.grad is not None for a in supernet.arch_parameters())
    genotype = supernet.derive_genotype()
    assert supernet(torch.randn(2, 1, 8, 8), genotype=genotype).shape == (2, 10)
    with pytest.raises(ConfigError, match="cannot be copied"):
        supernet.extract_weights(genotype)


def test_edge_normalization_weights_a_nodes_edges_by_a_softmax() -> None:
    supernet = NB201Space(channels=4, cells_per_stage=1).supernet(
        NetShape(), edge_normalization=True
    )
    assert supernet.edge_norm is not None
    assert supernet.edge_norm.groups == (
        ("edge.1.0",),
        ("edge.2.0", "edge.2.1"),
        ("edge.3.0", "edge.3.1", "edge.3.2"),
    )
    betas = list(supernet.edge_norm.betas)
    assert supernet.arch_parameters() == [*supernet.alpha_parameters(), *betas]
    with torch.no_grad():
        betas[2].copy_(torch.tensor([0.0, 1.0, 2.0]))
    w = supernet.edge_weights()
    assert w["edge.1.0"] == 1.0
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0).tolist()
    assert [w[f"edge.3.{i}"] for i in range(3)] == pytest.approx(expected)
    # the route scales each edge's whole output by its weight
    route = supernet.route()
    edge = edges_of(supernet)["edge.3.2"]
    x = torch.randn(2, 4, 6, 6)
    supernet.eval()
    scaled = edge(x, route)
    plain = edge(x, Route(weights=route.weights))
    assert scaled is not None and plain is not None
    assert torch.allclose(scaled, expected[2] * plain)
    # and the betas learn: the loss has a gradient for them
    supernet.train()
    supernet(torch.randn(2, 1, 8, 8)).square().mean().backward()
    assert betas[2].grad is not None and betas[2].grad.abs().sum() > 0


def test_edge_normalization_changes_which_inputs_a_cell_node_keeps() -> None:
    """Node 3 of the DARTS cell has inputs 0, 1 and 2 and keeps two: by the op weights alone
    inputs 0 and 1; with edge 0's weight made small (PC-DARTS's alpha * beta), inputs 1, 2."""
    space = CellSpace(channels=4, layers=3)  # cell 0 is a normal cell
    supernet = space.supernet(NetShape(), edge_normalization=True)
    keys = list(supernet.arch.keys)
    ops = space.edge_candidates()["normal.n3.e0"]
    conv = ops.index("sep_conv_3x3")
    with torch.no_grad():
        for key, alpha in zip(keys, supernet.arch.alphas, strict=True):
            alpha.zero_()
            if key.startswith("normal.n3."):
                alpha[conv] = {"e0": 3.0, "e1": 2.0, "e2": 1.0}[key.rsplit(".", 1)[1]]
    assert supernet.edge_norm is not None
    group = supernet.edge_norm.groups.index(("normal.n3.e0", "normal.n3.e1", "normal.n3.e2"))
    plain = space.derive(supernet.arch_weights())
    assert {plain["normal.n3.in0"], plain["normal.n3.in1"]} == {0, 1}
    with torch.no_grad():
        supernet.edge_norm.betas[group].copy_(torch.tensor([-5.0, 0.0, 0.0]))
    derived = supernet.derive_genotype()
    assert {derived["normal.n3.in0"], derived["normal.n3.in1"]} == {1, 2}


def test_unsupported_settings_are_one_config_error_line() -> None:
    cell = CellSpace(channels=4, layers=2)
    cases = [
        (lambda: cell.supernet(NetShape(), partial_channels=3), "must divide"),
        (lambda: cell.supernet(NetShape(), partial_channels=0), "integer >= 1"),
        (lambda: cell.supernet(NetShape(), partial_channels=2.5), "integer >= 1"),
        (
            lambda: ChainSpace(layers=2, widths=[8], ops="conv_3x3,skip_connect").supernet(
                NetShape(), partial_channels=2
            ),
            "cannot run on partial channels",
        ),
        (
            lambda: ChainSpace(layers=2, widths=[8], ops="conv_3x3,skip_connect").supernet(
                NetShape(), edge_normalization=True
            ),
            "needs cells of nodes",
        ),
        (lambda: _model_space().supernet(NetShape(), partial_channels=2), "model space"),
    ]
    for make, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            make()
        assert "\n" not in str(info.value)


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = LayerChoice(
            [torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Identity()], label="layer"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x).mean(dim=(1, 2, 3))


def _model_space() -> ModelSpace:
    return ModelSpace(_Tiny)
