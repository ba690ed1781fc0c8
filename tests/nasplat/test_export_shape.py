"""Export rebuilds the network a trial trained: the study's shape at the trial's budget."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tests.conftest import TINY_CHAIN, run_cli


def search_and_export(tmp_path: Path, *flags: str) -> Path:
    out = run_cli("search", "--space", "chain", "--strategy", "random", "--budget", "2", "--epochs", "1",
                  "--study", "s", "--no-progress", *TINY_CHAIN, *flags, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    out = run_cli("export", "--study", "s", "--out", "out", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return tmp_path / "out"


def check_rebuild(folder: Path, in_channels: int, size: int, classes: int) -> None:
    import torch

    import nasplat

    model = nasplat.build(str(folder / "genotype.json"))
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(folder / "model.ts"))
    x = torch.randn(3, in_channels, size, size)
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (3, classes)
        assert torch.allclose(logits, scripted(x), atol=1e-5)


@pytest.mark.slow
def test_export_of_a_width_mult_search_rebuilds_at_that_width(tmp_path: Path) -> None:
    folder = search_and_export(tmp_path, "--width-mult", "0.5")
    shape = json.loads((folder / "genotype.json").read_text())["shape"]
    assert shape == {"in_channels": 1, "input_size": 8, "num_classes": 10, "width_mult": 0.5}
    check_rebuild(folder, 1, 8, 10)


@pytest.mark.slow
def test_build_of_an_exported_synthetic_study_restores_its_shape(tmp_path: Path) -> None:
    folder = search_and_export(tmp_path, "--dataset", "synthetic")
    shape = json.loads((folder / "genotype.json").read_text())["shape"]
    assert shape == {"in_channels": 3, "input_size": 8, "num_classes": 4, "width_mult": 1.0}
    check_rebuild(folder, 3, 8, 4)
