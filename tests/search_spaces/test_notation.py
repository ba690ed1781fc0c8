"""The field's notations: DARTS genotypes, NAS-Bench-201 strings, hierarchical motif strings."""

from __future__ import annotations

import random

import pytest
import torch

import search_spaces.ops  # noqa: F401  (registers the ops)
from evaluators.tabular import BenchmarkTable
from nasplat.errors import InvalidGenotypeError
from search_spaces.cell import CellSpace, parse_darts
from search_spaces.common import format_dag, parse_dag, prune_dag
from search_spaces.hierarchical import HierarchicalSpace
from search_spaces.nb201 import NB201Space

DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
)
NB201_EXAMPLE = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


def test_darts_v2_parses_builds_and_round_trips() -> None:
    space = CellSpace(channels=4, layers=3)
    genotype = space.from_notation(DARTS_V2)
    assert genotype["normal.n5.op1"] == "dil_conv_3x3" and genotype["normal.n5.in1"] == 2
    assert genotype["reduce.n4.in0"] == 0 and genotype["reduce.n4.op1"] == "skip_connect"
    text = space.to_notation(genotype)
    assert text == DARTS_V2.replace("range(2, 6)", "[2, 3, 4, 5]")
    assert space.from_notation(text) == genotype
    assert space.to_notation(space.from_notation(text)) == text
    net = space.build(genotype).eval()
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_darts_parser_accepts_variants() -> None:
    fields = parse_darts(
        'Genotype( normal = [ ("sep_conv_3x3" , 0) ,("skip_connect",1), ], normal_concat=[2],\n'
        " reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=range(2,3) )"
    )
    assert fields["normal"] == [("sep_conv_3x3", 0), ("skip_connect", 1)]
    assert fields["normal_concat"] == fields["reduce_concat"] == [2]
    space = CellSpace(nodes=1)
    assert (
        space.from_notation(
            "normal=[('sep_conv_3x3', 0), ('skip_connect', 1)], normal_concat=[2], "
            "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2]"
        )["normal.n2.op0"]
        == "sep_conv_3x3"
    )


@pytest.mark.parametrize(
    "text,match",
    [
        ("Genotype(normal=__import__('os').system('true'))", "DARTS"),
        (DARTS_V2.replace("('sep_conv_3x3', 0), ", "", 1), r"normal has 7"),
        (DARTS_V2.replace("normal_concat=range(2, 6)", "normal_concat=[2, 3]"), "normal_concat"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 9)"), r"normal\.n5\.in1"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "('conv_9x9', 2)"), r"normal\.n5\.op1"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "('none', 2)"), r"normal\.n5\.op1"),
        (DARTS_V2.replace("reduce_concat", "other_concat"), "fields"),
        (DARTS_V2 + " junk", "DARTS"),
        (
            "Genotype(normal=[('a', 0)] extra, normal_concat=[2], reduce=[], reduce_concat=[2])",
            "unreadable",
        ),
    ],
)
def test_darts_bad_notation(text: str, match: str) -> None:
    with pytest.raises(InvalidGenotypeError, match=match):
        CellSpace().from_notation(text)


def test_nb201_string_round_trip_exact() -> None:
    space = NB201Space()
    genotype = space.from_notation(NB201_EXAMPLE)
    assert genotype["edge.1.0"] == "nor_conv_3x3"
    assert [genotype[f"edge.3.{i}"] for i in range(3)] == ["skip_connect", "none", "avg_pool_3x3"]
    assert space.to_notation(genotype) == NB201_EXAMPLE
    assert list(genotype) == [
        "edge.1.0",
        "edge.2.0",
        "edge.2.1",
        "edge.3.0",
        "edge.3.1",
        "edge.3.2",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "|nor_conv_3x3~0|+|none~1|skip_connect~0|+|skip_connect~0|none~1|avg_pool_3x3~2|",  # order
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|",  # too few nodes
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|conv_9x9~2|",  # op
        "nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|+",
    ],
)
def test_nb201_bad_strings(text: str) -> None:
    with pytest.raises(InvalidGenotypeError):
        NB201Space().from_notation(text)


def test_dag_helpers() -> None:
    n, dag = parse_dag(NB201_EXAMPLE)
    assert n == 4 and format_dag(n, dag) == NB201_EXAMPLE
    pruned = prune_dag(n, dag)
    assert pruned[(1, 0)] == "none" and pruned[(3, 2)] == "avg_pool_3x3"
    assert prune_dag(n, pruned) == pruned


def test_nb201_table_canonical_classes() -> None:
    """All 15,625 cells parse, round-trip, and fall into 4,930 canonical classes (6,466 with
    NAS-Bench-201's own rule, 9,445 when only dead edges are pruned)."""
    space = NB201Space()
    archs = BenchmarkTable.load("nb201").archs  # the embedded table
    assert len(set(archs)) == 15625
    genotypes = [space.from_notation(a) for a in archs]
    assert all(space.to_notation(g) == a for g, a in zip(genotypes, archs, strict=True))
    assert len({space.canonicalize(g).sha for g in genotypes}) == 4930
    for rule, count in (("nb201", 6466), ("prune", 9445)):
        other = NB201Space(isomorphism=rule)
        assert len({other.canonicalize(g).sha for g in genotypes}) == count


def test_hierarchical_notation() -> None:
    space = HierarchicalSpace(motifs=2, motif_nodes=3, top_nodes=3)
    text = (
        "m0=|conv_1x1~0|+|none~0|sep_conv_3x3~1|;m1=|skip_connect~0|+|max_pool_3x3~0|none~1|;"
        "top=|m1~0|+|skip_connect~0|m0~1|"
    )
    genotype = space.from_notation(text)
    assert genotype["motif2.m0.e2_1"] == "sep_conv_3x3" and genotype["motif3.e2_1"] == "m0"
    assert space.to_notation(genotype) == text
    for bad in (
        text.replace("m1~0", "m7~0"),
        text.replace(";top", ";root"),
        text.replace("m1=", "m1:"),
    ):
        with pytest.raises(InvalidGenotypeError):
            space.from_notation(bad)
    rng = random.Random(0)
    sample = space.sample(rng)
    assert space.from_notation(space.to_notation(sample)) == sample
