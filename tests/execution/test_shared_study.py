"""Processes sharing one study (scaling out without Ray): real ``nasplat search`` processes
started together on one SQLite file or one PostgreSQL database.

Each process claims its trials in the store (one atomic step), so together they run exactly the
budget and never evaluate one architecture twice, even when they propose the same architectures
(same seed, same restored strategy); searches started together without ``--study`` each get a
free name.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from nasplat_support import CLI, drop_postgres_database, fresh_postgres_database, run_cli

from nasplat.store import Store

pytestmark = pytest.mark.slow

SEARCH = ["search", "--space", "chain", "--evaluator", "known-function", "--no-progress"]
SEARCH += ["--evaluator-opt", "sleep=0.01", "--evaluator-opt", "jitter=0.02"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    server = request.getfixturevalue("postgres_url")
    database = f"nasplat_shared_{uuid.uuid4().hex[:8]}"
    yield fresh_postgres_database(server, database)
    drop_postgres_database(server, database)


def start_together(args: list[str], count: int, cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run ``count`` ``nasplat ARGS`` processes at once; their results."""
    env = {k: v for k, v in os.environ.items() if k != "NASPLAT_STORAGE"}
    procs = [
        subprocess.Popen(
            [*CLI, *args],
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_three_resumes_together_run_exactly_the_budget(
    shared_url: str, strategy: str, tmp_path: Path
) -> None:
    base = [*SEARCH, "--strategy", strategy, "--study", "s", "--storage", shared_url]
    first = run_cli(*base, "--budget", "3", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = start_together([*base, "--resume", "--budget", "300"], 3, tmp_path)
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr[-2000:] for r in runs]
    store = Store(shared_url)
    try:
        trials = store.trials("s")
    finally:
        store.close()
    states = Counter(t.state for t in trials)
    assert states == {"COMPLETE": 300}, states
    evaluated = Counter(t.arch_hash for t in trials)
    assert len(evaluated) == 300, evaluated.most_common(3)  # no architecture twice
    # the three shared the work (each ran some of it), and each said how many it ran
    ran = [int(r.stderr.split("trial(s) run")[0].rsplit(":", 1)[1]) for r in runs]
    assert sum(ran) == 297 and all(n > 0 for n in ran), ran


def test_searches_started_together_get_free_names(shared_url: str, tmp_path: Path) -> None:
    args = [*SEARCH, "--strategy", "random", "--budget", "2", "--storage", shared_url]
    runs = start_together(args, 3, tmp_path)
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr[-2000:] for r in runs]
    store = Store(shared_url)
    try:
        names = sorted(store.study_names())
        base = "chain-random-known-function"  # the evaluator is in the automatic name
        assert names == [base, f"{base}-2", f"{base}-3"]
        assert [store.count_trials(store.get_study(n).id) for n in names] == [2, 2, 2]
    finally:
        store.close()
