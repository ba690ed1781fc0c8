"""The CLI searches a user's model space by ``package.module:Class``, DARTS included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nasplat_support import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_darts_on_a_module_class_space_then_export_and_rebuild(tmp_path):
    env = {"PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ["PYTHONPATH"]])}
    store = ["--storage", f"sqlite:///{tmp_path}/s.db"]
    done = run_cli(
        "search", "--space", "cnn_space:Net", "--space-opt", "in_channels=1",
        "--space-opt", "blocks=2", "--strategy", "darts", "--order", "1",
        "--strategy-opt", "epochs=1", "--strategy-opt", "max_batches=3",
        "--retrain-epochs", "1", "--no-progress", *store,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "study Net-darts" in done.stderr  # the class names the study
    listed = run_cli("trials", "--study", "Net-darts", "--format", "json", *store, cwd=tmp_path)
    trials = json.loads(listed.stdout)
    assert [t["tag"] for t in trials] == ["supernet", "retrain"]
    out = tmp_path / "out"
    done = run_cli(
        "export", "--study", "Net-darts", "--out", str(out), *store, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = tmp_path / "report.html"
    done = run_cli(
        "dashboard", "--study", "Net-darts", "--out", str(report), *store, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "op0" in report.read_text()  # the decisions table of the best architecture
    exported = json.loads((out / "genotype.json").read_text())
    assert exported["space"] == "cnn_space:Net"
    assert set(exported["decisions"]) == {"width0", "op0", "width1", "op1"}
    rebuild = (
        "import nasplat, torch; m = nasplat.build('genotype.json').eval(); "
        "m.load_state_dict(torch.load('weights.pt', weights_only=True)); "
        "print(tuple(m(torch.zeros(2, 1, 8, 8)).shape))"
    )
    done = subprocess.run(
        [sys.executable, "-c", rebuild], cwd=out, capture_output=True, text=True,
        env={**os.environ, **env},
    )  # fmt: skip
    assert done.stdout.strip() == "(2, 10)", done.stderr[-2000:]


def test_an_unknown_module_space_is_one_line_and_exit_2(tmp_path):
    done = run_cli("search", "--space", "no_such_module:Net", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "nasplat: error: cannot import space 'no_such_module:Net': No module named 'no_such_module'"
    ]
