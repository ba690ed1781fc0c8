"""A space from a third-party package works everywhere, registered only through the
``nasplat.plugins`` entry point: search, export (genotype, notation, weights, TorchScript),
train from its notation, best, and the dashboard report with its drawing and op slots.

The package (``tests_plugin_pkg``, next to this file) is "installed" without pip: a temporary
folder holds a ``*.dist-info`` with ``METADATA`` and ``entry_points.txt``, and both folders go on
the ``PYTHONPATH`` of real ``python -m nasplat`` subprocesses.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

PLUGIN_ROOT = Path(__file__).resolve().parent  # holds tests_plugin_pkg/


def install_plugin(site: Path) -> dict[str, str]:
    """A dist-info declaring the entry point; the environment that makes it visible."""
    info = site / "nasplat_myspace-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nasplat-myspace\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nasplat.plugins]\nmyspace = tests_plugin_pkg.module\n")
    path = [str(site), str(PLUGIN_ROOT), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in path if p)}


@pytest.mark.slow
def test_a_space_registered_by_entry_point_works_end_to_end(tmp_path: Path) -> None:
    import torch

    env = install_plugin(tmp_path / "site")
    work = tmp_path / "work"
    work.mkdir()

    def cli(*args: str) -> str:
        out = run_cli(*args, cwd=work, env=env)
        assert out.returncode == 0, f"nasplat {' '.join(args)}:\n{out.stderr}"
        return out.stdout

    assert "myspace" not in run_cli("list", "spaces", cwd=work).stdout  # only via the plugin
    assert "myspace" in cli("list", "spaces")
    cli("search", "--space", "myspace", "--strategy", "random", "--budget", "3", "--epochs", "1",
        "--dataset", "digits", "--study", "p", "--no-progress")  # fmt: skip
    rows = json.loads(cli("trials", "--study", "p", "--format", "json"))
    assert len(rows) == 3 and all(r["state"] == "COMPLETE" for r in rows)

    # best: its notation
    best = json.loads(cli("best", "--study", "p", "--format", "json"))
    ops = [best["genotype"]["decisions"][f"block{i}.op"] for i in range(2)]
    assert best["notation"] == "my:" + ">".join(ops)

    # export: everything, then the space's own notation format (a --format choice it declared)
    written = cli("export", "--study", "p", "--out", "out").split()
    folder = work / "out"
    names = {Path(p).name for p in written}
    assert {"genotype.json", "genotype.myspace.txt", "weights.pt", "model.ts"} <= names
    assert (folder / "genotype.myspace.txt").read_text().strip() == best["notation"]
    cli("export", "--study", "p", "--out", "notation", "--format", "mynote")
    assert (work / "notation" / "genotype.mynote.txt").read_text().strip() == best["notation"]
    bad = run_cli("export", "--study", "p", "--out", "x", "--format", "darts", cwd=work, env=env)
    assert bad.returncode == 2 and "does not apply to space 'myspace'" in bad.stderr
    exported = json.loads((folder / "genotype.json").read_text())
    assert exported["shape"] == {
        "in_channels": 1,
        "input_size": 8,
        "num_classes": 10,
        "width_mult": 1.0,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(folder / "model.ts"))
    assert scripted(torch.randn(2, 1, 8, 8)).shape == (2, 10)

    # train from its notation: the space is found by asking the registered spaces
    out = cli("train", "--genotype", "my:conv_3x3>skip_connect", "--epochs", "1")
    assert "notation: my:conv_3x3>skip_connect" in out
    rows = json.loads(cli("trials", "--study", "train-myspace", "--format", "json"))
    assert len(rows) == 1 and rows[0]["state"] == "COMPLETE"

    # dashboard: the space's drawing and its op slots are in the report
    cli("dashboard", "--study", "p", "--out", "report.html")
    html = (work / "report.html").read_text()
    assert "myspace blocks" in html  # the drawing's component
    assert f"[{ops[0]}]" in html  # its edge labels
    assert "my block #0" in html  # its op-frequency slots
