"""``nasplat search --storage postgresql+psycopg://...`` end to end, with trials on Ray."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from nasplat_support import drop_postgres_database, fresh_postgres_database, known_value, run_cli

from nasplat.store import Store


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.postgres
def test_search_on_ray_with_a_postgres_store(
    tmp_path: Path, postgres_url: str, ray_session: str
) -> None:
    database = f"nasplat_cli_{uuid.uuid4().hex[:8]}"
    url = fresh_postgres_database(postgres_url, database)
    try:
        args = ("search", "--space", "chain", "--evaluator", "known-function", "--budget", "12")
        args += ("--evaluator-opt", "jitter=0.1", "--evaluator-opt", "epochs=2")
        args += ("--executor", "ray", "--ray-address", ray_session, "--workers", "3")
        done = run_cli(*args, "--storage", url, "--no-progress", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.startswith("best trial")
        listed = run_cli(
            "trials",
            "--study",
            "chain-evolution-known-function",
            "--storage",
            url,
            "--format",
            "csv",
            cwd=tmp_path,
        )
        assert listed.returncode == 0 and len(listed.stdout.strip().splitlines()) == 13
        store = Store(url)
        try:
            trials = store.trials("chain-evolution-known-function", with_intermediate=True)
        finally:
            store.close()
        assert len(trials) == 12 and {t.state for t in trials} == {"COMPLETE"}
        assert len({t.worker for t in trials}) == 3
        for t in trials:
            assert t.value == known_value(t.genotype)
            assert t.intermediate == ((0, t.value / 2), (1, t.value))  # written by the workers
        assert not (tmp_path / "nasplat.db").exists()  # nothing went to the default SQLite file
    finally:
        drop_postgres_database(postgres_url, database)
