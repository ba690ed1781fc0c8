"""Small studies written straight into a temporary SQLite store through the Store API."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from nasplat.budget import Budget
from nasplat.genotype import Genotype
from nasplat.store import Store

OPS = ("conv_3x3", "sep_conv_3x3", "max_pool_3x3", "skip_connect")


def chain_genotype(rng: random.Random, layers: int = 3) -> Genotype:
    values: dict[str, object] = {}
    for i in range(layers):
        values[f"layer{i}.op"] = rng.choice(OPS)
        values[f"layer{i}.width"] = rng.choice((8, 16))
        values[f"layer{i}.skip"] = rng.choice((False, True))
    return Genotype("chain", values)


@dataclass
class Built:
    store: Store
    url: str
    study: str
    other: str


def add_trials(store: Store, study: str, count: int, seed: int = 0, start: int = 0) -> None:
    """``count`` finished trials: mostly COMPLETE (with params/flops/latency), every 7th PRUNED
    after 2 steps, every 11th FAILED; two workers; learning curves for each."""
    record = store.get_study(study)
    rng = random.Random(seed)
    for k in range(start, start + count):
        genotype = chain_genotype(rng)
        worker = f"w{k % 2}"
        trial = store.create_trial(record.id, genotype, Budget(epochs=3), worker=worker)
        acc = 0.5 + 0.4 * rng.random()
        steps = 2 if k % 7 == 3 else 3
        for step in range(steps):
            store.report_intermediate(trial.id, step, acc * (step + 1) / 3)
        if k % 11 == 5:
            store.mark_retry(trial.id, "worker died")
            store.finish_trial(trial.id, state="FAILED", error="RuntimeError: boom")
        elif k % 7 == 3:
            store.finish_trial(trial.id, state="PRUNED", value=acc * 2 / 3)
        else:
            params = sum(int(genotype[f"layer{i}.width"]) for i in range(3)) * 100.0
            store.finish_trial(
                trial.id,
                state="COMPLETE",
                value=acc,
                metrics={
                    "val_acc": acc,
                    "params": params,
                    "flops": params * 64,
                    "latency_ms": params / 1000 + rng.random(),
                },
            )


def build(tmp_path: Path, count: int = 24) -> Built:
    url = "sqlite:///" + str(tmp_path / "s.db")
    store = Store(url)
    objectives = [("val_acc", "maximize")]
    for name in ("alpha-study", "beta-study"):
        store.create_study(
            name,
            space="chain",
            strategy="random",
            evaluator="train",
            objectives=objectives,
            config={},
        )
    add_trials(store, "alpha-study", count, seed=1)
    add_trials(store, "beta-study", 8, seed=2)
    study = store.get_study("alpha-study")
    # a fidelity ladder: three architectures at rung 0, the best two at rung 1
    rng = random.Random(3)
    ladder = [chain_genotype(rng) for _ in range(3)]
    for rung, (epochs, chosen) in enumerate(((1, ladder), (3, ladder[:2]))):
        for i, genotype in enumerate(chosen):
            trial = store.create_trial(
                study.id, genotype, Budget(epochs=epochs), tag=f"rung-{rung}"
            )
            store.finish_trial(trial.id, state="COMPLETE", value=0.3 + 0.1 * i + 0.2 * rung)
    # a one-shot trial with architecture weights per epoch (DARTS convention)
    oneshot = store.create_trial(study.id, chain_genotype(rng), Budget(epochs=3), tag="oneshot")
    for step in range(3):
        for edge in ("normal.n2.e0", "normal.n2.e1"):
            logits = {"none": 1.0 - step, "sep_conv_3x3": 0.5 * step, "skip_connect": 0.2}
            total = sum(math.exp(v) for v in logits.values())
            for op, v in logits.items():
                store.report_intermediate(
                    oneshot.id, step, math.exp(v) / total, key=f"alpha.{edge}.{op}"
                )
    store.finish_trial(oneshot.id, state="COMPLETE", value=0.1)
    # one trial still running
    store.create_trial(study.id, chain_genotype(rng), Budget(epochs=3), worker="w0")
    return Built(store, url, "alpha-study", "beta-study")
