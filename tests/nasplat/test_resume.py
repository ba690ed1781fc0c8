"""Resume after a real SIGKILL of the search process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasplat.store import Store
from tests.conftest import TINY_CHAIN, run_cli, run_main

ARGS = [
    "search",
    "--strategy",
    "evolution",
    "--budget",
    "10",
    "--epochs",
    "1",
    "--seed",
    "3",
    "--no-progress",
    "--strategy-opt",
    "population_size=4",
    "--strategy-opt",
    "tournament_size=2",
    *TINY_CHAIN,
]


def finished_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("select count(*) from trials where state != 'RUNNING'").fetchone()[
                0
            ]
    except sqlite3.OperationalError:
        return 0


def complete_genotypes(url: str, study: str) -> list[tuple[str, float]]:
    store = Store(url)
    return [(t.genotype.to_json(), t.value) for t in store.trials(study) if t.state == "COMPLETE"]


@pytest.mark.slow
def test_sigkill_then_resume_continues_the_same_study(tmp_path: Path) -> None:
    reference = run_cli(
        *ARGS, "--study", "ref", "--storage", f"sqlite:///{tmp_path / 'ref.db'}", cwd=tmp_path
    )
    assert reference.returncode == 0, reference.stderr
    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    cmd = [sys.executable, "-m", "nasplat", *ARGS, "--study", "s", "--storage", url]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while finished_count(db) < 5 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = complete_genotypes(url, "s")
    assert 5 <= len(before) < 10, "the kill should land mid-search"

    resumed = run_cli(*ARGS, "--study", "s", "--storage", url, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    store = Store(url)
    trials = store.trials("s")
    assert all(t.state != "RUNNING" for t in trials)
    interrupted = [t for t in trials if t.state == "INTERRUPTED"]
    assert all(t.error.startswith("interrupted") for t in interrupted) and len(interrupted) <= 1
    assert len(trials) == 10 + len(interrupted)  # an interrupted trial costs no budget
    after = complete_genotypes(url, "s")
    assert after[: len(before)] == before  # nothing completed was lost or re-run
    assert len({g for g, _ in after}) == len(after)
    # the restored evolution state makes the resumed run identical to an uninterrupted one
    expected = complete_genotypes(f"sqlite:///{tmp_path / 'ref.db'}", "ref")
    assert after == expected
    state = store.load_checkpoint(store.get_study("s").id)["strategy"]
    assert len(state["population"]) == 4
    assert json.loads(json.dumps(state)) == state


def test_resume_keeps_the_stored_budget_and_budget_is_the_new_total(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    args = [
        "search", "--space", "nb201", "--evaluator", "tabular", "--table", "nb201",
        "--metric", "cifar10_valid_acc", "--study", "b", "--storage", url, "--no-progress",
    ]  # fmt: skip

    def search(*more: str) -> str:
        code, _, err = run_main(*args, *more, cwd=tmp_path)
        assert code == 0, err
        return err

    def trials() -> int:
        return len(Store(url).trials("b"))

    search("--budget", "3")
    assert trials() == 3
    err = search("--resume")  # no --budget: the study's own 3, not the default 20
    assert trials() == 3 and "0 trial(s) run in this session" in err and "(was" not in err
    err = search("--resume", "--budget", "5")  # the new total, not 5 more
    assert trials() == 5 and "study b: budget 5 (was 3)" in err
    assert "2 trial(s) run in this session" in err
