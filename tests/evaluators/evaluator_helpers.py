"""Shared constants of the evaluator tests (importable: conftest modules are not)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

from evaluators.tabular import table_file
from nasplat.registry import load_builtins

REPO = Path(__file__).resolve().parents[2]
NB201 = "nb201"  # the embedded NAS-Bench-201 table (evaluators/data)
TINY: dict[str, Any] = {
    "layers": 2,
    "widths": [8],
    "ops": ["conv_3x3", "max_pool_3x3"],
    "skip": False,
}

load_builtins()


def nb201_rows() -> list[dict[str, str]]:
    """The embedded NAS-Bench-201 table's rows as text, read with the csv module alone."""
    with gzip.open(table_file(NB201), "rt", newline="") as handle:
        return list(csv.DictReader(handle))


def run_main(*args: str, cwd: Path) -> tuple[int, str, str]:
    """tests/conftest.py's in-process CLI runner (loaded by path: conftest modules share a name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_tests_root_conftest", REPO / "tests" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_main(*args, cwd=cwd)
