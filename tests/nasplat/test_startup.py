"""Start-up pays only for what a run uses: registering the plugins imports no torch, and the
read-only commands and a table search run without it and without SQLAlchemy's ORM (issue #16)."""

from __future__ import annotations

import importlib
import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import evaluators
import nasplat.ml
import search_spaces.ops
import strategies
from nasplat.errors import NasplatError, UnknownNameError
from nasplat.registry import DATASETS, OPS, PROXIES, STRATEGIES, Deferred, Registry

REPO = Path(__file__).resolve().parents[2]
DECLARATIONS = [
    (OPS, search_spaces.ops.DECLARED),
    (STRATEGIES, strategies.DECLARED),
    (PROXIES, evaluators.DECLARED),
    (DATASETS, nasplat.ml.DECLARED),
]
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@pytest.mark.parametrize(
    ("registry", "declared"), DECLARATIONS, ids=lambda x: getattr(x, "kind", "")
)
def test_each_module_registers_exactly_what_its_package_declares(
    registry: Registry, declared: dict[str, tuple[str, ...]]
) -> None:
    for module, names in declared.items():
        importlib.import_module(module)
        registered = {
            name
            for name in registry.names()
            if getattr(registry.resolve(name), "__module__", None) == module
        }
        assert registered == set(names), module
        assert not any(isinstance(registry._items[name], Deferred) for name in names)


def test_a_declared_entry_is_imported_on_first_use() -> None:
    reg: Registry[object] = Registry("widget", callables=True)
    reg.declare("json", "dumps", "loads")
    stand_in = reg.get("dumps")
    assert isinstance(stand_in, Deferred) and reg.names() == ["dumps", "loads"]
    # the module does not register itself: a clear error, not a silent stand-in
    with pytest.raises(NasplatError, match="did not register"):
        stand_in([1])


def _run(code: str, cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _without_torch(args: list[str], cwd: Path) -> str:
    """Run the CLI in a fresh process; fail if torch or SQLAlchemy's ORM was imported."""
    code = (
        "import sys, io, contextlib\n"
        "from nasplat.cli.main import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        f"        main({args!r})\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "print(buf.getvalue())\n"
        "print('TORCH', 'torch' in sys.modules, 'ORM', 'sqlalchemy.orm' in sys.modules)\n"
    )
    out = _run(code, cwd)
    assert out.rstrip().endswith("TORCH False ORM False"), out
    return out


def test_registering_the_builtins_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from nasplat.registry import SPACES, OPS, DATASETS, load_builtins\n"
        "load_builtins(); SPACES.create('nb201'); SPACES.create('cell'); OPS.get('sep_conv_3x3')\n"
        "DATASETS.get('digits')\n"
        "from nasplat.ml.train_config import TrainConfig; TrainConfig(tta='flip')\n"
        "print('torch' in sys.modules, 'optuna' in sys.modules)"
    )
    assert _run(code, tmp_path).split() == ["False", "False"]


def test_table_search_and_read_commands_run_without_torch(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    rows = ["arch,val"]
    for i, e in enumerate(itertools.product(NB201_OPS, repeat=6)):
        arch = f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"
        rows.append(f"{arch},{(i * 7919) % 10007 / 100.0}")
    table.write_text("\n".join(rows) + "\n")
    url = f"sqlite:///{tmp_path}/s.db"
    out = _without_torch(
        ["search", "--space", "nb201", "--evaluator", "tabular", "--table", str(table),
         "--metric", "val", "--strategy", "random", "--budget", "20", "--no-progress",
         "--storage", url, "--study", "t"],
        tmp_path,
    )  # fmt: skip
    assert "notation: |" in out
    assert "notation: |" in _without_torch(["best", "--study", "t", "--storage", url], tmp_path)
    best = _without_torch(["best", "--study", "t", "--storage", url, "--format", "json"], tmp_path)
    assert json.loads(best.rsplit("TORCH", 1)[0])["notation"].startswith("|")
    assert "t" in _without_torch(["studies", "--storage", url], tmp_path)
    rows_out = _without_torch(
        ["trials", "--study", "t", "--storage", url, "--format", "csv"], tmp_path
    )
    assert sum(line.split(",")[1:2] == ["COMPLETE"] for line in rows_out.splitlines()) == 20


def test_a_stand_in_pickles_and_builds_the_real_op() -> None:
    stand_in = pickle.loads(pickle.dumps(Deferred("op", "conv_3x3", "search_spaces.ops.conv")))
    module = stand_in(4, 4, 1)
    assert type(module).__module__.startswith("search_spaces.ops")
    assert not isinstance(OPS._items["conv_3x3"], Deferred)
    # shipping a declaration to a process that has imported the module keeps the real op
    real = OPS.get("conv_3x3")
    OPS.add("conv_3x3", Deferred("op", "conv_3x3", "search_spaces.ops.conv"), replace=True)
    assert OPS.get("conv_3x3") is real


def test_listing_options_imports_no_torch(tmp_path: Path) -> None:
    for name in ("chain", "darts", "train", "ray"):  # darts: declared, not imported
        out = _without_torch(["list", "options", name, "--format", "json"], tmp_path)
        assert json.loads(out.rsplit("TORCH", 1)[0])


def test_entry_points_are_read_only_when_a_name_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    from nasplat import registry

    things: Registry[object] = Registry("thing")
    things.add("builtin", object())
    reads: list[str] = []

    class Plugin:
        def load(self) -> None:
            things.add("late", object())

    def entry_points(group: str) -> list[Plugin]:
        reads.append(group)
        return [Plugin()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    registry.load_spaces()  # what `nasplat best` loads: no metadata read yet
    things.get("builtin")
    assert reads == []
    assert things.get("late") is not None  # the miss read the entry points once
    with pytest.raises(UnknownNameError):
        things.get("unknown")
    assert reads == ["nasplat.plugins"]
