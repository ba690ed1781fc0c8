"""Canonical forms of DAG cells: NAS-Bench-201's isomorphism classes and their representatives."""

from __future__ import annotations

import itertools
import marshal
import random
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from nasplat.errors import ConfigError
from search_spaces.common import canonical_dag, dag_edges, dag_expression, parse_dag, prune_dag
from search_spaces.nb201 import NB201_OPS, NB201Space

EDGES = dag_edges(4)
CELLS = [dict(zip(EDGES, ops, strict=True)) for ops in itertools.product(NB201_OPS, repeat=6)]


def test_all_cells_classes_and_representatives() -> None:
    """Every one of the 15,625 cells: 4,930 classes; each representative is pruned, in its own
    class (same expression), canonical itself (idempotent) and valid."""
    space = NB201Space()
    reps = [canonical_dag(4, cell, NB201_OPS) for cell in CELLS]
    assert len({tuple(r.values()) for r in reps}) == 4930
    for cell, rep in zip(CELLS, reps, strict=True):
        assert dag_expression(4, rep) == dag_expression(4, cell)
        assert prune_dag(4, rep) == rep
        assert canonical_dag(4, rep, NB201_OPS) == rep
    genotypes = [space.from_dag(cell) for cell in CELLS[::97]]
    for g in genotypes:
        canonical = space.canonicalize(g)
        space.validate(canonical)
        assert space.canonicalize(canonical) == canonical


def test_nb201_rule_gives_the_benchmark_count_and_function_rule_is_coarser() -> None:
    """NAS-Bench-201's own key yields its published 6,466 classes; every one of its classes and
    every pruning class lies inside one class of the default rule."""
    assert len({dag_expression(4, c, rule="nb201") for c in CELLS}) == 6466
    for partition in (
        lambda c: dag_expression(4, c, rule="nb201"),
        lambda c: tuple(prune_dag(4, c).values()),
    ):
        classes: dict[object, set[str]] = defaultdict(set)
        for cell in CELLS:
            classes[partition(cell)].add(dag_expression(4, cell))
        assert all(len(v) == 1 for v in classes.values())


def _cell(text: str) -> dict[tuple[int, int], str]:
    return parse_dag(text)[1]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # nodes 1 and 2 swapped (no edge between them)
        (
            "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|nor_conv_1x1~1|skip_connect~2|",
            "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",
        ),
        # a skip chain 0 -> 1 -> 3 is the direct skip 0 -> 3
        (
            "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|",
            "|none~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|none~1|skip_connect~2|",
        ),
        # op then skip to the output = the op on the output's edge
        (
            "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|",
            "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|",
        ),
        # a dead edge (node 2 is unreachable) does not matter
        (
            "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|skip_connect~1|nor_conv_3x3~2|",
            "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|",
        ),
    ],
)
def test_equivalent_cells_share_a_canonical_form(a: str, b: str) -> None:
    space = NB201Space()
    ga, gb = space.from_notation(a), space.from_notation(b)
    assert space.canonicalize(ga) == space.canonicalize(gb)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # two convs on the same input are not one conv
        (
            "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|",
            "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
        ),
        # conv(pool(x)) is not pool(conv(x))
        (
            "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|",
            "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|",
        ),
    ],
)
def test_different_cells_stay_apart(a: str, b: str) -> None:
    space = NB201Space()
    assert space.canonicalize(space.from_notation(a)) != space.canonicalize(space.from_notation(b))


def test_representative_computes_the_same_function() -> None:
    """Built with shared op weights (one module per op type), a cell and its representative
    give the same output: the classes only merge cells that are the same expression."""
    from nasplat.registry import OPS, load_builtins
    from search_spaces.nb201 import ALIASES

    load_builtins()
    torch.manual_seed(0)
    modules = {op: OPS.get(ALIASES.get(op, op))(3, 3, 1).eval() for op in NB201_OPS}

    def run(cell: dict[tuple[int, int], str], x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, 4):
            nodes.append(sum(modules[cell[(j, i)]](nodes[i]) for i in range(j)))
        return nodes[-1]

    x = torch.randn(2, 3, 8, 8)
    rng = random.Random(1)
    with torch.no_grad():
        for cell in rng.sample(CELLS, 300):
            rep = canonical_dag(4, cell, NB201_OPS)
            torch.testing.assert_close(run(cell, x), run(rep, x), rtol=1e-5, atol=1e-5)


def test_large_spaces_fall_back_to_relabelling() -> None:
    """A 5-node cell (5**10 cells) is pruned and its middle nodes relabelled, idempotently."""
    space = NB201Space(nodes=5)
    rng = random.Random(0)
    for _ in range(50):
        g = space.sample(rng)
        c = space.canonicalize(g)
        assert space.canonicalize(c) == c
    a = space.from_notation(
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|none~1|none~2|"
        "+|none~0|skip_connect~1|nor_conv_1x1~2|none~3|"
    )
    b = space.from_notation(
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|"
        "+|none~0|nor_conv_1x1~1|skip_connect~2|none~3|"
    )
    assert space.canonicalize(a) == space.canonicalize(b)


def test_unknown_rule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="isomorphism"):
        NB201Space(isomorphism="graph")


def test_cell_classes_come_back_from_the_disk_cache_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search_spaces import common

    monkeypatch.setenv("NASPLAT_CACHE_DIR", str(tmp_path))
    args = (3, ("none", "skip_connect", "nor_conv_3x3"), "none", "skip_connect", "function")
    common._representatives.cache_clear()
    fresh = common._representatives(*args)
    (path,) = tmp_path.glob("cell-classes-*.marshal")
    common._representatives.cache_clear()
    assert common._representatives(*args) == fresh  # read back from the file
    path.write_bytes(path.read_bytes()[:-3] + b"[1,")  # damaged: recomputed and rewritten
    common._representatives.cache_clear()
    assert common._representatives(*args) == fresh
    assert len(marshal.loads(path.read_bytes()[32:])) == 3**3
    common._representatives.cache_clear()
