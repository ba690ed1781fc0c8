"""Fixtures of the execution tests: one in-process Ray session and a PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
        shutdown_bounded(ray)


def shutdown_bounded(ray: Any, seconds: float = 120) -> None:
    """``ray.shutdown()``, or, when it hangs (Ray's GCS subscriber close can block, seen with
    another Ray instance running on the machine), kill this session's Ray processes and drop
    Ray's exit hook so the test run still ends."""
    import atexit
    import threading
    import warnings

    thread = threading.Thread(target=ray.shutdown, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        warnings.warn(
            f"ray.shutdown() hung for {seconds:.0f} s; killing its processes", stacklevel=2
        )
        node = getattr(ray._private.worker, "_global_node", None)
        if node is not None:
            node.kill_all_processes(check_alive=False, allow_graceful=False)
        atexit.unregister(ray._private.worker.shutdown)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server (``$NASPLAT_TEST_POSTGRES_URL`` or one started by scripts/postgres.sh)."""
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot be installed here: {exc}")
