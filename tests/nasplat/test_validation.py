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
