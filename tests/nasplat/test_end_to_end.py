"""The foundation issue's end-to-end search, exactly as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_evolution_search_on_digits_finds_an_architecture_well_above_chance(tmp_path: Path) -> None:
    out = run_cli(
        "search",
        "--space",
        "chain",
        "--strategy",
        "evolution",
        "--budget",
        "20",
        "--epochs",
        "2",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "best trial" in out.stdout and "genotype:" in out.stdout
    trials = json.loads(
        run_cli("trials", "--study", "chain-evolution", "--format", "json", cwd=tmp_path).stdout
    )
    assert len(trials) == 20 and all(t["state"] == "COMPLETE" for t in trials)
    assert len({t["genotype"] for t in trials}) == 20
    best = json.loads(
        run_cli("best", "--study", "chain-evolution", "--format", "json", cwd=tmp_path).stdout
    )
    assert best["value"] > 0.5  # ten classes: chance is 0.1
