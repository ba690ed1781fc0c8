"""A real two-node Ray cluster on 127.0.0.1 (``ray start``), searched with ``nasplat search
--executor ray --ray-address 127.0.0.1:PORT``; the cluster is stopped afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from nasplat_support import free_port, known_value, run_cli

from nasplat.store import Store

RAY = str(Path(sys.executable).with_name("ray"))
# A private localhost cluster: no token shared through ~/.ray (other Ray users on this machine
# would otherwise join or break it). Real clusters should keep Ray's token authentication.
CLUSTER_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@contextmanager
def ray_node(*args: str, log: Path) -> Iterator[None]:
    """``ray start --block ARGS`` in its own process group, stopped (SIGTERM, then SIGKILL of
    the group) on exit. Its own temp dir keeps it apart from other Ray instances here."""
    temp_dir = tempfile.mkdtemp(prefix="nrc-")  # short: Ray's socket paths are length-limited
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [RAY, "start", "--block", f"--temp-dir={temp_dir}", "--disable-usage-stats", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **CLUSTER_ENV},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start {' '.join(args)} failed:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of that group still alive
        except ProcessLookupError:
            pass
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Head (1 CPU, 2 fake GPUs) plus a second node (1 CPU); yields ``127.0.0.1:PORT``."""
    logs = tmp_path_factory.mktemp("ray-logs")
    port = free_port()
    head = ("--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=1")
    with ray_node(*head, "--num-gpus=2", "--include-dashboard=false", log=logs / "head.log"):
        with ray_node(f"--address=127.0.0.1:{port}", "--num-cpus=1", log=logs / "node.log"):
            yield f"127.0.0.1:{port}"


def cluster_search(tmp_path: Path, address: str, study: str, *options: str) -> list:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    args = ("search", "--space", "chain", "--strategy", "random", "--budget", "6")
    args += ("--evaluator", "known-function", "--evaluator-opt", "sleep=0.3", "--study", study)
    args += ("--executor", "ray", "--ray-address", address, "--storage", url, "--no-progress")
    done = run_cli(*args, *options, cwd=tmp_path, env=CLUSTER_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store(url)
    try:
        trials = store.trials(study)
    finally:
        store.close()
    assert len(trials) == 6 and {t.state for t in trials} == {"COMPLETE"}
    assert all(t.value == known_value(t.genotype) for t in trials)
    return trials


@pytest.mark.slow
@pytest.mark.ray
def test_search_on_a_two_node_cluster_uses_both_nodes(tmp_path: Path, cluster: str) -> None:
    # one CPU per trial and one CPU per node: the two workers must sit on different nodes
    trials = cluster_search(tmp_path, cluster, "cpu", "--workers", "2", "--cpus-per-trial", "1")
    assert len({t.worker for t in trials}) == 2


@pytest.mark.slow
@pytest.mark.ray
def test_trials_on_the_cluster_receive_distinct_gpus(tmp_path: Path, cluster: str) -> None:
    trials = cluster_search(
        tmp_path,
        cluster,
        "gpu",
        "--workers",
        "2",
        "--gpus-per-trial",
        "1",
        "--cpus-per-trial",
        "0.5",
    )
    gpus = {t.worker: t.worker.split("/gpu:")[1] for t in trials}
    assert sorted(gpus.values()) == ["0", "1"]
