"""Per-trial overhead of the executors, and the throughput of the ray executor.

Measured in one run, with the same trivial evaluator (``known-function`` from
``nasplat_support``: no training, the value is a function of the genotype) and a SQLite file
store each:

- ``local`` executor: a nasplat search in this process;
- ``ray`` executor on a local Ray instance with 2 CPUs (2 long-lived workers): start-up
  (``ray.init`` + actors) and shut-down are timed apart from the loop;
- a bare Optuna loop (``study.optimize``, random sampler, the chain space's 12 decisions as
  12 categorical parameters) on a SQLite file, in Optuna's default journal mode and in WAL
  mode (nasplat's store uses WAL with ``synchronous=NORMAL``).

Then the throughput of ``--throughput`` one-second trials on 2 ray workers against the ideal
``trials / 2`` seconds.

Usage: python benchmarks/executors.py [--trials 200] [--throughput 200] [--trial-seconds 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]  # the packages themselves, before tests/'s folders of the same names
sys.path.append(str(ROOT / "tests"))  # nasplat_support
os.environ["PYTHONPATH"] = os.pathsep.join(  # Ray workers import nasplat_support too
    p for p in (str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")) if p
)
import nasplat_support  # noqa: E402, F401 - registers the known-function evaluator
from nasplat_support import known_value  # noqa: E402

from nasplat.config import SearchConfig  # noqa: E402
from nasplat.genotype import Genotype  # noqa: E402
from nasplat.registry import EXECUTORS, SPACES, load_builtins  # noqa: E402
from nasplat.run import drive, prepare  # noqa: E402
from nasplat.store import Store  # noqa: E402


@contextmanager
def timed_open_close(executor: str, times: dict[str, float]) -> Iterator[None]:
    """Time the executor's ``open`` and ``close`` (start-up and shut-down)."""
    cls = EXECUTORS.get(executor)
    originals = cls.open, cls.close

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(self: Any, *args: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(self, *args)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - start

        return timed

    cls.open, cls.close = wrap("open", originals[0]), wrap("close", originals[1])
    try:
        yield
    finally:
        cls.open, cls.close = originals


def nasplat_search(
    folder: Path, executor: str, options: dict[str, Any], trials: int, seconds: float
) -> dict[str, float]:
    """Run one search; returns the seconds of start-up, loop and shut-down."""
    store = Store(f"sqlite:///{folder / f'{executor}-{trials}-{seconds}.db'}")
    config = SearchConfig(
        space="chain",
        strategy="random",
        evaluator="known-function",
        evaluator_options={"sleep": seconds},
        executor=executor,
        executor_options=options,
        budget=trials,
        keep_weights="none",
    )
    run = prepare(config, store)
    times: dict[str, float] = {}
    with timed_open_close(executor, times):
        start = time.perf_counter()
        result = drive(run, progress=False)
        total = time.perf_counter() - start
    done = store.count_trials(result.study.id, states=["COMPLETE"])
    store.close()
    if done != trials:
        raise RuntimeError(f"{executor}: {done} of {trials} trials completed")
    loop = total - times["open"] - times.get("close", 0.0)
    return {"start": times["open"], "loop": loop, "stop": times.get("close", 0.0), "total": total}


def optuna_loop(folder: Path, trials: int, wal: bool = False) -> dict[str, float]:
    """A bare Optuna loop over the chain space's decisions with a SQLite file store (its
    default rollback journal, or ``wal``: the file switched to WAL mode as nasplat's is)."""
    import sqlite3

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SPACES.get("chain")()
    decisions = space.decisions()

    def objective(trial: optuna.Trial) -> float:
        chosen = {}
        for d in decisions:
            index = trial.suggest_categorical(d.name, list(range(len(d.choices))))
            chosen[d.name] = d.choices[index]
        return known_value(Genotype("chain", chosen))

    path = folder / f"optuna-{'wal' if wal else 'journal'}.db"
    if wal:
        with sqlite3.connect(path) as conn:  # WAL mode is a property of the file
            conn.execute("PRAGMA journal_mode=WAL")
    start = time.perf_counter()
    study = optuna.create_study(
        storage=f"sqlite:///{path}",
        sampler=optuna.samplers.RandomSampler(seed=0),
        direction="maximize",
    )
    setup = time.perf_counter() - start
    study.optimize(objective, n_trials=trials)
    loop = time.perf_counter() - start - setup
    return {"start": setup, "loop": loop, "stop": 0.0, "total": setup + loop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trivial trials per executor")
    parser.add_argument("--throughput", type=int, default=200, help="slow trials (0: skip)")
    parser.add_argument("--trial-seconds", type=float, default=1.0)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    logging.getLogger("nasplat").setLevel(logging.WARNING)
    load_builtins()
    ray2 = {"workers": 2, "cpus_per_trial": 1, "ray_address": "local"}
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nasplat-bench-") as tmp:
        folder = Path(tmp)
        rows["local executor"] = nasplat_search(folder, "local", {}, args.trials, 0.0)
        rows["ray executor (local Ray, 2 CPUs, 2 workers)"] = nasplat_search(
            folder, "ray", ray2, args.trials, 0.0
        )
        rows["bare Optuna loop (RandomSampler), SQLite file"] = optuna_loop(folder, args.trials)
        rows["bare Optuna loop (RandomSampler), SQLite file in WAL mode"] = optuna_loop(
            folder, args.trials, wal=True
        )
        throughput = None
        if args.throughput:
            throughput = nasplat_search(folder, "ray", ray2, args.throughput, args.trial_seconds)
    load = os.getloadavg()
    print(f"{args.trials} trivial trials each; load average {load[0]:.1f} on {os.cpu_count()} CPUs")
    print("| runner | start-up s | per trial ms (loop) | per trial ms (incl. start-up) |")
    print("|---|---:|---:|---:|")
    for name, t in rows.items():
        print(
            f"| {name} | {t['start']:.2f} | {1000 * t['loop'] / args.trials:.1f} "
            f"| {1000 * t['total'] / args.trials:.1f} |"
        )
    if throughput is not None:
        ideal = args.throughput * args.trial_seconds / 2
        print(
            f"\nthroughput: {args.throughput} trials of {args.trial_seconds:g} s on 2 ray workers: "
            f"loop {throughput['loop']:.1f} s (ideal {ideal:.0f} s, "
            f"{100 * ideal / throughput['loop']:.1f}% efficiency), "
            f"start-up {throughput['start']:.1f} s, shut-down {throughput['stop']:.1f} s"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps({"trivial": rows, "throughput": throughput, "load": load}, indent=2)
        )


if __name__ == "__main__":
    main()
