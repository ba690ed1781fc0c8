"""Shared test fixtures: tiny spaces, temporary stores, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
# test support (``nasplat_support``: test-only plugins, PostgreSQL and CLI helpers) lives here;
# subprocesses and Ray workers find it through PYTHONPATH, which they inherit
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")) if p
)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist workers share the cores: their subprocesses (CLI searches, examples) train on
    # one thread, as the workers do (_single_thread_torch). A thread per core each oversubscribes
    # the machine and OpenMP's spinning made training 3x slower (a search hit its 600 s timeout).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# small chain networks keep end-to-end searches to about a second per trial
DARTS_V2 = (  # the published DARTS (second order) cell, as the DARTS code prints it
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)

TINY_CHAIN = [
    "--space-opt",
    "layers=2",
    "--space-opt",
    "widths=[8,16]",
    "--space-opt",
    "ops=conv_3x3,max_pool_3x3,sep_conv_3x3,skip_connect",
]


# --- exclusive tests: scripts/test.sh runs the others on two cores, then these one at a time ---
# They start a Ray instance or a PostgreSQL server per process, many processes each, or a browser,
# and some count on timing (trials in flight at once, a driver killed mid-trial, wall time).
EXCLUSIVE_MARKS = ("ray", "postgres", "browser", "serial")
FIXTURE_MARKS = {
    "ray_session": "ray",
    "postgres_url": "postgres",
    "postgres_server_url": "postgres",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--exclusive",
        choices=("include", "skip", "only"),
        default="include",
        help="tests marked ray, postgres, browser or serial: run them too (default), skip them, or "
        "run only them (scripts/test.sh: skip on two cores, then only, serially)",
    )


@pytest.hookimpl(tryfirst=True)  # before -m and -k deselect
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # a test using the fixtures gets the mark, should it lack it
        for fixture in FIXTURE_MARKS.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(FIXTURE_MARKS[fixture])
    which = config.getoption("exclusive")
    if which == "include":
        return
    keep, drop = [], []
    for item in items:
        exclusive = any(item.get_closest_marker(mark) for mark in EXCLUSIVE_MARKS)
        (keep if exclusive == (which == "only") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``nasplat ARGS`` in a subprocess (the real entry point) and capture its output."""
    full_env = {k: v for k, v in os.environ.items() if k != "NASPLAT_STORAGE"}
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "nasplat", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def run_main(*args: str, cwd: Path, env: dict | None = None) -> tuple[int, str, str]:
    """Run the CLI entry point in this process (fast); returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from nasplat.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    old_env = os.environ.pop("NASPLAT_STORAGE", None)
    os.environ.update(env or {})
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        os.chdir(old_cwd)
        for key in env or {}:
            os.environ.pop(key, None)
        if old_env is not None:
            os.environ["NASPLAT_STORAGE"] = old_env
    return code, out.getvalue(), err.getvalue()
