"""Zero-cost proxies and the proxy evaluator."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import torch

from evaluators.proxy import ProxyEvaluator
from evaluators.zero_cost import score
from nasplat.budget import Budget
from nasplat.errors import ConfigError, UnknownNameError
from nasplat.evaluator import Reporter
from nasplat.registry import PROXIES

EXPECTED = {"synflow", "naswot", "jacov", "grad_norm", "snip", "params", "flops"}


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(16, 1, 8, 8, generator=generator), torch.arange(16) % 10


def test_every_proxy_is_registered_and_finite(tiny: Any) -> None:
    assert EXPECTED <= set(PROXIES.names())
    model = tiny.build(tiny.sample(random.Random(0)))
    x, y = batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name in PROXIES.names():
        value, seconds = score(name, model, x, y)
        assert math.isfinite(value) and seconds >= 0, name
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # scored copies


def test_synflow_ignores_the_data_and_grows_with_width() -> None:
    from search_spaces.chain import ChainSpace

    x, y = batch()
    values = []
    for width in (4, 16):
        space = ChainSpace(layers=2, widths=[width], ops=["conv_3x3"], skip=False)
        torch.manual_seed(0)
        model = space.build(space.sample(random.Random(0)))
        a, _ = score("synflow", model, x, y)
        b, _ = score("synflow", model, torch.randn_like(x), y)
        assert a == pytest.approx(b)
        values.append(a)
    assert values[1] > values[0]


def test_naswot_is_the_logdet_of_the_hamming_kernel() -> None:
    from torch import nn

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(3, 4))
    x = torch.tensor([[1.0, -1, -1, 0], [-1, 1, -1, 0], [-1, -1, 1, 0]]).reshape(3, 1, 2, 2)
    value, _ = score("naswot", model, x, torch.zeros(3, dtype=torch.long))
    # codes are one-hot: K = 3 on the diagonal, 1 elsewhere -> det = 20
    assert value == pytest.approx(math.log(20.0))


def test_proxy_evaluator_metrics_and_budget(tiny: Any) -> None:
    evaluator = ProxyEvaluator(tiny, proxy="snip", batch_size=32)
    budget = evaluator.resolve_budget(Budget(epochs=5))
    assert budget.epochs == 0 and budget.extra == {"proxy": "snip", "batch_size": 32}
    result = evaluator.evaluate(tiny.sample(random.Random(0)), budget, Reporter())
    assert result.metrics["snip"] > 0 and result.metrics["params"] > 0
    assert "val_acc" not in result.metrics  # a score under its own name, not an accuracy
    assert evaluator.default_objective() == ("snip", "maximize")
    again = ProxyEvaluator(tiny, proxy="snip", batch_size=32).evaluate(
        tiny.sample(random.Random(0)), budget, Reporter()
    )
    assert again.metrics["snip"] == result.metrics["snip"]  # same seed, same batch: deterministic


def test_proxy_evaluator_errors(tiny: Any) -> None:
    with pytest.raises(UnknownNameError, match="unknown proxy 'zen'; known: flops"):
        ProxyEvaluator(tiny, proxy="zen")
    with pytest.raises(ConfigError, match="batch_size must be >= 2"):
        ProxyEvaluator(tiny, batch_size=1)
    with pytest.raises(ConfigError, match="unknown option"):
        ProxyEvaluator(tiny, lr=0.1)
