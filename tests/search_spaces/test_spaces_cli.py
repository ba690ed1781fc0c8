"""Each space end to end from the command line: a short search on digits, notation export,
and training a published DARTS cell given in its notation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nasplat
from tests.conftest import DARTS_V2, run_cli

SMALL = {
    "cell": ["--space-opt", "layers=2", "--space-opt", "channels=4"],
    "nb201": ["--space-opt", "cells_per_stage=1", "--space-opt", "channels=4"],
    "hierarchical": ["--space-opt", "channels=4", "--space-opt", "motifs=3"],
}


@pytest.mark.slow
@pytest.mark.parametrize("space", ["cell", "nb201", "hierarchical"])
def test_short_evolution_search_on_digits(tmp_path: Path, space: str) -> None:
    out = run_cli("search", "--space", space, "--strategy", "evolution", "--budget", "3", "--epochs", "1",
                  "--population-size", "2", "--tournament-size", "2", "--no-progress", *SMALL[space], cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(
        run_cli("trials", "--study", f"{space}-evolution", "--format", "json", cwd=tmp_path).stdout
    )
    assert len(rows) == 3 and all(r["state"] == "COMPLETE" for r in rows)
    best = json.loads(
        run_cli("best", "--study", f"{space}-evolution", "--format", "json", cwd=tmp_path).stdout
    )
    space_obj = nasplat.get_space(space, **best["space_options"])
    assert space_obj.to_notation(space_obj.from_notation(best["notation"])) == best["notation"]
    if space in ("cell", "nb201"):
        fmt = {"cell": "darts", "nb201": "nb201"}[space]
        out = run_cli(
            "export", "--study", f"{space}-evolution", "--out", "x", "--format", fmt, cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "x" / f"genotype.{fmt}.txt").read_text().strip() == best["notation"]


@pytest.mark.slow
def test_train_a_published_darts_cell_from_its_notation(tmp_path: Path) -> None:
    out = run_cli("train", "--space", "cell", "--genotype", DARTS_V2, "--epochs", "1",
                  "--space-opt", "layers=2", "--space-opt", "channels=4", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(
        run_cli("trials", "--study", "train-cell", "--format", "json", cwd=tmp_path).stdout
    )
    assert len(rows) == 1 and rows[0]["state"] == "COMPLETE"
    assert "sep_conv_3x3" in out.stdout and "notation: Genotype(normal=" in out.stdout
