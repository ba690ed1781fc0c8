"""One-shot collapse on NAS-Bench-201: which cells do DARTS, its variants and ENAS derive?

Each method searches the ``nb201`` space on digits (the default search network: 2 cells per
stage, 8 channels; ``epochs`` supernet epochs, no retraining) once per seed, through the real
search loop (``run_search``, a temporary SQLite store). The final (canonical) cell is looked up
in the embedded NAS-Bench-201 12-epoch table (``cifar10_valid_acc``; median 72.3, top 10% 79.6,
all-``skip_connect`` cell 33.9), and its parameter-free ops (``none``, ``skip_connect``,
``avg_pool_3x3``) are counted: DARTS's collapse is a cell of parameter-free ops, which scores
low in the table. Digits is not CIFAR-10: the lookup measures whether the search kept
convolutions where NAS-Bench-201 rewards them, not how the cell does on digits.

Methods: ``darts-1`` and ``darts-2`` (first and second order), ``pc-darts`` (first order,
``partial_channels=4``, edge normalisation), ``beta-darts`` (first order, ``regularizer=
beta-decay``, weight 25), ``enas``; everything else at its default.

Run: ``OMP_NUM_THREADS=1 python benchmarks/collapse.py --out runs.jsonl`` (one JSON line per
run, appended as each ends; runs already in the file are skipped, so a killed run resumes),
then paste the printed Markdown into docs/benchmarks.md (DARTS section).
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

from evaluators.tabular import BenchmarkTable, notations
from nasplat.config import SearchConfig
from nasplat.registry import SPACES, load_builtins
from nasplat.run import run_search
from nasplat.store import Store

METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "darts-1": ("darts", {"order": 1}),
    "darts-2": ("darts", {"order": 2}),
    "pc-darts": ("darts", {"order": 1, "partial_channels": 4}),
    "beta-darts": ("darts", {"order": 1, "regularizer": "beta-decay"}),
    "enas": ("enas", {}),
}
PARAMETER_FREE = {"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3"}
METRIC = "cifar10_valid_acc"


def one_run(method: str, seed: int, epochs: int, workdir: Path) -> dict[str, Any]:
    """Search once; the derived cell, its table lookup and parameter-free share."""
    strategy, options = METHODS[method]
    store = Store(f"sqlite:///{workdir / f'{method}-{seed}.db'}")
    config = SearchConfig(
        space="nb201",
        strategy=strategy,
        dataset="digits",
        seed=seed,
        device="cpu",
        study=f"{method}-{seed}",
        strategy_options={**options, "epochs": epochs, "retrain_epochs": 0},
    )
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_search(config, store, progress=False)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    space = SPACES.get("nb201")()
    genotype = result.derived
    assert genotype is not None
    table = BenchmarkTable.load("nb201")
    arch = next(a for a in notations(space, genotype) if a in table)
    ops = [str(genotype[d.name]) for d in space.decisions()]
    return {
        "method": method,
        "seed": seed,
        "epochs": epochs,
        "cell": arch,
        "lookup": table.lookup(arch, METRIC),
        "parameter_free": sum(op in PARAMETER_FREE for op in ops) / len(ops),
        "skip": ops.count("skip_connect") / len(ops),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "load": [load_before, os.getloadavg()[0]],
    }


def summary(runs: list[dict[str, Any]]) -> str:
    """The Markdown table: per method, mean (and std) of the lookups, parameter-free share."""
    table = BenchmarkTable.load("nb201")
    values = table.column(METRIC).tolist()
    median = statistics.median(values)
    top10 = sorted(values)[int(0.9 * len(values))]
    lines = [
        f"| method | runs | {METRIC} of the derived cell, mean ± std | min … max "
        "| parameter-free ops | skip_connect | CPU s/run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        acc = [r["lookup"] for r in mine]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        free = statistics.mean(r["parameter_free"] for r in mine)
        skip = statistics.mean(r["skip"] for r in mine)
        secs = statistics.mean(r["cpu_seconds"] for r in mine)
        lines.append(
            f"| {method} | {len(mine)} | {statistics.mean(acc):.1f} ± {std:.1f} "
            f"| {min(acc):.1f} … {max(acc):.1f} | {free:.0%} | {skip:.0%} | {secs:.0f} |"
        )
    lines += ["", f"Table: median {median:.1f}, top 10% from {top10:.1f}.", ""]
    lines += ["| method | seed | derived cell (canonical) | lookup |", "|---|---:|---|---:|"]
    for r in runs:
        lines.append(f"| {r['method']} | {r['seed']} | `{r['cell']}` | {r['lookup']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="supernet epochs per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per method")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--out", type=Path, default=Path("collapse.jsonl"), help="JSON lines")
    args = parser.parse_args(argv)
    load_builtins()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    done: list[dict[str, Any]] = []
    if args.out.exists():
        done = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    have = {(r["method"], r["seed"], r["epochs"]) for r in done}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):  # seed-major: a partial run covers every method
            for method in methods:
                if (method, seed, args.epochs) in have:
                    continue
                run = one_run(method, seed, args.epochs, Path(tmp))
                with args.out.open("a") as f:
                    f.write(json.dumps(run) + "\n")
                done.append(run)
                print(
                    f"{method} seed {seed}: {run['lookup']:.1f} {run['cell']} "
                    f"({run['cpu_seconds']:.0f} s CPU, {run['seconds']:.0f} s wall, "
                    f"load {run['load'][0]:.1f})",
                    flush=True,
                )
    runs = [r for r in done if r["epochs"] == args.epochs and r["method"] in methods]
    print(
        f"\nnb201 on digits, {args.epochs} supernet epochs, seeds 0-{args.seeds - 1}; CPU "
        f"({platform.machine()}, {torch.get_num_threads()} torch thread(s), torch "
        f"{torch.__version__}).\n"
    )
    print(summary(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
