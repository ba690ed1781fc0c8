"""DARTS on this machine: search time per epoch (first vs. second order) on digits and
Fashion-MNIST, and the retrained DARTS cell vs. random search given the same wall-clock time.

Prints a Markdown block for the ``## Strategies`` section of docs/benchmarks.md (pasted by
hand under "DARTS"). Run: ``OMP_NUM_THREADS=1 python benchmarks/darts.py`` (a few minutes
for the step timings; ``--quality`` adds a default digits search and a random search with
the same wall-clock limit, about 10 minutes more). ``--variants`` instead times the cheaper
step settings against the plain first-order step in the same run (a few minutes of CPU):
PC-DARTS (``partial_channels=4``), ``channels_last=true`` (the supernet's weights in NHWC
order), the same with the dilated and wide depthwise convs run directly (without the faster
training paths of ``search_spaces.ops.conv.CpuTrainConv2d``), both PC-DARTS and
channels-last, and the per-epoch evaluation under ``torch.inference_mode`` instead of
``torch.no_grad``; on digits and on random tensors of Fashion-MNIST's shape at 14x14. ``--retrain`` times the retraining's
training step (the ``train`` evaluator's loop, batch 128, on the cell space's default network
and the Fashion-MNIST recipes'; a sampled cell and the cells ENAS and beta-DARTS derived on
Fashion-MNIST) with ``channels_last=true``: with the dilated and wide depthwise convs run
directly, with the direct conv's gradients (no ``own_backward``), and as shipped, against the
default, interleaved.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch.utils.data import TensorDataset

from nasplat.config import SearchConfig
from nasplat.ml.data import load_dataset
from nasplat.ml.training import evaluate_model
from nasplat.run import run_search
from nasplat.shape import NetShape
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


def random_splits(resolution: int, n: int = 1024) -> SimpleNamespace:
    """Random images and labels of Fashion-MNIST's shape (1 channel, 10 classes)."""
    gen = torch.Generator().manual_seed(0)

    def part(size: int) -> TensorDataset:
        x = torch.randn(size, 1, resolution, resolution, generator=gen)
        return TensorDataset(x, torch.randint(0, 10, (size,), generator=gen))

    shape = NetShape(in_channels=1, input_size=resolution, num_classes=10)
    return SimpleNamespace(train=part(n), val=part(n // 2), shape=shape)


def variant_timers(splits: Any) -> dict[str, Callable[[], None]]:
    """One callable per setting, each running one DARTS step (alpha update then weight update)
    on its own cell supernet at batch 64, or one evaluation pass; built and warmed up once."""
    from search_spaces.cell import CellSpace
    from strategies.darts import Darts  # imported after unshadow() (see main)

    context = SimpleNamespace(splits=splits, device=torch.device("cpu"), prepared=lambda s: None)
    timers: dict[str, Callable[[], None]] = {}
    for name, options in (
        ("plain", {}),
        ("pc4", {"partial_channels": 4}),
        ("channels_last", {"channels_last": True}),
        ("channels_last_direct", {"channels_last": True}),
        ("pc4_channels_last", {"partial_channels": 4, "channels_last": True}),
    ):
        darts = Darts(CellSpace(), **options)
        darts.build(context)
        if name == "channels_last_direct":
            direct_convs(darts.supernet)
        train, val = darts.weight_data.next(), darts.arch_data.next()

        def step(darts: Any = darts, train: Any = train, val: Any = val) -> None:
            darts.arch_step(train, val, darts.lr)
            darts.weight_step(train)

        timers[name] = step
        if name == "plain":
            net, data = darts.supernet, splits.val
            timers["eval_no_grad"] = lambda net=net, data=data: evaluate_model(net, data)

            def inference(net: Any = net, data: Any = data) -> None:
                with torch.inference_mode():
                    evaluate_model(net, data)

            timers["eval_inference_mode"] = inference
    for timer in timers.values():
        timer()  # warm-up
    return timers


def variant_seconds(splits: Any, rounds: int) -> dict[str, float]:
    """Median CPU seconds per call of every setting, interleaved over ``rounds`` rounds (so
    load changes on the shared machine hit all settings alike)."""
    timers = variant_timers(splits)
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            started = time.process_time()
            timer()
            times[name].append(time.process_time() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def variants(rounds: int) -> list[str]:
    """The Markdown table of step settings as ratios against the plain step."""
    lines = [
        f"CPU ({platform.machine()}, {torch.get_num_threads()} torch thread, torch "
        f"{torch.__version__}); cell space, default DARTS supernet (3 layers, 8 channels, the "
        "eight DARTS ops), first order, batch 64; one step = an alpha update then a weight "
        f"update; median CPU seconds of {rounds} interleaved rounds after a warm-up; the "
        "evaluation is the per-epoch pass of the supernet over the validation split "
        "(batches of 512).",
        "",
        "| data | plain s/step | PC-DARTS K=4 | channels_last | channels_last, direct "
        "dilated | both | eval s (no_grad) | eval under inference_mode |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, splits in (
        ("digits 8x8 (val 359)", load_dataset("digits")),
        ("Fashion-MNIST-shaped random 14x14 (val 512)", random_splits(14)),
    ):
        t = variant_seconds(splits, rounds)
        plain, evaluation = t["plain"], t["eval_no_grad"]
        lines.append(
            f"| {label} | {plain:.3f} | {t['pc4'] / plain:.2f}x | "
            f"{t['channels_last'] / plain:.2f}x | {t['channels_last_direct'] / plain:.2f}x | "
            f"{t['pc4_channels_last'] / plain:.2f}x | "
            f"{evaluation:.3f} | "
            f"{t['eval_inference_mode'] / evaluation:.2f}x |"
        )
        print(lines[-1], flush=True)
    return lines


ENAS_FASHION_CELL = (
    "Genotype(normal=[('avg_pool_3x3', 0), ('skip_connect', 1), ('dil_conv_5x5', 1), "
    "('max_pool_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), ('sep_conv_3x3', 1), "
    "('avg_pool_3x3', 3)], normal_concat=[2, 3, 4, 5], reduce=[('sep_conv_5x5', 0), "
    "('avg_pool_3x3', 1), ('skip_connect', 0), ('max_pool_3x3', 1), ('dil_conv_5x5', 0), "
    "('dil_conv_5x5', 1), ('sep_conv_3x3', 3), ('sep_conv_5x5', 4)], reduce_concat=[2, 3, 4, 5])"
)
"""The cell ENAS derived on Fashion-MNIST (docs/benchmarks.md): two strided dilated convs."""
BETA_DARTS_FASHION_CELL = (
    "Genotype(normal=[('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('avg_pool_3x3', 1), "
    "('sep_conv_3x3', 2), ('dil_conv_5x5', 0), ('dil_conv_5x5', 3), ('dil_conv_5x5', 0), "
    "('dil_conv_5x5', 4)], normal_concat=[2, 3, 4, 5], reduce=[('sep_conv_3x3', 0), "
    "('skip_connect', 1), ('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('dil_conv_5x5', 1), "
    "('dil_conv_5x5', 3)], reduce_concat=[2, 3, 4, 5])"
)
"""The cell beta-DARTS derived on Fashion-MNIST (docs/benchmarks.md): six ``dil_conv_5x5``."""
RETRAIN_SETTINGS = (
    "default",
    "channels_last_direct",
    "channels_last_no_own_backward",
    "channels_last",
)
RECIPE_NET = {"stem_stride": 2, "channels": 24}
"""The Fashion-MNIST recipes' retrained network (docs/strategies.md): cells at 14x14, 7x7, 4x4."""


def direct_convs(model: Any) -> int:
    """Make ``model``'s dilated and wide depthwise convs run the direct conv (without their
    faster CPU training paths); returns how many there are."""
    from torch import nn

    from search_spaces.ops.conv import CpuTrainConv2d

    found = [m for m in model.modules() if isinstance(m, CpuTrainConv2d)]
    for module in found:
        module.__class__ = nn.Conv2d
    return len(found)


def no_own_backward(model: Any) -> None:
    """Keep the direct conv's gradients in ``model``'s depthwise convs (zero-inserted kernels
    and the stride-1 path only: the code before ``own_backward``)."""
    from search_spaces.ops.conv import CpuTrainConv2d

    for module in model.modules():
        if isinstance(module, CpuTrainConv2d):
            module.own_backward = False


def retrain_seconds(
    genotype_text: str | None, resolution: int, rounds: int, steps: int = 2, **net: Any
) -> dict[str, float]:
    """Median wall-clock seconds per training step of the ``train`` evaluator's loop (the cell
    space's network with the ``net`` options, batch 128) by setting: NCHW weights,
    channels-last weights with the direct convs, without own gradients, and as shipped."""
    import random

    from nasplat.ml.training import TrainConfig, _start_run
    from search_spaces.cell import CellSpace

    space = CellSpace(**net)
    genotype = (
        space.sample(random.Random(0))
        if genotype_text is None
        else space.from_notation(genotype_text)
    )
    splits = random_splits(resolution, n=128 * steps)
    runs = {}
    for setting in RETRAIN_SETTINGS:
        torch.manual_seed(0)
        model = space.build(genotype, splits.shape)
        if setting == "channels_last_direct":
            direct_convs(model)
        if setting == "channels_last_no_own_backward":
            no_own_backward(model)
        config = TrainConfig(epochs=1, device="cpu", channels_last=setting != "default")
        runs[setting] = _start_run(model, splits, config)
        runs[setting].train_epoch(1)  # warm-up
    times: dict[str, list[float]] = {setting: [] for setting in runs}
    for _ in range(rounds):
        for setting, run in runs.items():
            started = time.perf_counter()
            run.train_epoch(1)
            times[setting].append((time.perf_counter() - started) / steps)
    return {key: statistics.median(values) for key, values in times.items()}


def retrain(rounds: int) -> list[str]:
    """The Markdown table of the retraining step: channels-last weights, and the faster
    training paths of dilated and wide depthwise convs, as ratios against the default."""
    lines = [
        f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}); the `train` evaluator's training loop, batch 128, random "
        "Fashion-MNIST-shaped data; the cell space's default network (5 cells, 16 channels) "
        "and the recipes' (stride-2 stem, 24 channels); median wall-clock seconds per step of "
        f"{rounds} interleaved rounds of 2 steps after a warm-up. `direct`: channels-last "
        "weights with the dilated and wide depthwise convs run directly; `no own backward`: "
        "with zero-inserted kernels and the stride-1 path, but the direct conv's gradients.",
        "",
        "| cell | network | resolution | default s/step | channels_last, direct "
        "| channels_last, no own backward | channels_last |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    rows = [
        ("sampled (seed 0)", None, "default", 28),
        ("sampled (seed 0)", None, "default", 20),
        ("ENAS Fashion-MNIST", ENAS_FASHION_CELL, "default", 28),
        ("ENAS Fashion-MNIST", ENAS_FASHION_CELL, "recipe", 28),
        ("beta-DARTS Fashion-MNIST", BETA_DARTS_FASHION_CELL, "default", 28),
        ("beta-DARTS Fashion-MNIST", BETA_DARTS_FASHION_CELL, "recipe", 28),
    ]
    for label, text, network, resolution in rows:
        net = RECIPE_NET if network == "recipe" else {}
        t = retrain_seconds(text, resolution, rounds, **net)
        base = t["default"]
        lines.append(
            f"| {label} | {network} | {resolution}x{resolution} | {base:.3f} | "
            f"{t['channels_last_direct'] / base:.2f}x | "
            f"{t['channels_last_no_own_backward'] / base:.2f}x | "
            f"{t['channels_last'] / base:.2f}x |"
        )
        print(lines[-1], flush=True)
    return lines


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
    parser.add_argument(
        "--variants", action="store_true", help="only the step settings against the plain step"
    )
    parser.add_argument(
        "--retrain", action="store_true", help="only the retraining step with channels_last"
    )
    parser.add_argument("--rounds", type=int, default=7, help="rounds of --variants, --retrain")
    args = parser.parse_args(argv)
    if args.retrain:
        print("\n".join(retrain(args.rounds)))
        return 0
    if args.variants:
        print("\n".join(variants(args.rounds)))
        return 0
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
