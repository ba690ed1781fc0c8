"""The command line as a user runs it: real subprocesses, real exit codes."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import TINY_CHAIN, run_cli, run_main


def db_snapshot(path: Path) -> list:
    with sqlite3.connect(path) as conn:
        return conn.execute("select id, state, value from trials order by id").fetchall()


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("cli")
    out = run_cli(
        "search",
        "--budget",
        "3",
        "--epochs",
        "1",
        "--study",
        "s",
        "--no-progress",
        *TINY_CHAIN,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    return tmp_path


def test_search_writes_sqlite_in_the_working_folder_and_prints_best(small_study: Path) -> None:
    assert (small_study / "nasplat.db").exists()
    out = run_cli("best", "--study", "s", "--format", "json", cwd=small_study)
    best = json.loads(out.stdout)
    assert best["genotype"]["space"] == "chain" and 0 <= best["value"] <= 1
    assert best["metrics"]["val_acc"] == best["value"] and best["budget"]["epochs"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--space", "nope"], "unknown space 'nope'; known:"),
        (["search", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["search", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["search", "--evaluator", "nope"], "unknown evaluator 'nope'"),
        (["search", "--dataset", "fashion-mnist", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["search", "--storage", "sqlite:////no/such/dir/x.db"], "cannot open storage"),
        (["search", "--storage", "postgresql+psycopg://u:p@127.0.0.1:9/db"], "cannot open storage"),
        (["search", "--storage", "garbage"], "bad storage URL"),
        (["search", "--study", "s"], "already exists"),
        (["search", "--config", "missing.yaml"], "config file not found"),
        (["search", "--budget", "many"], "not a valid integer"),
        (
            ["train", "--genotype", '{"space": "chain", "decisions": {"layer0.op": "conv_3x3"}}'],
            "is missing",
        ),
        (["train", "--genotype", "{not json"], "malformed genotype JSON"),
        (["train", "--genotype", "missing.json"], "genotype file not found"),
        (["best", "--study", "nope"], "no study 'nope'"),
        (["list", "gizmos"], "Invalid value"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_the_store_untouched(
    small_study: Path, args: list, message: str
) -> None:
    before = db_snapshot(small_study / "nasplat.db")
    code, _, stderr = run_main(*args, cwd=small_study)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasplat: error:") and message in lines[0], (
        stderr
    )
    assert db_snapshot(small_study / "nasplat.db") == before


def test_bad_input_in_a_real_process_has_no_traceback(small_study: Path) -> None:
    for args in (["search", "--space", "nope"], ["train", "--genotype", "{not json"]):
        out = run_cli(*args, cwd=small_study, timeout=120)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("nasplat: error:")


def test_malformed_config_file_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("budget: [unclosed\n")
    (tmp_path / "d.yaml").write_text("budgett: 3\n")
    for name, message in (
        ("c.yaml", "malformed config file"),
        ("d.yaml", "unknown config key(s): budgett"),
    ):
        out = run_cli("search", "--config", name, cwd=tmp_path)
        assert out.returncode == 2 and message in out.stderr


def test_config_file_sets_the_search_and_flags_override_it(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "study: fromfile\nbudget: 5\nepochs: 1\nstrategy: random\n"
        "space_options: {layers: 1, widths: [8], ops: [conv_3x3, max_pool_3x3]}\n"
    )
    out = run_cli("search", "--config", "c.yaml", "--budget", "2", "--no-progress", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = json.loads(
        run_cli("trials", "--study", "fromfile", "--format", "json", cwd=tmp_path).stdout
    )
    assert len(rows) == 2 and all(r["budget"]["epochs"] == 1 for r in rows)


def test_listings_in_every_format(small_study: Path) -> None:
    rows = json.loads(run_cli("trials", "--study", "s", "--format", "json", cwd=small_study).stdout)
    assert [r["number"] for r in rows] == [0, 1, 2] and all(r["state"] == "COMPLETE" for r in rows)
    table = list(
        csv.DictReader(
            io.StringIO(
                run_cli("trials", "--study", "s", "--format", "csv", cwd=small_study).stdout
            )
        )
    )
    assert [int(r["number"]) for r in table] == [0, 1, 2]
    studies = json.loads(run_cli("studies", "--format", "json", cwd=small_study).stdout)
    assert studies[0]["name"] == "s" and studies[0]["complete"] == 3
    ops = json.loads(run_cli("list", "ops", "--format", "json").stdout)
    assert {"name": "conv_3x3", "family": "conv"}.items() <= ops[
        [o["name"] for o in ops].index("conv_3x3")
    ].items()
    assert "evolution" in run_cli("list", "strategies").stdout


def test_storage_from_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    out = run_cli(
        "search",
        "--budget",
        "1",
        "--epochs",
        "0",
        "--study",
        "e",
        "--no-progress",
        *TINY_CHAIN,
        cwd=tmp_path,
        env={"NASPLAT_STORAGE": url},
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "env.db").exists() and not (tmp_path / "nasplat.db").exists()


def test_export_rebuilds_the_trained_network(small_study: Path) -> None:
    import warnings

    import torch

    import nasplat

    out = run_cli("export", "--study", "s", "--out", "exported", cwd=small_study)
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr  # the trace's TracerWarnings are captured, not printed
    assert "TorchScript model checked" in out.stderr
    folder = small_study / "exported"
    genotype = (folder / "genotype.json").read_text()
    model = nasplat.build(genotype)  # the study's shape, stored in genotype.json
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(folder / "model.ts"))
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), scripted(x), atol=1e-5)


def test_train_stores_one_trial(small_study: Path) -> None:
    best = json.loads(run_cli("best", "--study", "s", "--format", "json", cwd=small_study).stdout)
    (small_study / "g.json").write_text(
        json.dumps({**best["genotype"], "space_options": best["space_options"]})
    )
    out = run_cli("train", "--genotype", "g.json", "--epochs", "1", cwd=small_study)
    assert out.returncode == 0, out.stderr
    rows = json.loads(
        run_cli("trials", "--study", "train-chain", "--format", "json", cwd=small_study).stdout
    )
    assert len(rows) == 1 and rows[0]["state"] == "COMPLETE" and rows[0]["tag"] == "manual"
    assert json.loads(rows[0]["genotype"]) == best["genotype"]
