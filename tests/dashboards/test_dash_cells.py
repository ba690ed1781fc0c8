"""Genotypes drawn as graphs: chain, DARTS cell, NAS-Bench-201, hierarchical, and the fallback."""

from __future__ import annotations

import random

import pytest

from dashboards.cells import genotype_graph
from nasplat.genotype import Genotype


def test_chain_is_a_line_with_op_labels_and_skip_arcs() -> None:
    genotype = Genotype(
        "chain",
        {
            "layer0.op": "conv_3x3",
            "layer0.width": 16,
            "layer0.skip": False,
            "layer1.op": "max_pool_3x3",
            "layer1.width": 32,
            "layer1.skip": True,
        },
    )
    (chain,) = genotype_graph(genotype).components
    assert [n.id for n in chain.nodes] == ["in", "L0", "L1"]
    assert [(e.source, e.target, e.label) for e in chain.edges if e.style == "op"] == [
        ("in", "L0", "conv_3x3 ×16"),
        ("L0", "L1", "max_pool_3x3 ×32"),
    ]
    skips = [e for e in chain.edges if e.style == "skip"]
    assert [(e.source, e.target) for e in skips] == [("L0", "L1")] and skips[0].bend


def darts_genotype() -> Genotype:
    values: dict[str, object] = {}
    for kind in ("normal", "reduce"):
        for j in (2, 3):
            values[f"{kind}.n{j}.in0"] = 0
            values[f"{kind}.n{j}.op0"] = "sep_conv_3x3"
            values[f"{kind}.n{j}.in1"] = j - 1
            values[f"{kind}.n{j}.op1"] = "skip_connect" if kind == "normal" else "max_pool_3x3"
    return Genotype("cell", values)


def test_darts_cells_have_inputs_nodes_and_concat_output() -> None:
    graph = genotype_graph(darts_genotype())
    assert [c.title for c in graph.components] == ["normal cell", "reduce cell"]
    normal = graph.components[0]
    assert [n.label for n in normal.nodes] == ["c_{k-2}", "c_{k-1}", "2", "3", "c_{k}"]
    ops = [(e.source, e.target, e.label) for e in normal.edges if e.style == "op"]
    assert ops == [
        ("0", "2", "sep_conv_3x3"),
        ("1", "2", "skip_connect"),
        ("0", "3", "sep_conv_3x3"),
        ("2", "3", "skip_connect"),
    ]
    assert [(e.source, e.target) for e in normal.edges if e.style == "concat"] == [
        ("2", "out"),
        ("3", "out"),
    ]


def test_nb201_leaves_out_none_edges() -> None:
    ops = {
        "edge.1.0": "nor_conv_3x3",
        "edge.2.0": "none",
        "edge.2.1": "skip_connect",
        "edge.3.0": "avg_pool_3x3",
        "edge.3.1": "none",
        "edge.3.2": "nor_conv_1x1",
    }
    (cell,) = genotype_graph(Genotype("nb201", ops)).components
    assert len(cell.nodes) == 4
    assert sorted((e.source, e.target, e.label) for e in cell.edges) == [
        ("0", "1", "nor_conv_3x3"),
        ("0", "3", "avg_pool_3x3"),
        ("1", "2", "skip_connect"),
        ("2", "3", "nor_conv_1x1"),
    ]
    positions = {(n.x, n.y) for n in cell.nodes}
    assert len(positions) == 4


def test_hierarchical_draws_the_cell_and_the_motifs_it_uses() -> None:
    values: dict[str, object] = {}
    for m in ("m0", "m1", "m2"):
        for j in range(1, 3):
            for i in range(j):
                values[f"motif2.{m}.e{j}_{i}"] = "conv_1x1" if m != "m2" else "none"
    for j in range(1, 4):
        for i in range(j):
            values[f"motif3.e{j}_{i}"] = (
                "m0" if i == j - 1 else ("m1" if (j, i) == (2, 0) else "none")
            )
    graph = genotype_graph(Genotype("hierarchical", values))
    assert [c.title for c in graph.components] == [
        "cell (level 3)",
        "motif m0 (level 2)",
        "motif m1 (level 2)",
    ]
    assert {e.label for e in graph.components[0].edges} == {"m0", "m1"}


def test_unknown_space_falls_back_to_a_decisions_table() -> None:
    graph = genotype_graph({"space": "mystery", "decisions": {"a": 1, "b": "x"}})
    assert graph.components == () and graph.table == (("a", "1"), ("b", "x"))
    broken = genotype_graph(Genotype("nb201", {"something": "else"}))
    assert broken.table == (("something", "else"),)


@pytest.mark.parametrize("space", ["chain", "cell", "nb201", "hierarchical"])
def test_real_spaces_decisions_are_drawn(space: str) -> None:
    """Guards against drift between the spaces' decision names and the drawing."""
    import importlib

    from nasplat.registry import SPACES

    try:
        importlib.import_module(f"search_spaces.{space}")
    except ImportError as exc:
        pytest.skip(f"search_spaces.{space} cannot be imported here: {exc}")
    instance = SPACES.get(space)()
    genotype = instance.canonicalize(instance.sample(random.Random(0)))
    graph = genotype_graph(genotype)
    assert graph.components, f"{space} fell back to the decisions table"
    labels = {e.label for c in graph.components for e in c.edges if e.style == "op"}
    chosen = {str(v) for v in genotype.values()}
    assert labels and all(any(c in label for c in chosen) for label in labels)
