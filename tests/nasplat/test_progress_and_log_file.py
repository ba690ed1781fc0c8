"""The progress bar says how long is left, and ``--log-file`` keeps every record with its time
(issue #17)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from nasplat.run.progress import progress_bar
from tests.conftest import run_main

TABLE_SEARCH = [
    "search", "--space", "nb201", "--strategy", "random", "--evaluator", "tabular",
    "--table", "nb201", "--metric", "cifar10_valid_acc", "--budget", "3", "--no-progress",
]  # fmt: skip
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def test_the_progress_bar_shows_time_elapsed_and_left(capsys: pytest.CaptureFixture) -> None:
    with progress_bar(True, total=4, label="s") as bar:
        for _ in range(2):
            time.sleep(0.05)
            bar.advance("best x=1")
    err = capsys.readouterr().err
    assert re.search(r"2/4 \d+:\d\d:\d\d elapsed \d+:\d\d:\d\d left best x=1", err), err


def test_time_left_after_one_slow_step(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One step of 10 minutes done of 4, the bar resumed at 1 of 5: about 30 minutes left (the
    mean pace of the steps done here, however long they took)."""
    clock = [1000.0]
    monkeypatch.setattr("rich.console.monotonic", lambda: clock[0])
    with progress_bar(True, total=5, completed=1, label="s") as bar:
        clock[0] += 600
        bar.advance("epoch")
    err = capsys.readouterr().err
    assert re.search(r"2/5 0:10:00 elapsed 0:30:00 left epoch", err), err


def test_a_cut_total_shortens_the_time_left(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A time limit cut 14 planned epochs to 5 after the first (10 minutes): 40 minutes left,
    not 130."""
    clock = [1000.0]
    monkeypatch.setattr("rich.console.monotonic", lambda: clock[0])
    with progress_bar(True, total=14, label="s") as bar:
        clock[0] += 600
        bar.set_total(5)
        bar.advance("epoch")
    err = capsys.readouterr().err
    assert re.search(r"1/5 0:10:00 elapsed 0:40:00 left epoch", err), err


def test_log_file_gets_every_record_with_its_time(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "search.log"
    log.parent.mkdir()
    code, _, err = run_main("-q", "--log-file", str(log), *TABLE_SEARCH, cwd=tmp_path)
    assert code == 0 and "INFO" not in err  # -q: nothing on stderr, everything in the file
    lines = log.read_text().splitlines()
    assert all(re.match(rf"{STAMP} (DEBUG|INFO|WARNING|ERROR) +nasplat", line) for line in lines)
    assert any(re.search(r"INFO +nasplat: trial 0: COMPLETE cifar10_valid_acc=", x) for x in lines)
    assert lines[-1].endswith("study nb201-random-tabular: 3 trial(s) run in this session")
    run_main("--log-file", str(log), *TABLE_SEARCH, cwd=tmp_path)
    assert len(log.read_text().splitlines()) > len(lines)  # appended, not replaced


def test_a_log_file_that_cannot_be_written_is_exit_2(tmp_path: Path) -> None:
    code, _, err = run_main("--log-file", str(tmp_path / "no" / "x.log"), "studies", cwd=tmp_path)
    assert code == 2 and err.strip().startswith("nasplat: error: cannot write log file")
    assert len(err.strip().splitlines()) == 1
