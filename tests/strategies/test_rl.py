"""The ``rl`` strategy (REINFORCE) and its reusable LSTM controller."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from toy import (
    ToySpace,
    check_beats_random,
    check_deterministic,
    check_exact_resume,
    check_failures_and_order,
    check_minimize,
    objective,
    observe,
)

from nasplat.errors import ConfigError
from nasplat.registry import STRATEGIES
from strategies.rl import Controller, ReinforceStrategy, from_jsonable, to_jsonable


def test_registered() -> None:
    assert STRATEGIES.get("rl") is ReinforceStrategy
    assert "REINFORCE" in STRATEGIES.meta("rl")["description"]


def test_beats_random_search() -> None:
    check_beats_random(ReinforceStrategy, n=80, seeds=range(4), margin=0.8)


def test_minimize() -> None:
    check_minimize(ReinforceStrategy, n=80, seeds=range(3), margin=0.8)


def test_deterministic_for_a_seed() -> None:
    check_deterministic(ReinforceStrategy)


def test_exact_resume_through_json() -> None:
    check_exact_resume(ReinforceStrategy)


def test_failed_and_out_of_order_results() -> None:
    strategy = check_failures_and_order(ReinforceStrategy)
    assert isinstance(strategy, ReinforceStrategy)
    assert strategy.updates > 0


def test_failed_trial_gets_worst_reward_or_is_skipped() -> None:
    strategy = ReinforceStrategy(ToySpace(), batch_size=10)
    a, b = strategy.ask(), strategy.ask()
    strategy.tell(observe(a, None))  # nothing succeeded yet: nothing to compare with
    assert strategy.state_dict()["batch"] == []
    strategy.tell(observe(b, 2.0))
    strategy.tell(observe(a, 5.0))
    strategy.tell(observe(b, None))
    assert [reward for _, reward in strategy.state_dict()["batch"]] == [2.0, 5.0, 2.0]


def test_update_favours_the_better_genotype() -> None:
    # Adam moves every weight by about lr, so only the log-probability *ratio* of the
    # rewarded and the unrewarded sample is sure to grow after one small step.
    strategy = ReinforceStrategy(ToySpace(), batch_size=2, lr=1e-3)
    good, bad = strategy.ask(), strategy.ask()
    assert good != bad

    def ratio() -> float:
        (good_lp, good_h), (bad_lp, bad_h) = strategy.log_prob(good), strategy.log_prob(bad)
        assert good_lp < 0 < good_h and bad_lp < 0 < bad_h
        return good_lp - bad_lp

    before = ratio()
    strategy.tell(observe(good, 1.0))
    strategy.tell(observe(bad, 0.0))
    assert strategy.updates == 1
    assert ratio() > before


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        ReinforceStrategy(ToySpace(), batch_size=0)
    with pytest.raises(ConfigError):
        ReinforceStrategy(ToySpace(), baseline_decay=1.0)
    with pytest.raises(ConfigError):
        ReinforceStrategy(ToySpace(), direction="up")
    with pytest.raises(TypeError):
        ReinforceStrategy(ToySpace(), learning_rate=0.1)  # type: ignore[call-arg]


def test_controller_is_a_distribution_over_all_genotypes() -> None:
    controller = Controller([2, 3, 1], hidden=8, tanh_constant=2.5, temperature=5.0)
    every = torch.tensor(list(itertools.product(range(2), range(3), range(1))))
    log_prob, entropy = controller.evaluate(every)
    assert math.isclose(log_prob.exp().sum().item(), 1.0, rel_tol=1e-5)
    assert entropy.shape == (6,) and (entropy > 0).all()


def test_controller_sample_matches_log_prob_and_is_differentiable() -> None:
    controller = Controller([4, 4, 4], hidden=16, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    indices, log_prob, entropy = controller.sample(generator)
    assert indices.shape == (3,) and all(0 <= i < 4 for i in indices.tolist())
    assert torch.allclose(controller.log_prob(indices), log_prob)
    (log_prob + entropy).backward()
    assert controller.start.grad is not None


def test_controller_leaves_global_torch_rng_alone() -> None:
    state = torch.random.get_rng_state()
    controller = Controller([3, 5], generator=torch.Generator().manual_seed(0))
    controller.sample(torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_optimizer_state_round_trips_exactly_through_json() -> None:
    strategy = ReinforceStrategy(ToySpace(), batch_size=2)
    for _ in range(4):
        genotype = strategy.ask()
        strategy.tell(observe(genotype, objective(genotype)))
    original = strategy.optimizer.state_dict()
    restored = from_jsonable(json.loads(json.dumps(to_jsonable(original))))
    assert restored["param_groups"] == original["param_groups"]
    for key, slots in original["state"].items():
        for name, tensor in slots.items():
            assert restored["state"][key][name].dtype == tensor.dtype
            assert torch.equal(restored["state"][key][name], tensor)
