"""One-shot search against black-box search at equal wall-clock time, over several seeds.

For each seed: ``darts`` and ``enas`` run end to end (supernet search, then the derived cell
retrained), each at its defaults on the cell space; then ``random`` and ``evolution`` each get
the DARTS run's wall-clock time as ``time_limit`` (the trial in flight when it ends is
finished) and train every cell they propose with the ``train`` evaluator at the same epochs as
DARTS's retraining. Every run goes through the real search loop (``run_search``, its own
SQLite store); a run's figure is its best trial by validation accuracy, with that trial's test
accuracy. ENAS's own run is shorter than DARTS's; its wall time is reported beside it.

Every run of one invocation shares the study settings given on the command line (``--epochs``,
``--data-fraction``, ``--resolution``, ``--space-opt``, ``--evaluator-opt``, as ``nasplat
search`` takes them); ``--oneshot-opt`` goes to both one-shot strategies, ``--darts-opt`` to
DARTS alone and ``--evolution-opt`` to evolution. Each run records these settings; a file may
hold several settings, and the tables use only the runs of the settings given.

Run: ``OMP_NUM_THREADS=1 python benchmarks/oneshot_vs_blackbox.py --seeds 0,1,2 --out
compare.jsonl`` (one JSON line per run, appended as each ends; runs already in the file are
skipped, so a killed run resumes). Two processes with different ``--seeds`` may share the file
to use two cores. Then ``--summary`` (with the same settings) prints the Markdown for
docs/benchmarks.md.
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

from nasplat.config import SearchConfig, parse_option_pairs
from nasplat.registry import load_builtins
from nasplat.run import run_search
from nasplat.store import Store

ONE_SHOT = ("darts", "enas")
BLACK_BOX = ("random", "evolution")
METHODS = ONE_SHOT + BLACK_BOX


def strategy_options(method: str, setting: dict[str, Any]) -> dict[str, Any]:
    """The strategy options of ``method`` under ``setting`` (see the module docstring)."""
    options = dict(setting["oneshot_options"]) if method in ONE_SHOT else {}
    options.update(setting.get(f"{method}_options", {}))
    return options


def one_run(
    method: str, seed: int, setting: dict[str, Any], time_limit: float | None, workdir: Path
) -> dict[str, Any]:
    """One search; its best trial by validation accuracy, wall and CPU time, trial count."""
    store = Store(f"sqlite:///{workdir / f'{method}-{seed}.db'}")
    config = SearchConfig(
        space="cell",
        space_options=setting["space_options"],
        strategy=method,
        strategy_options=strategy_options(method, setting),
        evaluator_options=setting["evaluator_options"],
        dataset=setting["dataset"],
        epochs=setting["epochs"],
        data_fraction=setting["data_fraction"],
        resolution=setting["resolution"],
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
        "dataset": setting["dataset"],
        "setting": setting,
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


def read_runs(path: Path, setting: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs in ``path`` made with ``setting`` (runs from before settings were recorded
    count as the dataset's defaults)."""
    if not path.exists():
        return []
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in runs if r.get("setting", default_setting(r["dataset"])) == setting]


def default_setting(dataset: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "epochs": None,
        "data_fraction": 1.0,
        "resolution": None,
        "space_options": {},
        "evaluator_options": {},
        "oneshot_options": {},
        "darts_options": {},
        "evolution_options": {},
    }


def setting_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        **default_setting(args.dataset),
        "epochs": args.epochs,
        "data_fraction": args.data_fraction,
        "resolution": args.resolution,
        **{
            f"{group}_options": parse_option_pairs(getattr(args, f"{group}_opt"), f"--{group}-opt")
            for group in ("space", "evaluator", "oneshot", "darts", "evolution")
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--dataset", default="digits", help="dataset of every run")
    parser.add_argument("--epochs", type=int, help="training epochs of every trained cell")
    parser.add_argument("--data-fraction", type=float, default=1.0, help="share of the data")
    parser.add_argument("--resolution", type=int, help="image side of every run")
    for group, whom in [
        ("space", "the cell space"),
        ("evaluator", "the train evaluator"),
        ("oneshot", "darts and enas"),
        ("darts", "darts"),
        ("evolution", "evolution"),
    ]:
        parser.add_argument(
            f"--{group}-opt",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"option of {whom} (repeatable)",
        )
    parser.add_argument("--out", type=Path, default=Path("compare.jsonl"), help="JSON lines")
    parser.add_argument("--summary", action="store_true", help="only print the tables")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    setting = setting_from_args(args)
    if not args.summary:
        load_builtins()
        with tempfile.TemporaryDirectory() as tmp:
            for seed in seeds:
                for method in METHODS:
                    mine = {(r["method"], r["seed"]): r for r in read_runs(args.out, setting)}
                    if (method, seed) in mine:
                        continue
                    limit = mine[("darts", seed)]["seconds"] if method in BLACK_BOX else None
                    run = one_run(method, seed, setting, limit, Path(tmp))
                    with args.out.open("a") as f:
                        f.write(json.dumps(run) + "\n")
                    print(
                        f"{method} seed {seed}: test {run['test_acc']:.4f} val "
                        f"{run['val_acc']:.4f}, {run['trials']} trials, {run['seconds']:.0f} s",
                        flush=True,
                    )
    runs = read_runs(args.out, setting)
    threads = sorted({r.get("threads", "?") for r in runs}, key=str)
    given = {k: v for k, v in setting.items() if v != default_setting(args.dataset)[k]}
    print(
        f"\ncell space on {args.dataset}; settings {json.dumps(given)}; CPU ({platform.machine()}, torch threads per run: "
        f"{', '.join(map(str, threads))}, torch {torch.__version__}).\n"
    )
    print(summary(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
