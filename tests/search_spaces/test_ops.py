"""Registry-driven tests: every registered op is checked, so a new op is tested automatically."""

from __future__ import annotations

import inspect

import pytest
import torch

import search_spaces.ops  # noqa: F401  (registers the ops)
from nasplat.registry import OPS
from search_spaces.ops import ACTIVATIONS, NORMS, out_size

NAMES = OPS.names()
FAMILIES = {"conv", "residual", "pool", "basic", "attention", "mixer", "graph"}
CASES = [
    (stride, c_in, c_out, size)
    for stride in (1, 2)
    for c_in, c_out in ((8, 8), (4, 8))
    for size in (7, 8)
]


def _accepts(name: str, keyword: str) -> bool:
    return keyword in inspect.signature(OPS.get(name)).parameters


def _build(
    name: str, c_in: int, c_out: int, stride: int, seed: int = 0, **kw: object
) -> torch.nn.Module:
    torch.manual_seed(seed)
    return OPS.get(name)(c_in, c_out, stride, **kw)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("stride,c_in,c_out,size", CASES)
@pytest.mark.parametrize("name", NAMES)
def test_shape_backward_finite(
    name: str, stride: int, c_in: int, c_out: int, size: int, train: bool
) -> None:
    op = _build(name, c_in, c_out, stride).train(train)
    x = torch.randn(2, c_in, size, size, requires_grad=True)
    y = op(x)
    side = out_size(size, stride)
    assert y.shape == (2, c_out, side, side)
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in op.named_parameters():
        assert p.grad is not None, f"{name}: parameter {pname} gets no gradient"
        assert torch.isfinite(p.grad).all()


def test_expected_ops_registered() -> None:
    expected = {
        "conv_1x1", "conv_3x3", "conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "sep_conv_3x3",
        "sep_conv_5x5", "sep_conv_7x7", "dw_conv_3x3", "group_conv_3x3", "conv_7x1_1x7",
        "trans_conv_3x3", "res_basic", "res_bottleneck", "max_pool_3x3", "avg_pool_3x3",
        "l2_pool_3x3", "stochastic_pool_3x3", "skip_connect", "none", "self_attention",
        "se_attention", "spatial_attention", "cbam", "pixel_attention", "mixer_block", "gcn",
        "graph_sage", "gat",
    }  # fmt: skip
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name: str) -> None:
    meta = OPS.meta(name)
    assert meta["family"] in FAMILIES
    assert meta["description"]


@pytest.mark.parametrize("name", NAMES)
def test_unknown_keyword_is_type_error_naming_it(name: str) -> None:
    with pytest.raises(TypeError, match="bogus_option"):
        OPS.get(name)(4, 4, 1, bogus_option=1)


@pytest.mark.parametrize("name", NAMES)
def test_bad_stride_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="stride"):
        OPS.get(name)(4, 4, 3)(torch.randn(1, 4, 6, 6))


def _variant_cases(keyword: str, values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(name, v) for name in NAMES if _accepts(name, keyword) for v in values]


@pytest.mark.parametrize("name,act", _variant_cases("act", ACTIVATIONS))
def test_every_activation_builds(name: str, act: str) -> None:
    y = _build(name, 4, 8, 2, act=act)(torch.randn(2, 4, 7, 7))
    assert y.shape == (2, 8, 4, 4) and torch.isfinite(y).all()


@pytest.mark.parametrize("name,norm", _variant_cases("norm", NORMS))
def test_every_norm_builds(name: str, norm: str) -> None:
    y = _build(name, 4, 8, 2, norm=norm)(torch.randn(2, 4, 7, 7))
    assert y.shape == (2, 8, 4, 4) and torch.isfinite(y).all()


@pytest.mark.parametrize(
    "name,keyword,value",
    [(n, "act", "tanh") for n in NAMES if _accepts(n, "act")]
    + [(n, "norm", "group") for n in NAMES if _accepts(n, "norm")],
)
def test_keyword_variant_changes_the_module(name: str, keyword: str, value: str) -> None:
    x = torch.randn(2, 4, 7, 7)
    default, variant = _build(name, 4, 8, 1), _build(name, 4, 8, 1, **{keyword: value})
    default_types = {type(m) for m in default.modules()}
    variant_types = {type(m) for m in variant.modules()}
    assert default_types != variant_types
    assert not torch.allclose(default(x), variant(x))


@pytest.mark.parametrize("keyword", ["act", "norm"])
def test_unknown_variant_name_lists_known(keyword: str) -> None:
    with pytest.raises(ValueError, match="known"):
        OPS.get("conv_3x3")(4, 4, 1, **{keyword: "nope"})
