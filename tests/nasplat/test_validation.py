"""Everything is validated before the first write: a typo in any option of the space, strategy,
evaluator or executor, or an objective the evaluator does not report, is one line, exit 2, and
a store that is byte for byte what it was (no empty study left behind)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import TINY_CHAIN, run_cli, run_main


def store_bytes(folder: Path) -> dict[str, str]:
    """A digest of every file of the SQLite store (database, WAL and shared memory)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.glob("nasplat.db*"))
    }


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("validation")
    args = ["search", "--budget", "2", "--epochs", "1", "--study", "s", "--no-progress"]
    out = run_cli(*args, *TINY_CHAIN, cwd=folder)
    assert out.returncode == 0, out.stderr
    return folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy-opt", "bogus=1"], "strategy 'evolution'"),
        (["--strategy", "random", "--strategy-opt", "bogus=1"], "bogus"),
        (["--executor-opt", "bogus=1"], "executor 'local'"),
        (["--workers", "2"], "executor 'local'"),
        (["--executor", "ray", "--executor-opt", "bogus=1"], "executor 'ray'"),
        (["--space-opt", "bogus=1"], "space 'chain'"),
        (["--space-opt", "layers=abc"], "space 'chain'"),
        (["--evaluator-opt", "bogus=1"], "evaluator 'train'"),
        (["--evaluator", "tabular", "--evaluator-opt", "bogus=1"], "evaluator 'tabular'"),
        (["--objective", "nosuchmetric"], "objective 'nosuchmetric' is not a metric"),
        (["--objective", "val_acc,nosuchmetric"], "objective 'nosuchmetric' is not a metric"),
        (["--direction", "upward"], "direction must be maximize or minimize"),
        (["--width-mult", "-1"], "width_mult"),
        (["--data-fraction", "0"], "data_fraction"),
        (["--population-size", "0"], "population"),
        (["--device", "quantum"], "invalid device 'quantum'"),
        (["--device", "cuda:7"], "device cuda:7 requested"),  # no such GPU here
        (
            ["--evaluator", "tabular", "--table", "nb201", "--metric", "cifar10_valid_acc"],
            "does not hold architectures of space 'chain'",
        ),
    ],
)
def test_bad_options_leave_the_store_byte_identical(
    study_folder: Path, args: list[str], message: str
) -> None:
    before = store_bytes(study_folder)
    code, _, stderr = run_main("search", "--epochs", "1", *TINY_CHAIN, *args, cwd=study_folder)
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("nasplat: error:"), stderr
    assert message in lines[0], lines[0]
    assert store_bytes(study_folder) == before


def test_the_next_study_name_is_not_used_up_by_a_rejected_search(study_folder: Path) -> None:
    code, _, _ = run_main("search", "--strategy-opt", "bogus=1", cwd=study_folder)
    assert code == 2
    out = run_cli("studies", "--format", "csv", cwd=study_folder)
    assert [line.split(",")[0] for line in out.stdout.splitlines()[1:]] == ["s"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"data_fraction": "half"}', "budget data_fraction must be a number, got 'half'"),
        ('{"epochs": 1.5}', "budget epochs must be a whole number, got 1.5"),
        ('{"seed": "abc"}', "seed must be an integer, got 'abc'"),
    ],
)
def test_config_values_of_the_wrong_type_are_named(
    study_folder: Path, config: str, message: str
) -> None:
    before = store_bytes(study_folder)
    path = study_folder / "bad-config.json"
    path.write_text(config)
    code, _, stderr = run_main("search", "--config", str(path), cwd=study_folder)
    assert code == 2 and stderr.strip().splitlines() == [f"nasplat: error: {message}"], stderr
    assert store_bytes(study_folder) == before


def test_a_genotype_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "genotype.json"
    path.write_bytes(b"\xff\xfe{")
    code, _, stderr = run_main("train", "--genotype", str(path), cwd=tmp_path)
    assert code == 2 and "is not UTF-8 text" in stderr and len(stderr.strip().splitlines()) == 1


def test_a_search_rejected_on_a_fresh_folder_creates_no_store(tmp_path: Path) -> None:
    for args in (["--space", "nosuch:Space"], ["--population-size", "0"], ["--resume"]):
        code, _, stderr = run_main("search", *args, cwd=tmp_path)
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert list(tmp_path.iterdir()) == []
