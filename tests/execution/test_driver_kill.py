"""The driver of a Ray search is SIGKILLed mid-search; ``--resume`` finishes the study and
nothing completed is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from nasplat_support import CLI, known_value, run_cli

from nasplat.store import Store

BUDGET = 24


def search_args(url: str) -> list[str]:
    return [
        "search",
        "--space", "chain",
        "--strategy", "evolution",
        "--evaluator", "known-function",
        "--evaluator-opt", "sleep=0.4",
        "--executor", "ray",
        "--workers", "2",
        "--budget", str(BUDGET),
        "--study", "killed",
        "--storage", url,
        "--no-progress",
    ]  # fmt: skip


def wait_for_complete(store: Store, proc: subprocess.Popen[bytes], count: int) -> None:
    """Wait until ``count`` trials are complete and another is running, read in one query:
    trials end in pairs, so right after a pair ends no trial may be running yet."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the search ended before it could be killed"
        if store.has_study("killed"):
            states = [t.state for t in store.trials(store.get_study("killed").id)]
            if states.count("COMPLETE") >= count and "RUNNING" in states:
                return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} trials completed with one running in 300 s")


@pytest.mark.slow
@pytest.mark.ray
def test_resume_after_the_driver_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    with open(tmp_path / "driver.log", "wb") as log:
        proc = subprocess.Popen(
            [*CLI, *search_args(url)],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ray's helpers are cleaned up below
        )
        try:
            wait_for_complete(store, proc, 6)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # Ray helpers the driver left behind
            except ProcessLookupError:
                pass
    study = store.get_study("killed")
    before = {t.number: t for t in store.trials(study.id)}
    completed = {n for n, t in before.items() if t.state == "COMPLETE"}
    running = {n for n, t in before.items() if t.state == "RUNNING"}
    assert len(completed) >= 6 and len(before) < BUDGET and running

    done = run_cli(*search_args(url), "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best trial" in done.stdout

    after = {t.number: t for t in store.trials(study.id)}
    for number in completed:  # nothing completed is lost or changed
        old, new = before[number], after[number]
        assert (new.state, new.value, new.genotype, new.finished_at) == (
            "COMPLETE",
            old.value,
            old.genotype,
            old.finished_at,
        )
    for number in running:  # on record, not counted: the budget is spent on evaluations
        assert after[number].state == "INTERRUPTED"
        assert after[number].error.startswith("interrupted")
    finished = [t for t in after.values() if t.state in ("COMPLETE", "FAILED", "PRUNED")]
    assert len(finished) == BUDGET and len(after) == BUDGET + len(running)
    assert all(t.value == known_value(t.genotype) for t in after.values() if t.state == "COMPLETE")
    store.close()
