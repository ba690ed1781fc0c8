"""Signals stop a search gracefully, and interrupted trials cost no budget.

SIGTERM and SIGHUP are handled as SIGINT: the trial in flight is marked INTERRUPTED, the
command prints one line and exits with 128 + the signal. A study SIGKILLed again and again
during its trials, then resumed, ends with exactly its budget of evaluated architectures: the
interrupted trials stay on record (INTERRUPTED) and are evaluated again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasplat.store import Store
from tests.conftest import TINY_CHAIN, run_cli

SEARCH = [
    "search",
    "--strategy",
    "evolution",
    "--epochs",
    "1",
    "--seed",
    "5",
    "--no-progress",
    "--strategy-opt",
    "population_size=3",
    "--strategy-opt",
    "tournament_size=2",
    *TINY_CHAIN,
]


def states(db: Path) -> list[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return [s for (s,) in conn.execute("SELECT state FROM trials ORDER BY number")]
    except sqlite3.OperationalError:
        return []


def _default_signals() -> None:
    """In the child: SIGINT and SIGHUP as a terminal would deliver them (a background test
    runner may have them ignored, and an ignored signal stays ignored, as with nohup)."""
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "NASPLAT_STORAGE"}
    return subprocess.Popen(
        [sys.executable, "-m", "nasplat", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_default_signals,
    )


def wait_for_a_new_trial(proc: subprocess.Popen, db: Path, rows: int) -> None:
    """Until this process runs a trial of its own: more than ``rows`` trials, the last RUNNING
    (a RUNNING row left by an earlier, killed process is marked INTERRUPTED first)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        now = states(db)
        if len(now) > rows and now[-1] == "RUNNING":
            return
        time.sleep(0.02)
    raise AssertionError(f"no running trial (exit {proc.poll()}): {proc.communicate()[1][-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGTERM, 143, "nasplat: terminated by SIGTERM"),
        (signal.SIGHUP, 129, "nasplat: terminated by SIGHUP"),
        (signal.SIGINT, 130, "nasplat: interrupted"),
    ],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_a_signal_stops_a_search_gracefully(
    tmp_path: Path, signum: int, code: int, line: str
) -> None:
    db = tmp_path / "s.db"
    args = [*SEARCH, "--budget", "50", "--study", "s", "--storage", f"sqlite:///{db}"]
    proc = start(args, tmp_path)
    wait_for_a_new_trial(proc, db, rows=1)  # the second trial
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == line
    assert "Traceback" not in stderr
    now = states(db)
    assert "RUNNING" not in now and now[-1] == "INTERRUPTED", now
    store = Store(f"sqlite:///{db}", create=False)
    try:
        (interrupted,) = store.trials("s", states=["INTERRUPTED"])
        assert interrupted.error.startswith("interrupted")
        assert store.count_trials(store.get_study("s").id) == len(now) - 1  # not counted
    finally:
        store.close()


@pytest.mark.slow
def test_sigkill_again_and_again_still_evaluates_the_whole_budget(tmp_path: Path) -> None:
    budget, kills = 8, 6
    db = tmp_path / "k.db"
    url = f"sqlite:///{db}"
    args = [*SEARCH, "--budget", str(budget), "--study", "k", "--storage", url]
    done_kills = 0
    for round_ in range(kills):
        proc = start([*args, *(["--resume"] if round_ else [])], tmp_path)
        try:
            wait_for_a_new_trial(proc, db, rows=len(states(db)))  # kill during a trial
        except AssertionError:
            if proc.returncode == 0:  # the study finished before this kill could land
                break
            raise
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_kills += 1
    assert done_kills >= 3, "the kills should land during trials"
    resumed = run_cli(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    store = Store(url, create=False)
    try:
        trials = store.trials("k")
        evaluated = [t for t in trials if t.state in ("COMPLETE", "PRUNED", "FAILED")]
        interrupted = [t for t in trials if t.state == "INTERRUPTED"]
        assert len(evaluated) == budget, [t.state for t in trials]
        assert len({t.arch_hash for t in evaluated}) == budget  # distinct architectures
        assert len(interrupted) >= done_kills - 1 and "RUNNING" not in {t.state for t in trials}
        # every interrupted architecture was evaluated again
        assert {t.arch_hash for t in interrupted} <= {t.arch_hash for t in evaluated}
        assert store.count_trials(store.get_study("k").id, tag=None) == budget
    finally:
        store.close()
