"""Behavioural checks that a wrong implementation of an op would fail."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

import search_spaces.ops  # noqa: F401  (registers the ops)
from nasplat.ml.profiling import count_params
from nasplat.registry import OPS
from search_spaces.ops.common import LayerNorm2d, PointwiseConv2d
from search_spaces.ops.conv import CpuTrainConv2d, _SameDepthwiseConv, conv
from search_spaces.ops.graph import (
    adjacency_neighbors,
    gat_propagate,
    gcn_propagate,
    grid_neighbors,
    knn_neighbors,
    sage_propagate,
)
from search_spaces.ops.pooling import stochastic_pool


def build(name: str, c_in: int, c_out: int, stride: int = 1, **kw: object) -> nn.Module:
    torch.manual_seed(0)
    return OPS.get(name)(c_in, c_out, stride, **kw)


def modules_of(module: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


# --- convolutions -------------------------------------------------------------------------


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("c_in,c_out", [(4, 4), (4, 6)])
def test_sep_conv_parameter_count(k: int, c_in: int, c_out: int) -> None:
    unit1 = c_in * k * k + c_in * c_in + 2 * c_in  # depthwise, pointwise, BN
    unit2 = c_in * k * k + c_in * c_out + 2 * c_out
    assert count_params(build(f"sep_conv_{k}x{k}", c_in, c_out)) == unit1 + unit2


@pytest.mark.parametrize("k", [3, 5])
def test_dil_conv_parameter_count_and_dilation(k: int) -> None:
    op = build(f"dil_conv_{k}x{k}", 4, 6)
    assert count_params(op) == 4 * k * k + 4 * 6 + 2 * 6
    assert modules_of(op, nn.Conv2d)[0].dilation == (2, 2)


@pytest.mark.parametrize(
    "k,dilation,stride,size,groups",
    [
        (3, 2, 1, 9, 6),  # depthwise, input >= span + 2: undilated conv, zero-inserted kernel
        (5, 2, 1, 14, 6),
        (5, 2, 2, 14, 6),  # ... then every second output
        (3, 2, 2, 9, 6),
        (5, 2, 1, 10, 6),  # input narrower than span + 2 (11): dilated conv, own backward
        (5, 2, 2, 10, 6),  # ... at stride 1, then every second output
        (3, 2, 1, 4, 6),
        (3, 2, 2, 7, 6),
        (3, 2, 2, 9, 1),  # not depthwise: no zero insertion, stride-1 path
        (5, 1, 1, 4, 6),  # undilated depthwise kernel wider than the input: own backward
        (5, 1, 1, 7, 6),  # ... not wider: the direct conv
    ],
)
def test_cpu_train_conv_paths_match_the_direct_conv(
    k: int, dilation: int, stride: int, size: int, groups: int
) -> None:
    """On channels-last input in training, a dilated or wide depthwise conv takes a faster path
    (zero-inserted kernel, own backward, stride 1 then subsampling); outputs and gradients
    equal the direct conv's."""
    torch.manual_seed(0)
    fast = conv(6, 6, k, stride, dilation=dilation, groups=groups)
    assert isinstance(fast, CpuTrainConv2d)
    padding = dilation * (k - 1) // 2
    direct = nn.Conv2d(6, 6, k, stride, padding, dilation, groups, bias=False)
    direct.load_state_dict(fast.state_dict())
    x = torch.randn(4, 6, size, size).to(memory_format=torch.channels_last)
    outs, grads = [], []
    for module in (fast, direct):
        xi = x.clone().requires_grad_()
        out = module(xi)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        outs.append(out)
        grads += [xi.grad, module.weight.grad]
    size_out = (size + stride - 1) // stride
    assert outs[0].shape == (4, 6, size_out, size_out)
    torch.testing.assert_close(outs[0], outs[1])
    for fast_grad, direct_grad in zip(grads[:2], grads[2:], strict=True):  # summed in other orders
        torch.testing.assert_close(fast_grad, direct_grad, rtol=5e-4, atol=1e-4)
    with torch.no_grad():  # inference takes the direct conv (what the FLOP counter sees)
        torch.testing.assert_close(fast(x), direct(x))


def test_only_dilated_and_wide_depthwise_convs_get_the_cpu_training_paths() -> None:
    assert isinstance(conv(6, 6, 3, 2, dilation=2), CpuTrainConv2d)
    assert isinstance(conv(6, 6, 5, 1, groups=6), CpuTrainConv2d)
    assert type(conv(6, 6, 3, 2, groups=6)) is nn.Conv2d
    assert type(conv(6, 6, 5, 1)) is nn.Conv2d


@pytest.mark.parametrize("dilation", [(1, 1), (2, 2), (2, 1)])
def test_own_depthwise_backward_passes_gradcheck(dilation: tuple[int, int]) -> None:
    """The hand-written gradients of the same-padded depthwise conv, against finite
    differences in float64 (channels-last input, as in training)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64).to(memory_format=torch.channels_last)
    weight = torch.randn(3, 1, 5, 3, dtype=torch.float64)
    x.requires_grad_()
    weight.requires_grad_()
    assert gradcheck(lambda a, b: _SameDepthwiseConv.apply(a, b, dilation), (x, weight))


def test_zero_insertion_spreads_the_kernel_over_its_dilated_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path really runs an undilated conv with a 9x9 kernel for a 5x5 dilation-2 one
    (and only on inputs at least 11 wide)."""
    calls: list[tuple[tuple[int, ...], Any]] = []
    real = F.conv2d

    def spy(x: torch.Tensor, weight: torch.Tensor, *args: Any) -> torch.Tensor:
        calls.append((tuple(weight.shape), args[3]))
        return real(x, weight, *args)

    monkeypatch.setattr(F, "conv2d", spy)
    op = conv(6, 6, 5, 1, dilation=2, groups=6)
    op(torch.randn(2, 6, 11, 11).to(memory_format=torch.channels_last))
    assert calls == [((6, 1, 9, 9), (1, 1))]
    calls.clear()
    op.zero_insert = False
    op(torch.randn(2, 6, 11, 11).to(memory_format=torch.channels_last))
    assert calls == [((6, 1, 5, 5), (2, 2))]  # switched off: the dilated conv itself


@pytest.mark.parametrize("c_in,c_out,groups,expect", [(8, 12, 4, 4), (6, 6, 4, 2), (5, 7, 4, 1)])
def test_group_conv_parameter_count(c_in: int, c_out: int, groups: int, expect: int) -> None:
    op = build("group_conv_3x3", c_in, c_out, groups=groups)
    assert modules_of(op, nn.Conv2d)[0].groups == expect
    assert count_params(op) == c_in * c_out * 9 // expect + 2 * c_out


@pytest.mark.parametrize("c_in,c_out", [(4, 4), (4, 6)])
def test_dw_conv_parameter_count(c_in: int, c_out: int) -> None:
    projection = c_in * c_out if c_in != c_out else 0
    assert count_params(build("dw_conv_3x3", c_in, c_out)) == c_in * 9 + projection + 2 * c_out


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8])
def test_trans_conv_matches_functional_conv_transpose(stride: int, size: int) -> None:
    op = build("trans_conv_3x3", 3, 5, stride, norm="none")
    (tconv,) = modules_of(op, nn.ConvTranspose2d)
    x = torch.randn(2, 3, size, size)
    expected = F.conv_transpose2d(F.relu(x), tconv.weight, padding=1)[..., ::stride, ::stride]
    torch.testing.assert_close(op(x), expected)


def test_conv_7x1_1x7_kernels() -> None:
    kernels = [m.kernel_size for m in modules_of(build("conv_7x1_1x7", 4, 4), nn.Conv2d)]
    assert kernels == [(1, 7), (7, 1)]


# --- residual, skip, none -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["res_basic", "res_bottleneck"])
def test_residual_shortcut(name: str) -> None:
    same, changed = build(name, 4, 4, 1), build(name, 4, 8, 2)
    assert isinstance(same.shortcut, nn.Identity)
    conv = modules_of(changed.shortcut, nn.Conv2d)[0]
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(same(x), same.branch(x) + x)


def test_skip_connect_identity_and_reduce() -> None:
    x = torch.randn(2, 4, 7, 7)
    assert torch.equal(build("skip_connect", 4, 4, 1)(x), x)
    reduce = build("skip_connect", 4, 6, 2, norm="none", act="relu")
    y = reduce(x)
    # First half: 1x1 conv on even positions; second half: on the one-pixel-shifted grid.
    a = F.conv2d(F.relu(x)[..., ::2, ::2], reduce.conv_a.weight)
    shifted = F.pad(F.relu(x), (0, 1, 0, 1))[..., 1::2, 1::2]
    torch.testing.assert_close(y, torch.cat([a, F.conv2d(shifted, reduce.conv_b.weight)], 1))


@pytest.mark.parametrize("stride", [1, 2])
def test_none_gives_zeros_and_zero_gradients(stride: int) -> None:
    x = torch.randn(2, 4, 7, 7, requires_grad=True)
    y = build("none", 4, 6, stride)(x)
    assert y.shape == (2, 6, 7 // stride + stride - 1, 7 // stride + stride - 1)
    assert torch.count_nonzero(y) == 0
    y.sum().backward()
    assert torch.count_nonzero(x.grad) == 0


# --- pooling ------------------------------------------------------------------------------


def test_avg_pool_excludes_padding_and_max_pool_matches() -> None:
    x = torch.ones(1, 2, 5, 5)
    torch.testing.assert_close(build("avg_pool_3x3", 2, 2, 2)(x), torch.ones(1, 2, 3, 3))
    x = torch.randn(1, 2, 5, 5)
    torch.testing.assert_close(build("max_pool_3x3", 2, 2, 2)(x), F.max_pool2d(x, 3, 2, 1))


def test_l2_pool_is_root_mean_square() -> None:
    x = torch.randn(1, 1, 3, 3)
    y = build("l2_pool_3x3", 1, 1, 2)(x)
    torch.testing.assert_close(
        y[0, 0, 0, 0], x[0, 0, :2, :2].square().mean().sqrt(), atol=1e-5, rtol=0
    )


def _window_reference(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Probability-weighted average of relu(x) over each padded 3x3 window, by loops."""
    a = F.pad(x.clamp(min=0), (1, 1, 1, 1))
    n, c, h, w = x.shape
    out = torch.zeros(
        n, c, (h + 1) // stride if stride == 2 else h, (w + 1) // stride if stride == 2 else w
    )
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            win = a[:, :, i * stride : i * stride + 3, j * stride : j * stride + 3].flatten(2)
            total = win.sum(-1)
            out[:, :, i, j] = torch.where(
                total > 0, (win * win).sum(-1) / total.clamp(min=1e-12), 0.0
            )
    return out


@pytest.mark.parametrize("stride", [1, 2])
def test_stochastic_pool_eval_is_probability_weighted_average(stride: int) -> None:
    x = torch.randn(2, 3, 5, 5)
    op = build("stochastic_pool_3x3", 3, 3, stride).eval()
    torch.testing.assert_close(op(x), _window_reference(x, stride))


def test_stochastic_pool_samples_in_proportion_and_is_seeded() -> None:
    x = torch.zeros(4000, 1, 3, 3)
    x[:, 0, 0, 0], x[:, 0, 0, 1], x[:, 0, 1, 0] = 1.0, 3.0, -2.0  # window (0, 0) probs 1/4, 3/4
    torch.manual_seed(1)
    first = stochastic_pool(x, 2, training=True)[:, 0, 0, 0]
    torch.manual_seed(1)
    assert torch.equal(first, stochastic_pool(x, 2, training=True)[:, 0, 0, 0])
    assert set(first.unique().tolist()) == {1.0, 3.0}
    assert abs((first == 3.0).float().mean().item() - 0.75) < 0.03


# --- attention ----------------------------------------------------------------------------


def _permute_positions(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.flatten(2)[:, :, perm].view(n, c, h, w)


def test_self_attention_without_positions_is_permutation_equivariant() -> None:
    op = build("self_attention", 8, 8, pos_encoding=None, heads=2).eval()
    x, perm = torch.randn(2, 8, 4, 5), torch.randperm(20)
    torch.testing.assert_close(op(_permute_positions(x, perm)), _permute_positions(op(x), perm))


@pytest.mark.parametrize("pos", ["sinusoidal", "learned"])
def test_self_attention_positions_break_equivariance(pos: str) -> None:
    op = build("self_attention", 8, 8, pos_encoding=pos).eval()
    if pos == "learned":
        nn.init.normal_(op[1].pos_table)
    x, perm = torch.randn(2, 8, 4, 5), torch.randperm(20)
    assert not torch.allclose(
        op(_permute_positions(x, perm)), _permute_positions(op(x), perm), atol=1e-4
    )


def test_learned_positions_serve_any_size_with_fixed_parameters() -> None:
    op = build("self_attention", 8, 8, pos_encoding="learned", pos_grid=4)
    n_params = count_params(op)
    for h, w in [(2, 3), (4, 4), (9, 6)]:
        assert op(torch.randn(1, 8, h, w)).shape == (1, 8, h, w)
    assert count_params(op) == n_params


def test_se_attention_scales_each_channel() -> None:
    op = build("se_attention", 6, 6)
    x = torch.randn(2, 6, 5, 5)
    y = op(x)
    ratio = y / x
    scale = ratio[:, :, :1, :1]
    torch.testing.assert_close(ratio, scale.expand_as(ratio))
    assert ((scale > 0) & (scale < 1)).all()


def test_spatial_attention_scales_each_position() -> None:
    x = torch.randn(2, 6, 5, 5)
    ratio = build("spatial_attention", 6, 6)(x) / x
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))


def test_cbam_is_channel_then_spatial() -> None:
    op = build("cbam", 6, 6)
    _, channel, spatial = op
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(op(x), spatial(channel(x)))
    maxed = channel.mlp(x.mean((2, 3), keepdim=True)) + channel.mlp(x.amax((2, 3), keepdim=True))
    torch.testing.assert_close(channel(x), x * torch.sigmoid(maxed))


def test_pixel_attention_gate() -> None:
    op = build("pixel_attention", 4, 4)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(op(x), x * torch.sigmoid(op[1].conv(x)))


# --- mixer --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3, 8, 13])
def test_mixer_token_mixing_mixes_positions(size: int) -> None:
    op = build("mixer_block", 4, 4, grid=4).eval()
    x = torch.randn(1, 4, size, size)
    x2 = x.clone()
    x2[:, 0, 0, 0] += 3.0  # one channel: a uniform shift would vanish in LayerNorm
    changed = (op(x2) - op(x)).abs().sum(1).flatten()
    assert (changed[1:] > 1e-6).all()  # every other position moved too


def test_mixer_on_its_grid_is_the_plain_token_mlp() -> None:
    block = build("mixer_block", 4, 4, grid=5)[1]
    x = torch.randn(2, 4, 5, 5)
    expected = block.token_mlp(block.norm1(x).flatten(2)).view_as(x)
    torch.testing.assert_close(block.mix_tokens(x), expected)


# --- norms --------------------------------------------------------------------------------


def test_layer_norm_normalises_channels_per_position() -> None:
    y = LayerNorm2d(6)(torch.randn(2, 6, 3, 3) * 5 + 2)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 3, 3), atol=1e-5, rtol=0)


# --- graphs -------------------------------------------------------------------------------

# A 5-node graph with degrees 1..3, so neighbour lists need padding.
EDGES = [(0, 1), (1, 2), (1, 3), (3, 4), (2, 3)]


def hand_graph() -> torch.Tensor:
    adj = torch.zeros(5, 5)
    for i, j in EDGES:
        adj[i, j] = adj[j, i] = 1.0
    return adj


def dense_grid(h: int, w: int) -> torch.Tensor:
    adj = torch.zeros(h * w, h * w)
    for r in range(h):
        for c in range(w):
            for r2 in range(h):
                for c2 in range(w):
                    if (r, c) != (r2, c2) and abs(r - r2) <= 1 and abs(c - c2) <= 1:
                        adj[r * w + c, r2 * w + c2] = 1.0
    return adj


def gcn_reference(x: torch.Tensor, adj: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    a_hat = adj + torch.eye(adj.shape[0])
    d = torch.diag(a_hat.sum(1).rsqrt())
    return d @ a_hat @ d @ x @ weight


@pytest.mark.parametrize("use_grid", [False, True])
def test_gcn_propagation_matches_dense_formula(use_grid: bool) -> None:
    adj = dense_grid(3, 4) if use_grid else hand_graph()
    x, weight = torch.randn(2, adj.shape[0], 3), torch.randn(3, 2)
    graph = grid_neighbors(3, 4) if use_grid else adj
    torch.testing.assert_close(gcn_propagate(x, graph, weight), gcn_reference(x, adj, weight))


@pytest.mark.parametrize("aggregator", ["mean", "max"])
def test_graph_sage_propagation(aggregator: str) -> None:
    adj = hand_graph()
    x, weight = torch.randn(1, 5, 3), torch.randn(6, 2)
    rows = []
    for i in range(5):
        neigh = x[0, adj[i] > 0]
        agg = neigh.mean(0) if aggregator == "mean" else neigh.amax(0)
        rows.append(torch.cat([x[0, i], agg]) @ weight)
    torch.testing.assert_close(sage_propagate(x, adj, weight, aggregator)[0], torch.stack(rows))


def test_gat_attention_is_a_distribution_over_neighbours() -> None:
    adj = hand_graph()
    heads, feat = 2, 3
    x, weight = torch.randn(1, 5, 4), torch.randn(4, heads * feat)
    a_src, a_dst = torch.randn(heads, feat), torch.randn(heads, feat)
    out, alpha = gat_propagate(x, adj, weight, a_src, a_dst)
    nb = adjacency_neighbors(adj)
    index = torch.cat([torch.arange(5).view(1, 5, 1), nb.index], dim=-1)  # slot 0 = self
    dense = torch.zeros(heads, 5, 5)
    for hd in range(heads):
        dense[hd].scatter_add_(1, index[0], alpha[0, :, :, hd])
    torch.testing.assert_close(dense.sum(-1), torch.ones(heads, 5))
    off_graph = (adj + torch.eye(5)) == 0
    assert (dense[:, off_graph] == 0).all()
    assert (dense[:, ~off_graph] > 0).all()
    h = (x[0] @ weight).view(5, heads, feat).transpose(0, 1)  # (heads, V, F)
    expected = torch.bmm(dense, h).transpose(0, 1).reshape(5, heads * feat)
    torch.testing.assert_close(out[0], expected)


def test_knn_graph_picks_nearest_other_nodes() -> None:
    tokens = torch.randn(2, 10, 3)
    nb = knn_neighbors(tokens, 3)
    dist = torch.cdist(tokens, tokens) + torch.eye(10) * 1e9
    expected = dist.argsort(-1)[..., :3]
    assert torch.equal(nb.index.sort(-1).values, expected.sort(-1).values)


def test_grid_graph_degrees() -> None:
    degree = grid_neighbors(3, 4).degree().view(3, 4)
    assert degree[0, 0] == 3 and degree[0, 1] == 5 and degree[1, 1] == 8
    assert math.isclose(float(degree.sum()), float(dense_grid(3, 4).sum()))


@pytest.mark.parametrize("name", ["gcn", "graph_sage", "gat"])
def test_graph_ops_use_knn_graph(name: str) -> None:
    x = torch.randn(2, 4, 5, 5)
    grid, knn = build(name, 4, 4, graph="grid"), build(name, 4, 4, graph="knn", k=3)
    assert knn(x).shape == grid(x).shape
    assert not torch.allclose(knn(x), grid(x))


@pytest.mark.parametrize("c_in,c_out,size", [(2, 1, 8), (2, 2, 7), (8, 4, 6)])
def test_strided_pointwise_conv_on_channels_last_matches_the_direct_conv(
    c_in: int, c_out: int, size: int
) -> None:
    """The 1x1 strided conv keeps every second pixel and runs at stride 1 on channels-last
    input and on views (the factorized reduce's shifted input): the numbers of the direct conv
    on the same input in NCHW order."""
    torch.manual_seed(0)
    fast = PointwiseConv2d(c_in, c_out, 2)
    direct = nn.Conv2d(c_in, c_out, 1, 2, bias=False)
    direct.load_state_dict(fast.state_dict())
    x = torch.randn(4, c_in, size, size).to(memory_format=torch.channels_last)
    shifted = lambda t: F.pad(t, (0, 1, 0, 1))[:, :, 1:, 1:]  # noqa: E731
    for make_input in (lambda t: t, shifted):
        outs, grads = [], []
        for module in (fast, direct):
            leaf = x.clone().requires_grad_()
            # the reference runs on plain NCHW input (the direct conv crashes on channels-last)
            out = module(make_input(leaf) if module is fast else make_input(leaf).contiguous())
            out.sum().backward()
            outs.append(out)
            grads.append(leaf.grad)
        assert outs[0].shape == (4, c_out, (size + 1) // 2, (size + 1) // 2)
        torch.testing.assert_close(outs[0], outs[1])
        torch.testing.assert_close(grads[0], grads[1])


def test_factorized_reduce_on_channels_last_does_not_crash_the_process() -> None:
    """oneDNN's strided 1x1 conv on channels-last CPU input corrupted the heap (one thread, few
    channels) and killed the PC-DARTS supernet's process; run in a child process."""
    code = (
        "import torch, search_spaces.ops\n"
        "from nasplat.registry import OPS\n"
        "torch.set_num_threads(1)\n"
        "for c in (2, 4):\n"
        "    for size in (8, 6, 2):\n"
        "        op = OPS.get('skip_connect')(c, c, 2).to(memory_format=torch.channels_last)\n"
        "        for _ in range(3):\n"
        "            x = torch.randn(32, c, size, size).to(memory_format=torch.channels_last)\n"
        "            op(x.requires_grad_()).sum().backward()\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
