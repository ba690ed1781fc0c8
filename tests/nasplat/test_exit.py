"""The ``nasplat`` command exits without tearing the interpreter down, but as an ordinary exit
would end it: exit handlers run, output is flushed, the status is kept, and other threads
still running are waited for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def run_command(tmp_path: Path, before: str, *args: str) -> subprocess.CompletedProcess:
    """``nasplat ARGS`` through the console entry point, after the Python lines ``before``."""
    code = (
        "import sys\n"
        f"{before}\n"
        "from nasplat.cli import run\n"
        f"sys.argv = ['nasplat', *{list(args)!r}]\n"
        "run()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def test_exit_handlers_run_and_output_is_flushed(tmp_path: Path) -> None:
    out = run_command(
        tmp_path, "import atexit; atexit.register(lambda: print('handler ran'))", "list", "spaces"
    )
    assert out.returncode == 0, out.stderr
    assert "nb201" in out.stdout and out.stdout.rstrip().endswith("handler ran")


def test_the_exit_status_of_bad_input_is_kept(tmp_path: Path) -> None:
    out = run_command(tmp_path, "", "search", "--space", "no-such-space", "--storage",
                      f"sqlite:///{tmp_path}/s.db")  # fmt: skip
    assert out.returncode == 2 and "no-such-space" in out.stderr


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    marker = tmp_path / "done"
    before = (
        "import threading, time, pathlib\n"
        f"def late(): time.sleep(0.5); pathlib.Path({str(marker)!r}).write_text('x')\n"
        "threading.Thread(target=late).start()"
    )
    out = run_command(tmp_path, before, "list", "spaces")
    assert out.returncode == 0, out.stderr
    assert marker.exists()  # os._exit would have cut the thread off
