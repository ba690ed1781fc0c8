"""The ``enas`` one-shot strategy: controller-sampled paths, end-to-end search, exact resume."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from oneshot_helpers import (
    TINY_NB201,
    check_end_to_end,
    check_exact_resume,
    epochs_recorded,
    run_search,
    tiny_config,
)

from nasplat.errors import ConfigError
from nasplat.ml.data import load_dataset
from nasplat.registry import STRATEGIES
from nasplat.store import Store
from search_spaces.nb201 import NB201Space
from strategies.enas import Enas
from strategies.oneshot_common import split_halves
from strategies.rl import Controller


def test_registered_and_validated() -> None:
    assert STRATEGIES.get("enas") is Enas
    with pytest.raises(ConfigError, match="controller_steps must be >= 1"):
        Enas(NB201Space(), controller_steps=0)


def test_controller_greedy_decoding_takes_the_most_likely_choice() -> None:
    controller = Controller([5], generator=torch.Generator().manual_seed(1), hidden=8)
    probs = [controller.log_prob([i]).exp().item() for i in range(5)]
    assert controller.greedy().tolist() == [max(range(5), key=probs.__getitem__)]


def built(**options: object) -> Enas:
    splits = load_dataset("digits", seed=0)
    strategy = Enas(NB201Space(**TINY_NB201), net={}, batch_size=32, max_batches=3, **options)
    strategy.build(
        SimpleNamespace(splits=splits, device=torch.device("cpu"), prepared=lambda s: None)
    )
    return strategy


def test_controller_step_follows_reinforce_with_baseline() -> None:
    strategy = built(controller_steps=3, baseline_decay=0.5, entropy_weight=0.0)
    before = [p.detach().clone() for p in strategy.controller.parameters()]
    rewards, entropies = strategy.train_controller()
    assert len(rewards) == 3 and all(0.0 <= r <= 1.0 for r in rewards)
    assert all(e > 0 for e in entropies)
    expected = rewards[0]
    for r in rewards[1:]:  # baseline starts at the first reward, then decays towards each one
        expected -= 0.5 * (expected - r)
    assert strategy.baseline == pytest.approx(expected)
    changed = [
        not torch.equal(b, p) for b, p in zip(before, strategy.controller.parameters(), strict=True)
    ]
    assert any(changed)


def test_shared_accuracy_leaves_batchnorm_statistics_alone() -> None:
    strategy = built()
    genotype = strategy.derived()
    before = {k: v.clone() for k, v in strategy.supernet.state_dict().items()}
    acc = strategy.shared_accuracy(genotype, load_dataset("digits", seed=0).val)
    assert 0.0 <= acc <= 1.0
    after = strategy.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_runs_end_to_end_on_digits(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(sqlite_url)
    picked: list[Enas] = []
    original = Enas.final_genotype

    def final_genotype(self: Enas, context: object) -> object:
        picked.append(self)
        return original(self, context)

    monkeypatch.setattr(Enas, "final_genotype", final_genotype)
    result = run_search(tiny_config("enas", controller_steps=3, final_samples=4), store)
    supernet, _ = check_end_to_end(result, store, epochs=2)
    series = store.intermediate_series(supernet.id)
    assert {"value", "reward", "baseline", "entropy", "train_loss"} <= set(series)
    # the retrained genotype is the best-ranked of the sampled children, by shared weights
    strategy = picked[0]
    ranking = strategy.final_ranking
    assert 1 <= len(ranking) <= 4
    assert [acc for acc, _ in ranking] == sorted((acc for acc, _ in ranking), reverse=True)
    assert supernet.genotype == ranking[0][1]
    _, held_out = split_halves(load_dataset("digits", seed=0).train, 0)
    assert strategy.shared_accuracy(ranking[0][1], held_out) == ranking[0][0]


@pytest.mark.parametrize("space", ["cell", "chain"])
def test_runs_on_cell_and_chain(sqlite_url: str, space: str) -> None:
    store = Store(sqlite_url)
    options = {"epochs": 1, "max_batches": 1, "net": {}, "controller_steps": 2, "final_samples": 2}
    result = run_search(tiny_config("enas", space, **options), store)
    check_end_to_end(result, store, epochs=1)


def test_killed_search_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = check_exact_resume(
        lambda name: f"sqlite:///{tmp_path / name}.db",
        monkeypatch,
        lambda: tiny_config("enas", epochs=4, controller_steps=2, final_samples=3),
    )
    assert "controller_optimizer" in str(state)


def test_epochs_are_recorded_once(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = epochs_recorded(monkeypatch)
    run_search(tiny_config("enas", controller_steps=1, final_samples=1), Store(sqlite_url))
    assert seen == [1, 2]


def test_a_child_is_evaluated_with_its_own_reestimated_batchnorm_statistics() -> None:
    strategy = built()
    genotype = strategy.derived()
    val = load_dataset("digits", seed=0).val
    assert len(strategy.calibration) == 10 and all(len(b) == 32 for b in strategy.calibration)
    before = {k: v.clone() for k, v in strategy.supernet.state_dict().items()}
    acc = strategy.shared_accuracy(genotype, val)
    assert strategy.shared_accuracy(genotype, val) == acc  # deterministic
    after = strategy.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # supernet untouched
    assert strategy.supernet.training
    # the same evaluation by hand: re-estimate on the calibration batches, then eval mode
    from nasplat.ml.training import recalibrate_batchnorm

    net = strategy.supernet
    with torch.no_grad():
        recalibrate_batchnorm(net, strategy.calibration, lambda x: net(x, genotype=genotype))
        net.eval()
        x, y = val.tensors
        expected = (net(x, genotype=genotype).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(expected, abs=1e-6)
    off = built(bn_recalibration=0)
    assert off.calibration == []
    with pytest.raises(ConfigError, match="bn_recalibration"):
        built(bn_recalibration=-1)
