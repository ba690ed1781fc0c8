"""Weight-sharing supernets of every space that offers one (continuous and single-path modes)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch

import search_spaces.ops  # noqa: F401  (registers the ops)
from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.registry import SPACES
from nasplat.space import SearchSpace
from search_spaces import cell, chain, hierarchical, nb201  # noqa: F401  (register the spaces)

TINY: dict[str, dict[str, Any]] = {
    "cell": {"channels": 4, "layers": 3},  # cells: normal, reduce, reduce
    "nb201": {"channels": 4, "cells_per_stage": 1},
    "chain": {
        "layers": 2,
        "widths": (8,),
        "ops": "conv_3x3,max_pool_3x3,sep_conv_3x3,skip_connect",
    },
}
WITH_SUPERNET = [n for n in SPACES.names() if SPACES.get(n).supernet is not SearchSpace.supernet]


def tiny_space(name: str, **options: Any) -> Any:
    return SPACES.get(name)(**{**TINY.get(name, {}), **options})


def perturb(module: torch.nn.Module, seed: int) -> None:
    """Random weights and BN statistics, so equal outputs mean equal weights were used."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.normal_(0.0, 0.3, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)


def test_cell_and_nb201_have_supernets() -> None:
    assert {"cell", "nb201"} <= set(WITH_SUPERNET)


@pytest.mark.parametrize("name", WITH_SUPERNET)
def test_continuous_forward_backward(name: str) -> None:
    supernet = tiny_space(name).supernet(mode="continuous")
    out = supernet(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.square().mean().backward()
    alphas = supernet.arch_parameters()
    assert alphas and all(a.grad is not None and torch.isfinite(a.grad).all() for a in alphas)
    assert any(a.grad.abs().sum() > 0 for a in alphas)
    assert any(p.grad is not None for p in supernet.weight_parameters())


@pytest.mark.parametrize("name", WITH_SUPERNET)
def test_arch_parameters_are_separate_from_weights(name: str) -> None:
    supernet = tiny_space(name).supernet()
    arch = {id(p) for p in supernet.arch_parameters()}
    weights = {id(p) for p in supernet.weight_parameters()}
    assert arch and weights and not arch & weights
    assert arch | weights == {id(p) for p in supernet.parameters()}


@pytest.mark.parametrize("name", WITH_SUPERNET)
def test_arch_weights_and_derive(name: str) -> None:
    space = tiny_space(name)
    supernet = space.supernet()
    weights = supernet.arch_weights()
    assert weights and all(abs(sum(w.values()) - 1.0) < 1e-5 for w in weights.values())
    assert all(isinstance(v, float) for w in weights.values() for v in w.values())
    derived = supernet.derive_genotype()
    space.validate(derived)
    assert derived.space == name


@pytest.mark.parametrize("name", WITH_SUPERNET)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_path_matches_standalone_with_copied_weights(name: str, seed: int) -> None:
    space = tiny_space(name)
    supernet = space.supernet(mode="single_path")
    perturb(supernet, seed)
    supernet.eval()
    genotype = space.sample(random.Random(seed))
    net = space.build(genotype)
    assert set(supernet.extract_weights(genotype)) == set(net.state_dict())
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    fresh = net.eval()(x)
    supernet.load_path_into(net, genotype)
    with torch.no_grad():
        expected = supernet(x, genotype=genotype)
        got = net.eval()(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fresh, expected, atol=1e-3)


@pytest.mark.parametrize("name", WITH_SUPERNET)
def test_single_path_trains_only_the_path(name: str) -> None:
    space = tiny_space(name)
    supernet = space.supernet(mode="single_path")
    genotype = space.sample(random.Random(4))
    with pytest.raises(ValueError, match="genotype"):
        supernet(torch.randn(2, 1, 8, 8))
    supernet(torch.randn(2, 1, 8, 8), genotype=genotype).sum().backward()
    path = set(supernet.path_keys(genotype))
    for key, param in supernet.net.named_parameters():
        if key not in path:
            assert param.grad is None or not param.grad.any(), key
    assert all(p.grad is None for p in supernet.arch_parameters())
    supernet.active = genotype
    assert supernet(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("name", WITH_SUPERNET)
def test_supernet_rejects_bad_mode_and_genotype(name: str) -> None:
    space = tiny_space(name)
    with pytest.raises(ConfigError, match="mode"):
        space.supernet(mode="sometimes")
    genotype = space.sample(random.Random(0))
    first = space.decisions()[0].name
    with pytest.raises(InvalidGenotypeError, match=first.replace(".", r"\.")):
        space.supernet()(torch.randn(1, 1, 8, 8), genotype=genotype.replace({first: "no_such_op"}))


def set_alphas(supernet: Any, logits: dict[str, dict[str, float]]) -> None:
    with torch.no_grad():
        for key, alpha in zip(supernet.arch.keys, supernet.arch.alphas, strict=True):
            ops = supernet.arch.candidates[key]
            alpha.copy_(torch.tensor([logits.get(key, {}).get(op, 0.0) for op in ops]))


def test_cell_derive_follows_darts() -> None:
    space = tiny_space("cell")
    supernet = space.supernet()
    logits = {}
    for key in space.edge_candidates():
        i = int(key.rsplit(".e", 1)[1])
        logits[key] = {"none": 50.0, ("sep_conv_3x3" if i % 2 else "max_pool_3x3"): float(i)}
    set_alphas(supernet, logits)
    derived = supernet.derive_genotype()
    for kind in ("normal", "reduce"):
        for j in range(2, 6):
            assert (derived[f"{kind}.n{j}.in0"], derived[f"{kind}.n{j}.in1"]) == (j - 2, j - 1)
            for s in (0, 1):
                i = derived[f"{kind}.n{j}.in{s}"]
                assert derived[f"{kind}.n{j}.op{s}"] == (
                    "sep_conv_3x3" if i % 2 else "max_pool_3x3"
                )


def test_nb201_derive_takes_the_argmax_none_included() -> None:
    space = tiny_space("nb201")
    supernet = space.supernet()
    set_alphas(supernet, {"edge.1.0": {"none": 5.0}, "edge.3.2": {"nor_conv_3x3": 5.0}})
    derived = supernet.derive_genotype()
    assert derived["edge.1.0"] == "none" and derived["edge.3.2"] == "nor_conv_3x3"
    assert supernet.arch_weights()["edge.3.2"]["nor_conv_3x3"] > 0.9


def test_cell_supernet_shares_alphas_across_cells_of_a_kind() -> None:
    space = tiny_space("cell", layers=4)
    supernet = space.supernet()
    assert len(supernet.arch_parameters()) == len(space.edge_candidates()) == 2 * 14
    assert all(len(a) == 8 for a in supernet.arch_parameters())


def test_chain_supernet_across_widths() -> None:
    space = tiny_space("chain", widths=(4, 8))
    with pytest.raises(ConfigError, match="single width"):
        space.supernet(mode="continuous")
    supernet = space.supernet(mode="single_path")
    perturb(supernet, 0)
    supernet.eval()
    x = torch.randn(2, 1, 8, 8)
    for seed in range(3):
        genotype = space.sample(random.Random(seed))
        net = space.build(genotype)
        supernet.load_path_into(net, genotype)
        with torch.no_grad():
            torch.testing.assert_close(
                net.eval()(x), supernet(x, genotype=genotype), atol=1e-5, rtol=1e-5
            )
    space.validate(supernet.derive_genotype())
