"""Listings that read right (issue #17): trials show each architecture's readable form next to
its hash, and tables fit the terminal; JSON and CSV keep every column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasplat.genotype import Genotype
from nasplat.registry import SPACES, load_builtins
from tests.conftest import run_main

TABLE_SEARCH = [
    "search", "--space", "nb201", "--strategy", "random", "--evaluator", "tabular",
    "--table", "nb201", "--metric", "cifar10_valid_acc", "--no-progress", "--budget", "3",
    "--study", "t",
]  # fmt: skip


@pytest.fixture(scope="module")
def table_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("listings")
    code, _, err = run_main(*TABLE_SEARCH, cwd=folder)
    assert code == 0, err
    return folder


def trials_rows(folder: Path) -> list[dict]:
    code, out, err = run_main("trials", "--study", "t", "--format", "json", cwd=folder)
    assert code == 0, err
    return json.loads(out)


def test_the_trials_table_shows_the_notation_next_to_the_hash(table_study: Path) -> None:
    rows = trials_rows(table_study)
    code, out, err = run_main("trials", "--study", "t", cwd=table_study, env={"COLUMNS": "250"})
    assert code == 0, err
    space = SPACES.create("nb201")
    for row in rows:
        genotype = Genotype.from_json(row["genotype"])
        line = next(x for x in out.splitlines() if genotype.sha[:10] in x)
        assert space.to_notation(genotype) in line  # whole, when the terminal is wide enough
    assert "architecture" in out and "cifar10_valid_acc" in out
    assert "error" not in out  # a column empty in every row is left out of the table


@pytest.mark.parametrize("width", [80, 120])
def test_tables_fit_the_terminal(table_study: Path, width: int) -> None:
    for command in (["trials", "--study", "t"], ["studies"], ["list", "evaluators"]):
        code, out, err = run_main(*command, cwd=table_study, env={"COLUMNS": str(width)})
        assert code == 0, err
        assert max(len(line) for line in out.splitlines()) <= width, (command, out)
    code, out, _ = run_main("trials", "--study", "t", cwd=table_study, env={"COLUMNS": "120"})
    assert "…" in out and "|" in out  # the notation shortened, not wrapped over lines
    assert len(out.splitlines()) == 3 + 3 + 1  # header (3 lines), one line per trial, bottom


def test_json_and_csv_keep_every_column(table_study: Path) -> None:
    row = trials_rows(table_study)[0]
    expected = ["number", "state", "cifar10_valid_acc", "params", "seconds", "tag", "worker"]
    assert list(row) == [*expected, "error", "genotype", "metrics", "budget"]
    assert row["metrics"]["val_acc"] == row["cifar10_valid_acc"] / 100
    code, out, _ = run_main("trials", "--study", "t", "--format", "csv", cwd=table_study)
    assert out.splitlines()[0] == ",".join([*expected, "error", "genotype", "metrics", "budget"])


def test_a_chain_architecture_reads_layer_by_layer() -> None:
    load_builtins()
    space = SPACES.create("chain", layers=2, widths=[16, 32], ops=["conv_3x3", "max_pool_3x3"])
    genotype = space.genotype(
        {"layer0.op": "conv_3x3", "layer0.width": 16, "layer0.skip": True,
         "layer1.op": "max_pool_3x3", "layer1.width": 32, "layer1.skip": False}
    )  # fmt: skip
    assert space.summary(genotype) == "conv_3x3 ×16 +skip | max_pool_3x3 ×32"
