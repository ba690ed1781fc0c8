"""How well does each cheap signal rank architectures? Kendall and Spearman against a long run.

For seeded random samples of a space, trains every architecture once at the *long* budget (the
reference) and once per low-fidelity setting (fewer epochs, a data fraction, half width, half
resolution), scores it with every zero-cost proxy of the ``proxy`` evaluator, and reports each
signal's rank correlation with the long run's validation accuracy plus its cost (process CPU
seconds) as a fraction of the long run's. The source of docs/benchmarks.md's "Fidelity" section.

    python benchmarks/fidelity.py run --space chain --archs 40 [--shard 0 --shards 2]
    python benchmarks/fidelity.py table results/fidelity-*.jsonl

``run`` appends one JSON line per (architecture, signal) to ``--out`` as it goes and skips
pairs already there, so an interrupted run continues where it stopped and ``table`` works on
partial results. Sized for a shared 2-core CPU (every setting is in ``DATA``, ``SPACES_OPTIONS``,
``TRAINING`` and ``SIGNALS`` below): Fashion-MNIST at 14x14, a fixed stratified 1000-image training
subset, 500 validation and 500 test images, small networks, one torch thread per process.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from nasplat.evaluator import Reporter
from nasplat.registry import DATASETS, EVALUATORS, SPACES, load_builtins

DATASET = "fashion-mnist-fidelity"
DATA = {"train": 1000, "val": 500, "test": 500, "resolution": 14, "seed": 0}
SPACES_OPTIONS: dict[str, dict[str, Any]] = {
    "chain": {"layers": 3, "widths": [8, 16], "stem_channels": 8},
    "nb201": {"channels": 8, "cells_per_stage": 1},
}
TRAINING = {"batch_size": 128, "lr": 0.05}
# name -> (evaluator, options); the training signals change one knob of the long run
SIGNALS: dict[str, tuple[str, dict[str, Any]]] = {
    "long": ("train", {"epochs": 20}),
    "1 epoch": ("low-fidelity", {"epochs": 1}),
    "2 epochs": ("low-fidelity", {"epochs": 2}),
    "2 epochs, no BN re-estimation": ("low-fidelity", {"epochs": 2, "bn_recalibration": 0}),
    "5 epochs": ("low-fidelity", {"epochs": 5}),
    "10% data": ("low-fidelity", {"epochs": 20, "data_fraction": 0.1}),
    "25% data": ("low-fidelity", {"epochs": 20, "data_fraction": 0.25}),
    "width 0.5": ("low-fidelity", {"epochs": 20, "width_mult": 0.5}),
    "resolution 7": ("low-fidelity", {"epochs": 20, "resolution": 7}),
    **{
        f"proxy {p}": ("proxy", {"proxy": p})
        for p in ("synflow", "naswot", "jacov", "grad_norm", "snip", "params", "flops")
    },
}
CHANCE = 0.15  # 10 classes: a validation accuracy at most this counts as "at chance"
LOW_FIDELITY_BASE = {"data_fraction": 1.0, "width_mult": 1.0}


def _stratified(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> TensorDataset:
    rng = np.random.default_rng(seed)
    labels = y.numpy()
    per_class = n // int(labels.max() + 1)
    keep = np.sort(
        np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
        )
    )
    return TensorDataset(x[keep], y[keep])


def register_dataset() -> None:
    """``fashion-mnist-fidelity``: the fixed stratified subsets of Fashion-MNIST at 14x14."""
    import dataclasses

    from nasplat.ml.data import load_fashion_mnist, tensors_of

    @DATASETS.register(DATASET, description="Fashion-MNIST subsets for benchmarks/fidelity.py")
    def load(seed: int = 0) -> Any:
        # the loader itself: load_dataset holds its cache lock while this loader runs
        full = load_fashion_mnist(seed=DATA["seed"], limit=DATA["train"])
        splits = dataclasses.replace(
            full,
            val=_stratified(*tensors_of(full.val), DATA["val"], DATA["seed"]),
            test=_stratified(*tensors_of(full.test), DATA["test"], DATA["seed"]),
        )
        return splits.resized(DATA["resolution"]).materialized()


def architectures(space: Any, count: int, seed: int) -> list[Any]:
    """``count`` distinct (canonical) random architectures, from ``random.Random(seed)``."""
    rng = random.Random(seed)
    seen: dict[str, Any] = {}
    while len(seen) < count:
        genotype = space.canonicalize(space.sample(rng))
        seen.setdefault(genotype.sha, genotype)
    return list(seen.values())


def evaluator(space: Any, signal: str) -> Any:
    kind, options = SIGNALS[signal]
    common = {"dataset": DATASET, "seed": 0, "device": "cpu"}
    if kind == "proxy":
        return EVALUATORS.get(kind)(space, **common, **options)
    extra = LOW_FIDELITY_BASE if kind == "low-fidelity" else {}
    return EVALUATORS.get(kind)(
        space, **common, keep_weights=False, **TRAINING, **{**extra, **options}
    )


def run(args: argparse.Namespace) -> None:
    load_builtins()
    register_dataset()
    torch.set_num_threads(1)
    space = SPACES.get(args.space)(**SPACES_OPTIONS[args.space])
    out = Path(args.out or f"results/fidelity-{args.space}-{args.shard}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["arch"], row["signal"]))
    archs = architectures(space, args.archs, args.seed)
    evaluators = {signal: evaluator(space, signal) for signal in SIGNALS}
    for index, genotype in enumerate(archs):
        if index % args.shards != args.shard:
            continue
        for signal, ev in evaluators.items():
            if (index, signal) in done:
                continue
            cpu, wall = time.process_time(), time.perf_counter()
            row: dict[str, Any] = {"space": args.space, "arch": index, "signal": signal}
            try:
                result = ev.evaluate(genotype, ev.resolve_budget(None), Reporter())
                metrics = result.metrics
                row["value"] = float(metrics[ev.default_objective()[0]])  # a proxy: its score
                row["test_acc"] = metrics.get("test_acc")
            except Exception as error:  # recorded, ranked as missing
                row["error"] = f"{type(error).__name__}: {error}"
            row["cpu_s"] = time.process_time() - cpu
            row["wall_s"] = time.perf_counter() - wall
            row["notation"] = space.to_notation(genotype)
            with out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), file=sys.stderr, flush=True)


def _finite(value: Any) -> float:
    return float(value) if value is not None and math.isfinite(value) else -math.inf


def table(args: argparse.Namespace) -> None:
    from scipy.stats import kendalltau, spearmanr

    rows = [json.loads(line) for path in args.files for line in Path(path).read_text().splitlines()]
    for space in sorted({r["space"] for r in rows}):
        mine = [r for r in rows if r["space"] == space and "value" in r]
        by = {(r["arch"], r["signal"]): r for r in mine}
        long = {a: r for (a, s), r in by.items() if s == "long"}
        archs = sorted(long)
        long_cpu = sum(long[a]["cpu_s"] for a in archs)
        reference = [long[a]["value"] for a in archs]
        print(f"\n{space}: {len(archs)} architectures with a long run\n")
        print(
            "| signal | n | Kendall tau | Spearman rho | cost (x long run) | mean val_acc | at chance |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        noise = [_finite(long[a]["test_acc"]) for a in archs]
        tau, rho = kendalltau(noise, reference).statistic, spearmanr(noise, reference).statistic
        print(
            f"| long run's test acc. (noise ceiling) | {len(archs)} | {tau:.2f} | {rho:.2f} | - "
            f"| {np.mean(reference):.3f} | {sum(v <= CHANCE for v in reference)} |"
        )
        for signal in SIGNALS:
            if signal == "long":
                continue
            common = [a for a in archs if (a, signal) in by]
            if len(common) < 3:
                continue
            scores = [_finite(by[(a, signal)]["value"]) for a in common]
            ref = [long[a]["value"] for a in common]
            tau, rho = kendalltau(scores, ref).statistic, spearmanr(scores, ref).statistic
            cost = sum(by[(a, signal)]["cpu_s"] for a in common) / sum(
                long[a]["cpu_s"] for a in common
            )
            accuracy = "-", "-"
            if SIGNALS[signal][0] != "proxy":
                accuracy = f"{np.mean(scores):.3f}", str(sum(v <= CHANCE for v in scores))
            print(
                f"| {signal} | {len(common)} | {tau:.2f} | {rho:.2f} | {cost:.3f} "
                f"| {accuracy[0]} | {accuracy[1]} |"
            )
        values = np.array(reference)
        print(
            f"\nlong run: val_acc mean {values.mean():.3f}, min {values.min():.3f}, "
            f"max {values.max():.3f}; CPU {long_cpu / max(len(archs), 1):.1f} s per architecture"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--space", choices=sorted(SPACES_OPTIONS), required=True)
    r.add_argument("--archs", type=int, default=40)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--shard", type=int, default=0)
    r.add_argument("--shards", type=int, default=1)
    r.add_argument("--out", default=None)
    t = sub.add_parser("table")
    t.add_argument("files", nargs="+")
    args = parser.parse_args()
    (run if args.command == "run" else table)(args)


if __name__ == "__main__":
    main()
