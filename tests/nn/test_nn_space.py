"""nasplat.nn model spaces: decisions, labels, fixed builds, canonical forms, pickling."""

from __future__ import annotations

import pickle
import random

import pytest
import torch
from nn_models import DepthNet, InputNet, ThreeBlockCNN
from torch import nn

import nasplat.nn as nsn
from nasplat.errors import ConfigError, InvalidGenotypeError
from nasplat.genotype import Genotype
from nasplat.space import SearchSpace


def test_decisions_of_a_module_in_construction_order() -> None:
    space = nsn.ModelSpace(ThreeBlockCNN)
    assert isinstance(space, SearchSpace) and space.has_supernet()
    assert space.name == "nn_models:ThreeBlockCNN"
    assert [(d.name, d.choices) for d in space.decisions()] == [
        (name, choices)
        for i in range(3)
        for name, choices in (
            (f"b{i}.width", (16, 32)),
            (f"b{i}.op", ("conv3x3", "sepconv", "identity")),
        )
    ]
    assert nsn.ModelSpace(ThreeBlockCNN, name="cnn", blocks=2).name == "cnn"
    assert len(nsn.ModelSpace(ThreeBlockCNN, blocks=2).decisions()) == 4


def test_auto_labels_list_names_and_input_choices() -> None:
    space = nsn.ModelSpace(InputNet)
    assert [(d.name, d.choices) for d in space.decisions()] == [
        ("layerchoice_1", ("Conv2d_0", "Conv2d_1")),
        ("layerchoice_2", ("Conv2d_0", "Conv2d_1")),
        ("inputchoice_1", (0, 1)),
    ]
    assert nsn.ModelSpace(InputNet).decisions() == space.decisions()  # deterministic


class Shared(nn.Module):
    def __init__(self, conflict: bool = False) -> None:
        super().__init__()
        self.a = nsn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
        self.b = nsn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
        self.w1 = nsn.choice("w", [1, 2])
        self.w2 = nsn.choice("w", [1, 2, 3] if conflict else [1, 2])
        self.pick = nsn.InputChoice(3, n_chosen=2, reduction="concat", label="in")


def test_shared_labels_are_one_decision_and_conflicts_are_errors() -> None:
    space = nsn.ModelSpace(Shared)
    assert [(d.name, d.choices) for d in space.decisions()] == [
        ("act", ("ReLU", "Tanh")),
        ("w", (1, 2)),
        ("in", ("0,1", "0,2", "1,2")),
    ]
    net = space.build(space.genotype({"act": "Tanh", "w": 2, "in": "0,2"}))
    assert isinstance(net.a, nn.Tanh) and isinstance(net.b, nn.Tanh)
    assert net.w1 == net.w2 == 2
    xs = [torch.full((1, 1), float(i)) for i in range(3)]
    assert net.pick(xs).tolist() == [[0.0, 2.0]]
    with pytest.raises(ConfigError, match="label 'w' is used twice with different choices"):
        nsn.ModelSpace(Shared, conflict=True).decisions()


def test_choices_outside_a_model_space_are_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="only work while a ModelSpace constructs"):
        nsn.choice("w", [1, 2])
    assert type(nsn.Conv2d(1, 2, 3)) is nn.Conv2d  # plain sizes: the torch layer anywhere


def test_fixed_build_is_a_plain_network() -> None:
    space = nsn.ModelSpace(ThreeBlockCNN)
    small = space.genotype({d.name: d.choices[0] for d in space.decisions()})
    wide = small.replace({f"b{i}.width": 32 for i in range(3)})
    nets = [space.build(g) for g in (small, wide)]
    for net in nets:
        assert not [m for m in net.modules() if type(m).__module__.startswith("nasplat.nn")]
        assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    params = [sum(p.numel() for p in net.parameters()) for net in nets]
    # conv3x3 blocks: the 1x1 projections and 3x3 convs grow with the widths
    expected_small = (
        (8 * 9 + 8)
        + (8 * 16 + 32 + 16 * 16 * 9 + 32)
        + 2 * (16 * 16 + 32 + 16 * 16 * 9 + 32)
        + (16 * 10 + 10)
    )
    assert params[0] == expected_small and params[1] > params[0]
    assert isinstance(space.build(small.replace({"b1.op": "identity"})).blocks[1].op, nn.Identity)


def test_build_validates_the_genotype() -> None:
    space = nsn.ModelSpace(ThreeBlockCNN)
    good = space.sample(random.Random(0))
    with pytest.raises(InvalidGenotypeError, match="b0.width"):
        space.build(good.replace({"b0.width": 17}))
    with pytest.raises(InvalidGenotypeError, match="not 'nn_models:ThreeBlockCNN'"):
        space.build(Genotype("other", dict(good)))


def test_decisions_inside_a_depth_choice_are_found_and_canonicalized() -> None:
    space = nsn.ModelSpace(DepthNet)
    assert [d.name for d in space.decisions()] == ["depth", "op0", "op1"]
    shallow = space.genotype({"depth": 1, "op0": "Identity", "op1": "Identity"})
    canonical = space.canonicalize(shallow)
    assert dict(canonical) == {"depth": 1, "op0": "Identity", "op1": "Conv2d"}
    assert space.canonicalize(canonical) == canonical
    deep = shallow.replace({"depth": 2})
    assert space.canonicalize(deep) == deep
    assert len(space.build(deep).blocks) == 2 and len(space.build(shallow).blocks) == 1


def test_black_box_helpers_and_notation_round_trip() -> None:
    space = nsn.ModelSpace(ThreeBlockCNN)
    rng = random.Random(1)
    g = space.sample(rng)
    space.validate(g)
    child = space.mutate(g, rng)
    assert sum(child[k] != g[k] for k in g) == 1
    assert space.from_notation(space.to_notation(g)) == g


def test_model_space_pickles_by_reference() -> None:
    space = nsn.ModelSpace(ThreeBlockCNN, blocks=2)
    space.decisions(), space.canonicalize(space.sample(random.Random(0)))
    copy = pickle.loads(pickle.dumps(space))
    assert copy.name == space.name and copy.decisions() == space.decisions()
    g = space.sample(random.Random(2))
    assert copy.build(g)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


class ReadsValues(nn.Module):
    """A constructor that reads a tensor's value (impossible on the meta device)."""

    def __init__(self) -> None:
        super().__init__()
        scale = torch.ones(1)
        self.op = nsn.LayerChoice([nn.Identity(), nn.ReLU()], label="op")
        self.k = nsn.choice("k", [1, 2]) * int(scale.item())


def test_discovery_falls_back_to_the_cpu() -> None:
    space = nsn.ModelSpace(ReadsValues)
    assert [d.name for d in space.decisions()] == ["op", "k"]
    assert space.build(space.genotype({"op": "ReLU", "k": 2})).k == 2
