"""Fixtures of the execution tests: one in-process Ray session and a PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nasplat_support import PostgresUnavailable, postgres_server

RAY_CPUS = 4
RAY_FAKE_GPUS = 2


@pytest.fixture(scope="session")
def ray_session() -> Iterator[str]:
    """A local Ray instance in this process (4 CPUs, 2 fake GPUs) shared by the execution tests;
    yields its address so that subprocesses can join it."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nasplat[ray]')")
    ray.init(
        address="local",
        num_cpus=RAY_CPUS,
        num_gpus=RAY_FAKE_GPUS,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server (``$NASPLAT_TEST_POSTGRES_URL`` or one started by scripts/postgres.sh)."""
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot be installed here: {exc}")
