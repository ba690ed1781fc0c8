"""Shared constants of the evaluator tests (importable: conftest modules are not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nasplat.registry import load_builtins

REPO = Path(__file__).resolve().parents[2]
NB201_CSV = REPO.parent / "shared" / "data" / "nb201" / "nb201_12epoch.csv"
TINY: dict[str, Any] = {
    "layers": 2,
    "widths": [8],
    "ops": ["conv_3x3", "max_pool_3x3"],
    "skip": False,
}
needs_nb201 = pytest.mark.skipif(not NB201_CSV.exists(), reason=f"{NB201_CSV} is absent")

load_builtins()


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
