"""BatchNorm re-estimation before validation (``recalibrate_batchnorm``, ``bn_recalibration``)."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from nasplat.budget import Budget
from nasplat.errors import ConfigError
from nasplat.evaluator import Reporter
from nasplat.ml.data import load_dataset
from nasplat.ml.training import TrainConfig, recalibrate_batchnorm, train_model
from nasplat.registry import EVALUATORS, SPACES, load_builtins


class Recorder(nn.Module):
    """Records the inputs of the BatchNorm layer it precedes."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return x


def bn_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        Recorder(),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 3),
    )


def test_running_statistics_become_the_train_batches_statistics() -> None:
    net = bn_net()
    bn, recorder = net[2], net[1]
    bn.running_mean.fill_(5.0)  # stale statistics
    bn.running_var.fill_(9.0)
    params = {k: v.clone() for k, v in net.named_parameters()}
    batches = [torch.randn(16, 1, 8, 8) * 2 + 1 for _ in range(4)]
    net.eval()
    used = recalibrate_batchnorm(net, batches)
    assert used == 4
    seen = torch.stack(recorder.seen)  # (batches, N, C, H, W), equal-sized batches
    # cumulative average of the per-batch statistics: the mean over all batches' inputs
    expected_mean = seen.mean(dim=(0, 1, 3, 4))
    per_batch_var = seen.var(dim=(1, 3, 4), unbiased=True)  # (batches, C)
    torch.testing.assert_close(bn.running_mean, expected_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, per_batch_var.mean(0), rtol=1e-4, atol=1e-5)
    assert not net.training  # mode restored
    assert bn.momentum == 0.1  # momentum restored
    assert all(torch.equal(params[k], v) for k, v in net.named_parameters())
    assert all(p.grad is None for p in net.parameters())


def test_a_custom_forward_and_a_model_without_batchnorm() -> None:
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 3), nn.Dropout(0.5))
    calls = []
    assert recalibrate_batchnorm(plain, [torch.randn(4, 1, 8, 8)], forward=calls.append) == 0
    assert calls == [] and plain.training  # nothing run, nothing changed
    net = bn_net()
    net[2].momentum = None
    used = recalibrate_batchnorm(net, [torch.randn(4, 1, 8, 8)], forward=lambda x: calls.append(x))
    assert used == 1 and len(calls) == 1 and net[2].momentum is None


def test_train_model_without_batchnorm_is_unchanged_by_the_option() -> None:
    splits = load_dataset("synthetic", n=200, channels=1, size=8, classes=3, noise=1.0)

    def plain() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))

    config = {"epochs": 2, "batch_size": 32, "device": "cpu"}
    a = train_model(plain(), splits, TrainConfig(**config, bn_recalibration=0))
    b = train_model(plain(), splits, TrainConfig(**config, bn_recalibration=10))
    assert a.history[-1]["val_acc"] == b.history[-1]["val_acc"]
    assert a.val_loss == b.val_loss


def test_recalibration_changes_only_batchnorm_buffers_and_is_deterministic() -> None:
    splits = load_dataset("synthetic", n=200, channels=1, size=8, classes=3, noise=1.0)
    config = {"epochs": 2, "batch_size": 32, "device": "cpu"}
    runs = {}
    for n in (0, 3, 3):
        net = bn_net()
        result = train_model(net, splits, TrainConfig(**config, bn_recalibration=n))
        runs.setdefault(n, []).append((result, net.state_dict()))
    (off, off_state), (on, on_state), (again, again_state) = runs[0][0], *runs[3]
    # the training itself (the parameters, the train metrics) does not depend on the option
    for key, value in off_state.items():
        same = torch.equal(value, on_state[key])
        assert same == (not key.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert off.train_loss == on.train_loss
    assert on.val_acc == again.val_acc  # deterministic for a seed
    assert all(torch.equal(on_state[k], again_state[k]) for k in on_state)


def test_config_rejects_negative_batches() -> None:
    with pytest.raises(ConfigError, match="bn_recalibration must be >= 0"):
        TrainConfig(bn_recalibration=-1)


def test_a_two_epoch_digits_trial_is_no_longer_at_chance() -> None:
    """The README's short trial (chain space, digits, 2 epochs): stale statistics scored this
    architecture at chance (0.10) while it fit the training data."""
    load_builtins()
    space = SPACES.get("chain")()
    rng = random.Random(0)
    genotype = [space.sample(rng) for _ in range(2)][1]
    results = {}
    for n in (0, 10):
        ev = EVALUATORS.get("train")(space, epochs=2, keep_weights=False, bn_recalibration=n)
        metrics = ev.evaluate(genotype, ev.resolve_budget(Budget()), Reporter()).metrics
        results[n] = metrics
    assert results[0]["val_acc"] < 0.2  # the bug this guards against: chance with stale stats
    assert results[10]["val_acc"] > 0.8
    assert results[10]["test_acc"] > 0.8
    assert results[0]["train_acc"] == results[10]["train_acc"]  # same training
