"""DARTS on this machine: search time per epoch (first vs. second order) on digits and
Fashion-MNIST, and the retrained DARTS cell vs. random search given the same wall-clock time.

Prints a Markdown block for the ``## Strategies`` section of docs/benchmarks.md (pasted by
hand under "DARTS"). Run: ``OMP_NUM_THREADS=1 python benchmarks/darts.py`` (a few minutes
for the step timings; ``--quality`` adds a default digits search and a random search with
the same wall-clock limit, about 10 minutes more).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from nasplat.config import SearchConfig
from nasplat.ml.data import load_dataset
from nasplat.run import run_search
from nasplat.store import Store


def search(store: Store, **config: Any) -> Any:
    return run_search(SearchConfig(device="cpu", **config), store, progress=False)


def step_seconds(dataset: str, resolution: int, order: int, repeats: int = 2) -> float:
    """Seconds of one DARTS step (alpha update, then weight update) on the default cell
    supernet at batch 64, after a warm-up step."""
    from search_spaces.cell import CellSpace
    from strategies.darts import Darts  # imported after unshadow() (see main)

    splits = load_dataset(dataset)
    if resolution != splits.input_size:
        splits = splits.resized(resolution)
    darts = Darts(CellSpace(), order=order)
    darts.build(SimpleNamespace(splits=splits, device=torch.device("cpu")))
    train, val = darts.weight_data.next(), darts.arch_data.next()
    darts.arch_step(train, val, darts.lr)
    darts.weight_step(train)
    started = time.perf_counter()
    for _ in range(repeats):
        darts.arch_step(train, val, darts.lr)
        darts.weight_step(train)
    return (time.perf_counter() - started) / repeats


def quality(workdir: Path) -> dict[str, Any]:
    """Default ``darts`` search on digits vs. ``random`` with the same wall-clock limit."""
    store = Store(f"sqlite:///{workdir / 'quality.db'}")
    started = time.perf_counter()
    darts = search(store, space="cell", strategy="darts", study="darts")
    darts_seconds = time.perf_counter() - started
    random = search(
        store,
        space="cell",
        strategy="random",
        study="random",
        budget=1000,
        time_limit=darts_seconds,
    )
    trials = [t for t in store.trials("random") if t.state == "COMPLETE"]
    return {
        "darts_seconds": darts_seconds,
        "darts_val": darts.best.value,
        "darts_test": darts.best.metrics["test_acc"],
        "random_trials": len(trials),
        "random_val": random.best.value,
        "random_test": random.best.metrics["test_acc"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", action="store_true", help="also the random-search comparison")
    args = parser.parse_args(argv)
    lines = [
        f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}); cell space, default DARTS supernet (3 layers, 8 channels, the "
        "eight DARTS ops), batch 64; one step = an alpha update then a weight update; "
        "mean of 2 steps after a warm-up, on a machine shared with other jobs.",
        "",
        "| dataset | resolution | steps per epoch (full weight half) | order 1 s/step "
        "| order 2 s/step | order 1 s/epoch | order 2 s/epoch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for dataset, resolution in (("digits", 8), ("fashion-mnist", 14), ("fashion-mnist", 28)):
        half = len(load_dataset(dataset).train) // 2
        steps = -(-half // 64)
        first, second = (step_seconds(dataset, resolution, order) for order in (1, 2))
        lines.append(
            f"| {dataset} | {resolution} | {steps} | {first:.2f} | {second:.2f} "
            f"| {first * steps:.0f} | {second * steps:.0f} |"
        )
        print(lines[-1], flush=True)
    if args.quality:
        with tempfile.TemporaryDirectory() as tmp:
            q = quality(Path(tmp))
        lines += [
            "",
            f"Digits, defaults (`nasplat search --space cell --strategy darts`): the whole run "
            f"(10 search epochs + 10 retraining epochs) took {q['darts_seconds']:.0f} s; the "
            f"retrained DARTS cell reached val {q['darts_val']:.4f} / test {q['darts_test']:.4f}. "
            f"Random search with the same wall-clock limit trained {q['random_trials']} cells "
            f"(10 epochs each); its best by validation: val {q['random_val']:.4f} / test "
            f"{q['random_test']:.4f}.",
        ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
