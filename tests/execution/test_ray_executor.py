"""The ``ray`` executor: attribution under concurrency, worker kills, GPUs, options."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from nasplat_support import known_value

from nasplat.config import SearchConfig
from nasplat.errors import ConfigError
from nasplat.executor import ExecutionContext
from nasplat.run import run_search
from nasplat.run.ray import RayExecutor
from nasplat.store import Store, TrialRecord


def search(
    tmp_path: Path,
    *,
    budget: int,
    executor: dict[str, Any],
    evaluator: dict[str, Any] | None = None,
    strategy: str = "evolution",
) -> tuple[Store, list[TrialRecord]]:
    """Run a known-function search on the ray executor; returns the store and its trials."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    config = SearchConfig(
        space="chain",
        strategy=strategy,
        evaluator="known-function",
        evaluator_options=evaluator or {},
        executor="ray",
        executor_options=executor,
        budget=budget,
    )
    result = run_search(config, store, progress=False)
    return store, store.trials(result.study.id, with_intermediate=True)


def worker_pid(trial: TrialRecord) -> int:
    """The pid in a worker name ``host:pid[/gpu:ids]``."""
    assert trial.worker is not None
    return int(trial.worker.split(":")[1].split("/")[0])


def gpu_ids(trial: TrialRecord) -> str:
    assert trial.worker is not None and "/gpu:" in trial.worker, trial.worker
    return trial.worker.split("/gpu:")[1]


# --- without Ray -----------------------------------------------------------------------------
def context(url: str) -> ExecutionContext:
    return ExecutionContext(url, 1, "chain", {}, "known-function", {}, "val_acc")


def test_in_memory_store_is_refused_with_a_clear_line() -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        RayExecutor().open(context("sqlite://"), None)


@pytest.mark.parametrize(
    "options",
    [{"workers": 0}, {"cpus_per_trial": 0, "gpus_per_trial": 0}, {"max_retries": -1}],
)
def test_bad_options_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="executor ray"):
        RayExecutor(**options)


def test_module_imports_and_registers_without_ray(tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["ray"] = None  # import ray -> ImportError
from nasplat.registry import EXECUTORS, load_builtins
load_builtins()
from nasplat.executor import ExecutionContext
ex = EXECUTORS.get("ray")(workers=3)
assert ex.capacity == 3
try:
    ex.open(ExecutionContext("sqlite:///{tmp_path}/s.db", 1, "chain", {{}}, "train", {{}}, "val_acc"), None)
except Exception as exc:
    print(type(exc).__name__, exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("ConfigError executor ray needs Ray: pip install")


# --- on Ray ----------------------------------------------------------------------------------
@pytest.mark.usefixtures("ray_session")
@pytest.mark.slow
@pytest.mark.ray
def test_every_result_is_attributed_to_its_architecture(tmp_path: Path) -> None:
    """4 workers, random delays, 200 trials, evolution asking while trials run: every stored
    value (and every intermediate value) is the known function of the stored genotype."""
    store, trials = search(
        tmp_path,
        budget=200,
        executor={"workers": 4},
        evaluator={"jitter": 0.04, "epochs": 2},
    )
    assert len(trials) == 200 and {t.state for t in trials} == {"COMPLETE"}
    wrong = [t.number for t in trials if t.value != known_value(t.genotype)]
    assert wrong == []
    for t in trials:
        expected = known_value(t.genotype)
        assert t.intermediate == ((0, expected / 2), (1, expected))
        assert worker_pid(t) == int(t.metrics["pid"])  # the process named ran it
    assert len({t.worker for t in trials}) == 4
    by_finish = sorted(trials, key=lambda t: t.finished_at)
    assert [t.number for t in by_finish] != sorted(t.number for t in trials)  # out of order
    overlapping = max(
        sum(o.started_at < t.finished_at and t.started_at < o.finished_at for o in trials)
        for t in trials
    )
    assert overlapping >= 4  # itself plus three others in flight at once
    store.close()


class Killer:
    """Kills (SIGKILL) the worker processes that evaluate chosen architectures.

    The first architecture seen is killed every time (it must end FAILED after the retries),
    the second one only once (its retry must succeed).
    """

    def __init__(self, pid_dir: Path) -> None:
        self.pid_dir = pid_dir
        self.doomed: str | None = None
        self.once: str | None = None
        self.kills: list[tuple[str, int]] = []
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for path in sorted(self.pid_dir.iterdir(), key=lambda p: p.stat().st_mtime):
                if path.name in self._seen:
                    continue
                self._seen.add(path.name)
                arch, pid = path.name.rsplit("-", 1)
                if self.doomed is None:
                    self.doomed = arch
                elif self.once is None and arch != self.doomed:
                    self.once = arch
                first_of_once = arch == self.once and all(a != arch for a, _ in self.kills)
                if arch == self.doomed or first_of_once:
                    os.kill(int(pid), signal.SIGKILL)
                    self.kills.append((arch, int(pid)))
            time.sleep(0.02)


@pytest.mark.usefixtures("ray_session")
@pytest.mark.slow
@pytest.mark.ray
def test_killed_workers_are_replaced_and_trials_retried_then_failed(tmp_path: Path) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    with Killer(pid_dir) as killer:
        _, trials = search(
            tmp_path,
            budget=6,
            strategy="random",
            executor={"workers": 2, "max_retries": 2},
            evaluator={"sleep": 1.0, "pid_dir": str(pid_dir)},
        )
    by_arch = {t.genotype.sha[:12]: t for t in trials}
    doomed, once = by_arch[killer.doomed], by_arch[killer.once]
    assert [a for a, _ in killer.kills].count(killer.doomed) == 3  # first run + 2 retries
    assert doomed.state == "FAILED" and doomed.retries == 2
    assert doomed.error.startswith("worker died") and "after 2 retries" in doomed.error
    assert (
        once.state == "COMPLETE" and once.retries == 1 and once.value == known_value(once.genotype)
    )
    others = [t for t in trials if t not in (doomed, once)]
    assert len(trials) == 6 and all(t.state == "COMPLETE" and t.retries == 0 for t in others)
    killed_pids = {pid for _, pid in killer.kills}
    assert not killed_pids & {worker_pid(t) for t in trials if t.state == "COMPLETE"}


@pytest.mark.usefixtures("ray_session")
@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize(("workers", "gpus", "per_gpu"), [(2, 1.0, 1), (4, 0.5, 2)])
def test_trials_get_distinct_fake_gpus(
    tmp_path: Path, workers: int, gpus: float, per_gpu: int
) -> None:
    """Ray declared with 2 fake GPUs: each worker sees the GPU Ray assigned it."""
    _, trials = search(
        tmp_path,
        budget=2 * workers,
        executor={"workers": workers, "gpus_per_trial": gpus, "cpus_per_trial": 0.5},
        evaluator={"sleep": 0.2},
    )
    assert {t.state for t in trials} == {"COMPLETE"}
    gpus_of_worker = {t.worker: gpu_ids(t) for t in trials}
    assert len(gpus_of_worker) == workers
    assert sorted(gpus_of_worker.values()) == sorted(["0", "1"] * per_gpu)


@pytest.mark.usefixtures("ray_session")
@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gpus_per_trial": 3}, "a trial needs 3 GPU"),
        ({"setup_modules": "no_such_module"}, "a worker failed to start: ModuleNotFoundError"),
    ],
)
def test_unplaceable_or_broken_workers_are_one_line_errors(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    executor = RayExecutor(workers=1, cpus_per_trial=0.5, **options)
    with pytest.raises(ConfigError, match=message):
        executor.open(context(f"sqlite:///{tmp_path / 's.db'}"), None)
    import ray

    assert ray.is_initialized()  # the shared instance is left running
