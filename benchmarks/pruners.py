"""Cost of one ``should_prune`` call of the Optuna-backed pruners against the study's size.

A SQLite file store holds a study with N finished trials (``--epochs`` per-epoch values each)
and one running trial; the median pruner is asked about the running trial. ``kept`` is a
pruner that has served the study before (its mirror is only refreshed: one query reading the
running trials); ``fresh`` is a new pruner per call (its mirror starts with a full read of the
study, as a Ray worker's first call does). Milliseconds per call, median of ``--calls``.

Usage: python benchmarks/pruners.py [--sizes 10,100,1000] [--epochs 5] [--calls 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.pruners import OptunaPruner
from nasplat.budget import Budget
from nasplat.genotype import Genotype
from nasplat.store import Store


def fill(store: Store, n_finished: int, epochs: int) -> tuple[int, int]:
    """A study of ``n_finished`` finished trials and one running trial: (study id, trial id)."""
    study = store.create_study(
        "bench",
        space="chain",
        strategy="random",
        evaluator="early-stop",
        objectives=[("val_acc", "maximize")],
        config={},
    ).id
    for n in range(n_finished):
        trial = store.create_trial(study, Genotype("chain", {"x": n}), Budget()).id
        for step in range(1, epochs + 1):
            store.report_intermediate(trial, step, 0.5 + 0.0001 * n + 0.01 * step)
        store.finish_trial(trial, state="COMPLETE", value=0.5)
    running = store.create_trial(study, Genotype("chain", {"x": -1}), Budget()).id
    store.report_intermediate(running, 1, 0.9)
    return study, running


def per_call_ms(
    store: Store, study: int, trial: int, pruner: Callable[[], Any], calls: int
) -> float:
    """Median milliseconds of ``calls`` calls, each asking the pruner ``pruner()`` returns."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        pruner().should_prune(store, study, trial, 1, 0.9)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    print("| finished trials | kept pruner (ms/call) | fresh pruner (ms/call) |")
    print("|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            store = Store(f"sqlite:///{Path(folder) / 'bench.db'}")
            study, trial = fill(store, size, args.epochs)
            kept = OptunaPruner("median", args.epochs)
            kept.should_prune(store, study, trial, 1, 0.9)  # its first, full read
            kept_ms = per_call_ms(store, study, trial, lambda kept=kept: kept, args.calls)
            fresh_ms = per_call_ms(
                store, study, trial, lambda: OptunaPruner("median", args.epochs), args.calls
            )
            store.close()
        print(f"| {size} | {kept_ms:.2f} | {fresh_ms:.2f} |")


if __name__ == "__main__":
    main()
