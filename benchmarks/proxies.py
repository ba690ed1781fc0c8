"""Zero-cost proxies vs. briefly trained accuracy: Spearman, Kendall and time per proxy.

For each (space, dataset) pair, samples architectures, trains each briefly with the
``low-fidelity`` evaluator and scores it with every registered proxy (``proxy_check``), then
prints a Markdown table (the source of docs/benchmarks.md's "Zero-cost proxies" section).

    .venv/bin/python benchmarks/proxies.py --samples 30 [--pairs nb201:digits,cell:digits]

Sized for a shared 2-core CPU: small networks (8 channels, few cells), one epoch, a capped
Fashion-MNIST training split. Results go to a SQLite store (``--storage``) as trials.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from evaluators.proxy_check import ProxyCorrelation, proxy_check
from nasplat.budget import Budget
from nasplat.registry import load_builtins
from nasplat.store import Store


@dataclass(frozen=True)
class Setting:
    """One benchmark cell: a space and a dataset with the training that defines "accuracy"."""

    space: str
    dataset: str
    epochs: int
    space_options: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)


SPACES = {
    "nb201": {"channels": 8, "cells_per_stage": 1},
    "cell": {"channels": 8, "layers": 3},
}
DATASETS = {
    "digits": (1, {"batch_size": 64, "data_fraction": 1.0}),
    "fashion-mnist": (1, {"batch_size": 128, "data_fraction": 1.0, "samples": 2000}),
}


def settings(pairs: list[str], epochs: int | None = None) -> list[Setting]:
    out = []
    for pair in pairs:
        space, dataset = pair.split(":")
        default_epochs, training = DATASETS[dataset]
        out.append(Setting(space, dataset, epochs or default_epochs, SPACES[space], training))
    return out


def run(
    setting: Setting, samples: int, seed: int, store: Store
) -> tuple[list[ProxyCorrelation], float]:
    start = time.perf_counter()
    _, results = proxy_check(
        store,
        space=setting.space,
        dataset=setting.dataset,
        samples=samples,
        epochs=setting.epochs,
        seed=seed,
        space_options=setting.space_options,
        training=setting.training,
        budget=Budget(epochs=setting.epochs),
        device="cpu",
    )
    return results, time.perf_counter() - start


def fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="override the per-dataset epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--pairs", default="nb201:digits,cell:digits,nb201:fashion-mnist,cell:fashion-mnist"
    )
    parser.add_argument("--storage", default="sqlite:///proxies-benchmark.db")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_builtins()

    store = Store(args.storage)
    print("| space | dataset | epochs | n | proxy | Spearman | Kendall | ms / arch |")
    print("|---|---|---|---|---|---|---|---|")
    for setting in settings(args.pairs.split(","), args.epochs):
        results, seconds = run(setting, args.samples, args.seed, store)
        for r in results:
            print(
                f"| {setting.space} | {setting.dataset} | {setting.epochs} | {r.n} | {r.proxy} | "
                f"{fmt(r.spearman)} | {fmt(r.kendall)} | {r.seconds * 1000:.1f} |",
                flush=True,
            )
        print(f"<!-- {setting.space}/{setting.dataset}: {seconds:.0f} s in all -->", flush=True)


if __name__ == "__main__":
    main()
