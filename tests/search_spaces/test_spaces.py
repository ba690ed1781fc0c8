"""Every registered search space: sampling, validation, building, mutation, identity, notation."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import torch

import search_spaces.ops  # noqa: F401  (registers the ops)
from nasplat.errors import ConfigError, InvalidGenotypeError, UnknownNameError
from nasplat.genotype import Genotype
from nasplat.registry import SPACES
from nasplat.shape import NetShape
from search_spaces import cell, chain, hierarchical, nb201  # noqa: F401  (register the spaces)

TINY: dict[str, dict[str, Any]] = {
    "cell": {"channels": 4, "layers": 2},
    "nb201": {"channels": 4, "cells_per_stage": 1},
    "hierarchical": {"channels": 4, "motifs": 3},
    "chain": {"layers": 2, "widths": (4, 8)},
}
SPACE_NAMES = SPACES.names()


def tiny_space(name: str, **options: Any) -> Any:
    return SPACES.get(name)(**{**TINY.get(name, {}), **options})


def forward_backward(net: torch.nn.Module, x: torch.Tensor, num_classes: int = 10) -> None:
    net.train()
    out = net(x)
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (x.shape[0], num_classes)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads, "no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_sample_validate_build_forward_backward(name: str) -> None:
    space = tiny_space(name)
    for seed in range(2):
        genotype = space.sample(random.Random(seed))
        space.validate(genotype)
        assert genotype.space == name
        forward_backward(space.build(genotype), torch.randn(2, 1, 8, 8))


@pytest.mark.parametrize("name", SPACE_NAMES)
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3)])
def test_build_other_input_sizes(name: str, size: int, channels: int) -> None:
    space = tiny_space(name)
    genotype = space.sample(random.Random(3))
    shape = NetShape(in_channels=channels, input_size=size, num_classes=4)
    net = space.build(genotype, shape).eval()
    assert net(torch.randn(2, channels, size, size)).shape == (2, 4)


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_width_mult_scales_channels(name: str) -> None:
    space = tiny_space(name)
    genotype = space.sample(random.Random(4))
    count = [
        sum(p.numel() for p in space.build(genotype, NetShape(width_mult=w)).parameters())
        for w in (1.0, 2.0)
    ]
    assert count[1] > count[0]


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_sample_uses_only_given_rng(name: str) -> None:
    space = tiny_space(name)
    random.seed(0)
    first = space.sample(random.Random(11))
    random.seed(1)
    assert space.sample(random.Random(11)) == first
    assert len({space.sample(random.Random(s)).sha for s in range(5)}) > 1


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_mutate_changes_canonical_form(name: str) -> None:
    space = tiny_space(name)
    rng = random.Random(5)
    genotype = space.sample(rng)
    for _ in range(10):
        child = space.mutate(genotype, rng)
        space.validate(child)
        assert space.canonicalize(child) != space.canonicalize(genotype)
        genotype = child


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_canonicalize_idempotent_and_valid(name: str) -> None:
    space = tiny_space(name)
    for seed in range(5):
        canonical = space.canonicalize(space.sample(random.Random(seed)))
        space.validate(canonical)
        assert space.canonicalize(canonical) == canonical


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_json_and_notation_round_trip(name: str) -> None:
    space = tiny_space(name)
    genotype = space.sample(random.Random(6))
    assert Genotype.from_json(genotype.to_json()) == genotype
    text = space.to_notation(genotype)
    assert space.from_notation(text) == genotype
    assert space.to_notation(space.from_notation(text)) == text
    assert space.from_notation(genotype.to_json()) == genotype


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_bad_genotypes_name_the_decision(name: str) -> None:
    space = tiny_space(name)
    genotype = space.sample(random.Random(7))
    first = next(d for d in space.decisions() if any(isinstance(c, str) for c in d.choices))
    with pytest.raises(InvalidGenotypeError, match=first.name.replace(".", r"\.")):
        space.validate(genotype.replace({first.name: "no_such_op"}))
    last = space.decisions()[-1].name
    missing = Genotype(name, {k: v for k, v in genotype.items() if k != last})
    with pytest.raises(InvalidGenotypeError, match=last.replace(".", r"\.")):
        space.validate(missing)
    with pytest.raises(InvalidGenotypeError, match="bogus"):
        space.validate(genotype.replace({"bogus.decision": 1}))
    with pytest.raises(InvalidGenotypeError):
        space.validate(Genotype("not-" + name, dict(genotype)))


def test_cell_input_out_of_range_and_bool_rejected() -> None:
    space = tiny_space("cell")
    genotype = space.sample(random.Random(0))
    with pytest.raises(InvalidGenotypeError, match=r"normal\.n3\.in1"):
        space.validate(genotype.replace({"normal.n3.in1": 3}))
    with pytest.raises(InvalidGenotypeError, match=r"reduce\.n2\.in0"):
        space.validate(genotype.replace({"reduce.n2.in0": True}))


def test_cell_nodes_option_changes_decisions() -> None:
    assert len(tiny_space("cell", nodes=2).decisions()) == 2 * 2 * 4
    with pytest.raises(InvalidGenotypeError, match=r"normal\.n4\.in0"):
        tiny_space("cell", nodes=2).validate(tiny_space("cell").sample(random.Random(0)))


def test_cell_genotypes_never_choose_none_but_supernet_holds_it() -> None:
    space = tiny_space("cell")
    op_choices = {
        c for d in space.decisions() if d.name.endswith(("op0", "op1")) for c in d.choices
    }
    assert "none" not in op_choices and len(op_choices) == 7
    assert all("none" in ops for ops in space.edge_candidates().values())


def test_cell_canonical_sorts_node_inputs() -> None:
    space = tiny_space("cell")
    g = space.sample(random.Random(1))
    swapped = g.replace(
        {
            "normal.n4.in0": g["normal.n4.in1"],
            "normal.n4.op0": g["normal.n4.op1"],
            "normal.n4.in1": g["normal.n4.in0"],
            "normal.n4.op1": g["normal.n4.op0"],
        }
    )
    assert swapped != g
    assert space.canonicalize(swapped) == space.canonicalize(g)
    canonical = space.canonicalize(g)
    assert all(
        canonical[f"{k}.n{j}.in0"] <= canonical[f"{k}.n{j}.in1"]
        for k in ("normal", "reduce")
        for j in range(2, 6)
    )
    other_op = next(op for op in space.genotype_ops if op != g["normal.n4.op0"])
    assert space.canonicalize(g.replace({"normal.n4.op0": other_op})) != canonical


def test_nb201_canonical_forms() -> None:
    space = tiny_space("nb201")
    read = space.from_notation
    # node 1's output feeds nothing: edge 1-0 is irrelevant
    a = read("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    b = read("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    assert space.canonicalize(a) == space.canonicalize(b)
    assert space.canonicalize(a)["edge.1.0"] == "none"
    # node 1 is unreachable (1-0 is none): its outgoing edges are irrelevant
    c = read(
        "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    )
    d = read("|none~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    assert space.canonicalize(c) == space.canonicalize(d)
    # output disconnected: the canonical zero cell
    zero = read("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|none~1|none~2|")
    assert set(space.canonicalize(zero).values()) == {"none"}
    # a real difference survives
    e = read(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    )
    assert space.canonicalize(e) != space.canonicalize(a)
    assert space.canonicalize(space.canonicalize(e)) == space.canonicalize(e)
    # isomorphic: nodes 1 and 2 swapped, a skip chain folded (tests/search_spaces/test_isomorphism.py)
    f = read("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|")
    g = read("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|")
    assert space.canonicalize(f) == space.canonicalize(g)


def test_nb201_canonical_cells_compute_the_same_function() -> None:
    space = tiny_space("nb201")
    a = space.from_notation(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    )
    net_a, net_c = space.build(a).eval(), space.build(space.canonicalize(a)).eval()
    shared = {k for k in net_a.state_dict() if k in net_c.state_dict()}
    missing = net_c.load_state_dict(
        {k: net_a.state_dict()[k] for k in shared}, strict=False
    ).missing_keys
    assert missing == [] or all(".e1_0.ops.none" in k for k in missing)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(net_a(x), net_c(x))


def test_hierarchical_canonical_forms() -> None:
    space = tiny_space("hierarchical")
    g = space.sample(random.Random(2))
    canonical = space.canonicalize(g)
    used = {v for k, v in canonical.items() if k.startswith("motif3.")}
    for m in space.motif_names:
        edges = [canonical[k] for k in canonical if k.startswith(f"motif2.{m}.")]
        if m not in used:
            assert set(edges) == {"none"}
    # changing an unused motif does not change the canonical form
    top_none = {k: "none" for k in g if k.startswith("motif3.")}
    only_skip = g.replace({**top_none, "motif3.e4_0": "skip_connect"})
    assert space.canonicalize(
        only_skip.replace({"motif2.m0.e1_0": "conv_1x1"})
    ) == space.canonicalize(only_skip.replace({"motif2.m0.e1_0": "max_pool_3x3"}))
    # a level-3 edge using an all-none motif is none
    zero_m0 = {k: "none" for k in g if k.startswith("motif2.m0.")}
    with_zero = only_skip.replace({**zero_m0, "motif3.e1_0": "m0"})
    assert space.canonicalize(with_zero) == space.canonicalize(only_skip)


def test_hierarchical_mutation_touches_one_edge() -> None:
    space = tiny_space("hierarchical")
    rng = random.Random(8)
    g = space.sample(rng)
    for _ in range(10):
        child = space.mutate(g, rng)
        assert sum(child[k] != g[k] for k in g) == 1
        g = child


@pytest.mark.parametrize(
    "name,ops,count",
    [
        ("cell", "sep_conv_3x3,skip_connect", 2),
        ("nb201", "none,conv_3x3,skip_connect", 3),
        ("nb201", ["nor_conv_3x3", "avg_pool_3x3"], 2),
        ("hierarchical", "conv_1x1, max_pool_3x3, none", 3),
    ],
)
def test_custom_ops(name: str, ops: Any, count: int) -> None:
    space = tiny_space(name, ops=ops)
    op_decision = next(d for d in space.decisions() if isinstance(d.choices[0], str))
    assert len(op_decision.choices) == count
    genotype = space.sample(random.Random(9))
    forward_backward(space.build(genotype), torch.randn(2, 1, 8, 8))


@pytest.mark.parametrize("name", ["cell", "nb201", "hierarchical"])
def test_unknown_op_or_network_option_is_an_error(name: str) -> None:
    with pytest.raises(UnknownNameError, match="no_such_op"):
        tiny_space(name, ops="skip_connect,no_such_op")
    space = tiny_space(name)
    with pytest.raises(Exception, match="bogus"):
        space.build(space.sample(random.Random(0)), bogus=1)


def test_cell_stem_stride_halves_the_cells_input() -> None:
    space = tiny_space("cell", layers=3)
    genotype = space.sample(random.Random(0))
    x = torch.randn(2, 1, 8, 8)
    plain, strided = space.build(genotype), space.build(genotype, stem_stride=2)
    assert plain.stem(x).shape[-2:] == (8, 8) and strided.stem(x).shape[-2:] == (4, 4)
    assert strided(x).shape == (2, 10)
    assert sum(p.numel() for p in plain.parameters()) == sum(
        p.numel() for p in strided.parameters()
    )
    with pytest.raises(ConfigError, match="stem_stride"):
        space.build(genotype, stem_stride=3)


def test_cell_auxiliary_head_and_drop_path() -> None:
    space = tiny_space("cell", layers=3)
    genotype = space.sample(random.Random(0))
    net = space.build(genotype, auxiliary=True, drop_path_prob=0.5)
    x = torch.randn(4, 1, 8, 8)
    logits, aux = net.train()(x)
    assert logits.shape == aux.shape == (4, 10)
    torch.manual_seed(0)
    first = net(x)[0]
    torch.manual_seed(1)
    assert not torch.allclose(first, net(x)[0])  # drop path is random in training
    net.eval()
    out = net(x)
    assert isinstance(out, torch.Tensor) and torch.equal(out, net(x))
    net.drop_path_prob = 0.0
    assert math.isclose(net.drop_path_prob, 0.0)
