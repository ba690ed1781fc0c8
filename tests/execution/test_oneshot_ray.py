"""Data-parallel supernet training on Ray Train (gloo, 2 CPU workers): architecture parameters
stay identical on every rank, and every rank derives the same genotype."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from nasplat_support import TinySupernet
from torch import nn

from nasplat.config import SearchConfig
from nasplat.run.oneshot_ray import (
    DataParallel,
    RankSpec,
    run_data_parallel,
    search_data_parallel,
)

ray_cloudpickle = pytest.importorskip("ray.cloudpickle")
# the per-rank functions below travel by value: this test module is not importable on workers
ray_cloudpickle.register_pickle_by_value(sys.modules[__name__])


def train_tiny(dp: DataParallel, config: dict[str, Any]) -> dict[str, Any]:
    """DARTS-style alternating steps on this rank's shard, with and without gradient sync."""
    x = torch.randn(512, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] * 2 + x[:, 1].abs() > 0.5).long() + (x[:, 2] > 1).long()
    shard = dp.shard(torch.utils.data.TensorDataset(x, y))
    out: dict[str, Any] = {"data_sum": float(shard.tensors[0].sum())}
    for sync in (True, False):
        torch.manual_seed(100 + dp.rank)  # different initial weights on every rank ...
        net = TinySupernet()
        if sync:
            dp.broadcast_module(net)  # ... until rank 0's are broadcast
        owner = SimpleNamespace(
            weights=torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9),
            arch=torch.optim.Adam(net.arch_parameters(), lr=0.05),
        )
        if sync:
            assert dp.sync_optimizers(owner) == 2
        sx, sy = shard.tensors
        for step in range(config["steps"]):
            for optimizer, params, rows in (
                (owner.arch, net.arch_parameters(), slice(0, 32)),
                (owner.weights, net.weight_parameters(), slice(32, 64)),
            ):
                index = (torch.arange(64) + 64 * step) % len(sx)
                batch_x, batch_y = sx[index][rows], sy[index][rows]
                loss = nn.functional.cross_entropy(net(batch_x), batch_y)
                grads = torch.autograd.grad(loss, params)
                for p, g in zip(params, grads, strict=True):
                    p.grad = g  # as DARTS does: autograd.grad, then .grad, then step
                optimizer.step()
        out["synced" if sync else "unsynced"] = {
            "alpha": net.alpha.detach().tolist(),
            "genotype": net.derive(),
        }
    return out


@pytest.mark.usefixtures("ray_session")
@pytest.mark.slow
@pytest.mark.ray
def test_arch_parameters_stay_identical_across_two_ranks() -> None:
    ranks = run_data_parallel(train_tiny, {"steps": 15}, workers=2)
    assert len(ranks) == 2
    assert ranks[0]["data_sum"] != ranks[1]["data_sum"]  # each rank trains on its own shard
    synced = [r["synced"] for r in ranks]
    assert synced[0]["alpha"] == synced[1]["alpha"] != [0.0, 0.0]  # bit for bit, and trained
    assert synced[0]["genotype"] == synced[1]["genotype"]
    unsynced = [r["unsynced"] for r in ranks]  # the control: without sync the ranks drift
    assert unsynced[0]["alpha"] != unsynced[1]["alpha"]


@pytest.mark.usefixtures("ray_session")
@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("strategy", ["darts", "enas"])
def test_real_nb201_supernet_search_derives_one_genotype(tmp_path: Path, strategy: str) -> None:
    """The unchanged DARTS/ENAS strategies on the nb201 supernet, data-parallel on 2 ranks."""
    from nasplat.run import prepare
    from nasplat.run.oneshot import supernet_trial
    from nasplat.store import Store

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    config = SearchConfig(
        space="nb201",
        strategy=strategy,
        space_options={"cells_per_stage": 1, "channels": 4},
        strategy_options={"epochs": 2, "max_batches": 3, "batch_size": 16},
        executor="ray",
        executor_options={"workers": 2},
        device="cpu",
    )
    run = prepare(config, store)
    trial, _ = supernet_trial(run)
    spec = RankSpec(store.url, run.study.name, trial.id)
    genotype = search_data_parallel(spec, workers=2)  # raises when the ranks disagree
    run.space.validate(genotype)
    values = store.intermediate_series(trial.id)
    assert [step for step, _ in values["value"]] == [1, 2]  # rank 0 reported each epoch once
    assert store.load_checkpoint(run.study.id)["one_shot"]["epoch"] == 2
    store.close()


@pytest.mark.slow
@pytest.mark.ray
def test_darts_on_ray_from_the_command_line(tmp_path: Path) -> None:
    """`--strategy darts --executor ray --workers 2` end to end, with the default relative store."""
    import json

    from tests.conftest import run_cli

    out = run_cli(
        "search", "--space", "nb201", "--strategy", "darts", "--executor", "ray", "--workers", "2",
        "--space-opt", "cells_per_stage=1", "--space-opt", "channels=4",
        "--strategy-opt", "epochs=2", "--strategy-opt", "max_batches=2", "--retrain-epochs", "1",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(
        run_cli("trials", "--study", "nb201-darts", "--format", "json", cwd=tmp_path).stdout
    )
    assert [(r["tag"], r["state"]) for r in rows] == [
        ("supernet", "COMPLETE"),
        ("retrain", "COMPLETE"),
    ]
    assert rows[0]["genotype"] == rows[1]["genotype"]  # the derived genotype is what was retrained
