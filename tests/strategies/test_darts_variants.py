"""DARTS's PC-DARTS and beta-DARTS options: validation, the regulariser, end-to-end, resume."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from oneshot_helpers import (
    TINY_NB201,
    check_end_to_end,
    check_exact_resume,
    run_search,
    tiny_config,
)

from nasplat.errors import ConfigError
from nasplat.ml.data import load_dataset
from nasplat.registry import STRATEGIES
from nasplat.store import Store
from search_spaces.nb201 import NB201Space
from strategies.darts import Darts, beta_decay_loss
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"partial_channels": 0}, "partial_channels must be an integer >= 1, got 0"),
        ({"partial_channels": 2.5}, "partial_channels must be an integer >= 1, got 2.5"),
        ({"edge_normalization": "yes"}, "edge_normalization must be true, false or null"),
        ({"regularizer": "beta"}, "regularizer must be one of none, beta-decay, got 'beta'"),
        ({"regularizer_weight": -1}, "regularizer_weight must be a number >= 0, got -1"),
        ({"channels_last": "yes"}, "channels_last must be true or false, got 'yes'"),
    ],
)
def test_bad_values_are_one_config_error_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        STRATEGIES.create("darts", NB201Space(), **options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_edge_normalization_follows_partial_channels_unless_given() -> None:
    assert Darts(NB201Space()).supernet_options() == {}
    assert Darts(NB201Space(), partial_channels=4).supernet_options() == {
        "partial_channels": 4,
        "edge_normalization": True,
    }
    pc_only = Darts(NB201Space(), partial_channels=4, edge_normalization=False)
    assert pc_only.supernet_options() == {"partial_channels": 4}
    assert Darts(NB201Space(), edge_normalization=True).supernet_options() == {
        "edge_normalization": True
    }


def test_list_options_shows_the_new_options(tmp_path: Path) -> None:
    done = run_cli("list", "options", "darts", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    names = ("partial_channels", "edge_normalization", "regularizer", "regularizer_weight")
    for name in (*names, "channels_last"):
        assert name in done.stdout


def entropy(alpha: torch.Tensor) -> float:
    p = torch.softmax(alpha, dim=0)
    return float(-(p * p.log()).sum())


def test_beta_decay_gradient_is_each_edges_softmax_and_flattens_it() -> None:
    gen = torch.Generator().manual_seed(0)
    alphas = [torch.nn.Parameter(2 * torch.randn(5, generator=gen)) for _ in range(4)]
    loss = beta_decay_loss(alphas)  # type: ignore[arg-type]
    grads = torch.autograd.grad(loss, alphas)
    for alpha, grad in zip(alphas, grads, strict=True):
        assert torch.allclose(grad, torch.softmax(alpha.detach(), 0) / len(alphas))
        # a descent step lowers the largest alphas most: every edge's softmax gets flatter
        stepped = alpha.detach() - 1.0 * grad
        assert entropy(stepped) > entropy(alpha.detach())
        assert torch.softmax(stepped, 0).max() < torch.softmax(alpha.detach(), 0).max()


def tiny_darts(**options: Any) -> tuple[Darts, tuple, tuple]:
    splits = load_dataset("digits", seed=0)
    strategy = Darts(NB201Space(**TINY_NB201), net={}, batch_size=16, **options)
    strategy.build(
        SimpleNamespace(splits=splits, device=torch.device("cpu"), prepared=lambda s: None)
    )
    x, y = splits.train.tensors
    return strategy, (x[:16], y[:16]), (x[16:32], y[16:32])


def test_arch_gradient_adds_the_weighted_regulariser_to_the_alphas_only() -> None:
    torch.manual_seed(0)
    strategy, train, val = tiny_darts(regularizer="beta-decay", partial_channels=2)
    supernet = strategy.supernet
    with torch.no_grad():
        for alpha in supernet.alpha_parameters():
            alpha.normal_()
    plain, _ = strategy.arch_gradient(train, val, 0.1)  # reg_weight 0 before epoch 1
    strategy.reg_weight = 7.0
    regularised, _ = strategy.arch_gradient(train, val, 0.1)
    alphas = supernet.alpha_parameters()
    n = len(alphas)
    for i, param in enumerate(supernet.arch_parameters()):
        difference = regularised[i] - plain[i]
        if i < n:  # an alpha: + weight * softmax / edges
            expected = 7.0 * torch.softmax(param.detach(), 0) / n
            assert torch.allclose(difference, expected, atol=1e-6)
        else:  # a beta of the edge normalisation: untouched
            assert torch.equal(difference, torch.zeros_like(difference))


def test_beta_decay_keeps_the_alphas_from_concentrating() -> None:
    """The same 25 architecture steps from the same start: without the regulariser the
    strongest op's weight grows on every edge; a heavy regulariser holds it near uniform."""

    def max_weight(weight: float) -> float:
        torch.manual_seed(0)
        strategy, train, val = tiny_darts(regularizer="beta-decay", arch_lr=0.03)
        strategy.setup(None)
        strategy.reg_weight = weight
        for _ in range(25):
            strategy.arch_step(train, val, 0.1)
        with torch.no_grad():
            alphas = strategy.supernet.alpha_parameters()
            return float(torch.stack([torch.softmax(a, 0).max() for a in alphas]).mean())

    plain, regularised = max_weight(0.0), max_weight(100.0)
    assert plain > 0.3  # uniform is 0.2 on NB201's five ops
    assert regularised < 0.25
    assert regularised < plain


def test_channels_last_takes_the_same_step() -> None:
    def one_step(channels_last: bool) -> tuple[list[torch.Tensor], Darts]:
        torch.manual_seed(0)
        strategy, train, val = tiny_darts(channels_last=channels_last)
        strategy.arch_step(train, val, 0.1)
        strategy.weight_step(train)
        return [p.detach() for p in strategy.supernet.parameters()], strategy

    plain, _ = one_step(False)
    fast, strategy = one_step(True)
    convs = [p for p in strategy.supernet.weight_parameters() if p.ndim == 4 and p.shape[1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)
    for a, b in zip(plain, fast, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_pc_and_beta_darts_end_to_end(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    config = tiny_config(
        "darts",
        epochs=3,
        partial_channels=2,
        regularizer="beta-decay",
        regularizer_weight=6.0,
    )
    result = run_search(config, store)
    supernet, _ = check_end_to_end(result, store, epochs=3)
    series = store.intermediate_series(supernet.id)
    assert [w for _, w in series["regularizer_weight"]] == pytest.approx([0.0, 2.0, 4.0])
    space = NB201Space(**TINY_NB201)
    betas = {k for k in series if k.startswith("beta.")}
    assert betas == {f"beta.{edge}" for edge in space.edge_candidates()}
    for j in (2, 3):  # a node's edge weights sum to 1
        total = sum(dict(series[f"beta.edge.{j}.{i}"])[3] for i in range(j))
        assert total == pytest.approx(1.0)


def test_pc_and_beta_darts_resume_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = check_exact_resume(
        lambda name: f"sqlite:///{tmp_path / name}.db",
        monkeypatch,
        lambda: tiny_config(
            "darts", epochs=4, partial_channels=2, regularizer="beta-decay", channels_last=True
        ),
    )
    assert "edge_norm.betas" in str(state)
