"""The documentation runs: every ```python block of the API docs (one process per page, blocks
in order, like notebook cells) and every script in examples/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = ["api.md", "plugins.md", "nn.md"]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return [block for block in BLOCK.findall(page.read_text())]


def run(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_of_the_page_runs(page, tmp_path):
    blocks = python_blocks(REPO / "docs" / page)
    assert blocks, f"docs/{page} has no python block"
    script = tmp_path / "page.py"
    script.write_text("\n\n".join(blocks))
    done = run(script, tmp_path)
    assert done.returncode == 0, f"docs/{page}:\n{done.stderr[-4000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_every_example_runs(example, tmp_path):
    done = run(example, tmp_path)
    assert done.returncode == 0, f"{example.name}:\n{done.stderr[-4000:]}"


def test_the_newcomer_example_is_at_most_30_lines():
    text = (REPO / "examples" / "newcomer.py").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) <= 30, len(lines)
