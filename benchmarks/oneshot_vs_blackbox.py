"""One-shot search against black-box search at equal wall-clock time, over several seeds.

For each seed: ``darts`` and ``enas`` run end to end (supernet search, then the derived cell
retrained), each at its defaults on the cell space; then ``random`` and ``evolution`` each get
the DARTS run's wall-clock time as ``time_limit`` (the trial in flight when it ends is
finished) and train every cell they propose with the ``train`` evaluator at the same epochs as
DARTS's retraining. Every run goes through the real search loop (``run_search``, its own
SQLite store); a run's figure is its best trial by validation accuracy, with that trial's test
accuracy. ENAS's own run is shorter than DARTS's; its wall time is reported beside it.

Run: ``OMP_NUM_THREADS=1 python benchmarks/oneshot_vs_blackbox.py --seeds 0,1,2 --out
compare.jsonl`` (one JSON line per run, appended as each ends; runs already in the file are
skipped, so a killed run resumes). Two processes with different ``--seeds`` may share the file
to use two cores. Then ``--summary`` prints the Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nasplat.config import SearchConfig
from nasplat.registry import load_builtins
from nasplat.run import run_search
from nasplat.store import Store

ONE_SHOT = ("darts", "enas")
BLACK_BOX = ("random", "evolution")
METHODS = ONE_SHOT + BLACK_BOX


def one_run(
    method: str, seed: int, dataset: str, time_limit: float | None, workdir: Path
) -> dict[str, Any]:
    """One search; its best trial by validation accuracy, wall and CPU time, trial count."""
    store = Store(f"sqlite:///{workdir / f'{method}-{seed}.db'}")
    config = SearchConfig(
        space="cell",
        strategy=method,
        dataset=dataset,
        seed=seed,
        device="cpu",
        study=f"{method}-{seed}",
        **({} if time_limit is None else {"budget": 10_000, "time_limit": time_limit}),
    )
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_search(config, store, progress=False)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    trained = [t for t in store.trials(config.study) if t.state == "COMPLETE"]
    best = result.best
    return {
        "method": method,
        "seed": seed,
        "dataset": dataset,
        "time_limit": time_limit,
        "val_acc": best.value,
        "test_acc": best.metrics["test_acc"],
        "params": best.metrics.get("params"),
        "trials": len(trained),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "threads": torch.get_num_threads(),
        "load": [load_before, os.getloadavg()[0]],
    }


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def summary(runs: list[dict[str, Any]]) -> str:
    """The Markdown tables: per method over seeds, then every run."""
    lines = [
        "| method | runs | test acc of the best trial, mean ± std | its val acc, mean ± std "
        "| trials trained | wall s/run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        lines.append(
            f"| {method} | {len(mine)} | {_mean_std([r['test_acc'] for r in mine])} "
            f"| {_mean_std([r['val_acc'] for r in mine])} "
            f"| {statistics.mean(r['trials'] for r in mine):.1f} "
            f"| {statistics.mean(r['seconds'] for r in mine):.0f} |"
        )
    lines += [
        "",
        "| seed | method | test acc | val acc | trials | wall s | time limit s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(runs, key=lambda r: (r["seed"], METHODS.index(r["method"]))):
        limit = "" if r["time_limit"] is None else f"{r['time_limit']:.0f}"
        lines.append(
            f"| {r['seed']} | {r['method']} | {r['test_acc']:.4f} | {r['val_acc']:.4f} "
            f"| {r['trials']} | {r['seconds']:.0f} | {limit} |"
        )
    return "\n".join(lines)


def read_runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--dataset", default="digits", help="dataset of every run")
    parser.add_argument("--out", type=Path, default=Path("compare.jsonl"), help="JSON lines")
    parser.add_argument("--summary", action="store_true", help="only print the tables")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not args.summary:
        load_builtins()
        with tempfile.TemporaryDirectory() as tmp:
            for seed in seeds:
                for method in METHODS:
                    runs = [r for r in read_runs(args.out) if r["dataset"] == args.dataset]
                    mine = {(r["method"], r["seed"]): r for r in runs}
                    if (method, seed) in mine:
                        continue
                    limit = mine[("darts", seed)]["seconds"] if method in BLACK_BOX else None
                    run = one_run(method, seed, args.dataset, limit, Path(tmp))
                    with args.out.open("a") as f:
                        f.write(json.dumps(run) + "\n")
                    print(
                        f"{method} seed {seed}: test {run['test_acc']:.4f} val "
                        f"{run['val_acc']:.4f}, {run['trials']} trials, {run['seconds']:.0f} s",
                        flush=True,
                    )
    runs = [r for r in read_runs(args.out) if r["dataset"] == args.dataset]
    threads = sorted({r.get("threads", "?") for r in runs}, key=str)
    print(
        f"\ncell space on {args.dataset}; CPU ({platform.machine()}, torch threads per run: "
        f"{', '.join(map(str, threads))}, torch {torch.__version__}).\n"
    )
    print(summary(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
