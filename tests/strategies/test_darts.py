"""The ``darts`` one-shot strategy: hypergradient, end-to-end search, exact resume."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from oneshot_helpers import (
    TINY_NB201,
    check_end_to_end,
    check_exact_resume,
    run_search,
    tiny_config,
)

import nasplat.run.oneshot as oneshot_module
from nasplat.errors import ConfigError
from nasplat.ml.data import load_dataset
from nasplat.registry import STRATEGIES
from nasplat.run.oneshot import OneShotContext
from nasplat.store import Store
from search_spaces.nb201 import NB201Space
from strategies.darts import Darts
from tests.conftest import run_cli


def test_registered_and_validated() -> None:
    assert STRATEGIES.get("darts") is Darts
    with pytest.raises(ConfigError, match="order must be 1 or 2"):
        Darts(NB201Space(), order=3)
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        Darts(NB201Space(), epochs=0)


def tiny_darts(order: int) -> tuple[Darts, tuple, tuple]:
    """A double-precision DARTS on a tiny nb201 supernet after one weight step (so SGD has a
    momentum buffer), with a training and a validation batch."""
    splits = load_dataset("digits", seed=0)
    # a small finite-difference epsilon: at the paper's 0.01 the truncation error of the
    # Hessian-vector product dominates on this 4-channel network (BatchNorm over 16 samples)
    strategy = Darts(NB201Space(**TINY_NB201), order=order, net={}, batch_size=16, epsilon=1e-5)
    strategy.build(
        SimpleNamespace(splits=splits, device=torch.device("cpu"), prepared=lambda s: None)
    )
    strategy.supernet.double()
    strategy.setup(None)
    x, y = splits.train.tensors
    train, val = (x[:16].double(), y[:16]), (x[16:32].double(), y[16:32])
    strategy.weight_step(train)
    return strategy, train, val


def unrolled_val_loss(strategy: Darts, train: tuple, val: tuple, xi: float) -> float:
    """L_val(w - xi * (momentum * buf + grad_w L_train(w, alpha) + wd * w), alpha), weights
    restored afterwards: what the second-order hypergradient differentiates."""
    net = strategy.supernet
    weights = net.weight_parameters()
    saved = [w.detach().clone() for w in weights]
    loss = F.cross_entropy(net(train[0]), train[1])
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    with torch.no_grad():
        for w, g in zip(weights, grads, strict=True):
            buf = strategy.weight_optimizer.state[w]["momentum_buffer"]
            g = torch.zeros_like(w) if g is None else g
            w.sub_(xi * (strategy.momentum * buf + g + strategy.weight_decay * w))
        value = F.cross_entropy(net(val[0]), val[1]).item()
        for w, s in zip(weights, saved, strict=True):
            w.copy_(s)
    return value


def test_second_order_hypergradient_matches_finite_differences() -> None:
    torch.manual_seed(0)
    strategy, train, val = tiny_darts(order=2)
    xi = 0.5  # large enough that the second-order term is far above the check's error
    analytic, _ = strategy.hypergradient(train, val, xi)
    analytic = torch.cat([g.flatten() for g in analytic])
    alphas = strategy.supernet.arch_parameters()
    numeric = torch.zeros_like(analytic)
    h, k = 1e-5, 0
    for alpha in alphas:
        for i in range(alpha.numel()):
            values = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    alpha.view(-1)[i] += sign * h
                values.append(unrolled_val_loss(strategy, train, val, xi))
                with torch.no_grad():
                    alpha.view(-1)[i] -= sign * h
            numeric[k] = (values[0] - values[1]) / (2 * h)
            k += 1
    first_order, _ = Darts.hypergradient(
        SimpleNamespace(order=1, supernet=strategy.supernet, loss=strategy.loss), train, val, xi
    )
    first_order = torch.cat([g.flatten() for g in first_order])
    error = (analytic - numeric).norm()
    assert error <= 1e-3 * numeric.norm(), (error, numeric.norm())
    # the check is not vacuous: the unrolled term changes the gradient far more than the error
    assert (first_order - numeric).norm() > 20 * error


def test_first_order_gradient_is_the_validation_gradient() -> None:
    strategy, train, val = tiny_darts(order=1)
    grads, loss = strategy.hypergradient(train, val, 0.1)
    alphas = strategy.supernet.arch_parameters()
    expected = torch.autograd.grad(F.cross_entropy(strategy.supernet(val[0]), val[1]), alphas)
    assert all(torch.allclose(g, e) for g, e in zip(grads, expected, strict=True))
    assert loss > 0


@pytest.mark.parametrize("order", [1, 2])
def test_runs_end_to_end_on_digits(sqlite_url: str, order: int) -> None:
    store = Store(sqlite_url)
    result = run_search(tiny_config("darts", order=order), store)
    supernet, _ = check_end_to_end(result, store, epochs=2)
    series = store.intermediate_series(supernet.id)
    space = NB201Space(**TINY_NB201)
    alpha_keys = {k for k in series if k.startswith("alpha.")}
    expected = {f"alpha.{edge}.{op}" for edge, ops in space.edge_candidates().items() for op in ops}
    assert alpha_keys == expected
    for edge, ops in space.edge_candidates().items():  # softmax weights: each edge sums to 1
        for epoch in (1, 2):
            total = sum(dict(series[f"alpha.{edge}.{op}"])[epoch] for op in ops)
            assert total == pytest.approx(1.0)
    # the supernet trial's genotype is what the final architecture weights derive
    weights = {
        edge: {op: dict(series[f"alpha.{edge}.{op}"])[2] for op in ops}
        for edge, ops in space.edge_candidates().items()
    }
    assert supernet.genotype == space.canonicalize(space.derive(weights))


@pytest.mark.parametrize("space", ["cell", "chain"])
def test_runs_on_cell_and_chain(sqlite_url: str, space: str) -> None:
    store = Store(sqlite_url)
    result = run_search(tiny_config("darts", space, epochs=1, max_batches=1, net={}), store)
    check_end_to_end(result, store, epochs=1)


def test_killed_search_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = check_exact_resume(
        lambda name: f"sqlite:///{tmp_path / name}.db",
        monkeypatch,
        lambda: tiny_config("darts", epochs=4),
    )
    assert "weight_optimizer" in str(state) and "arch_optimizer" in str(state)


def test_resume_after_search_only_retrains(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    first = run_search(tiny_config("darts", epochs=1), store)
    again = run_search(tiny_config("darts", epochs=1), store, resume=True)
    assert again.trials_run == 0 and again.best is not None and again.best.id == first.best.id


def test_time_limit_cuts_the_retraining_to_the_time_left(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--time-limit`` bounds a one-shot session: the search runs its epochs, then the
    retraining's epochs are cut to the time left (at least one runs; 200 would take far
    longer than the 1 s left), and so is its progress bar's total. The trial keeps the
    study's budget, records the epochs it ran, and a resumed study finds it."""
    totals: dict[str, list[int]] = {}

    @contextmanager
    def recording_bar(
        enabled: bool, *, total: int, completed: int = 0, label: str = ""
    ) -> Iterator[Any]:
        seen = totals.setdefault(label, [total])
        yield SimpleNamespace(advance=lambda text="": None, set_total=seen.append)

    monkeypatch.setattr(oneshot_module, "progress_bar", recording_bar)
    store = Store(sqlite_url)
    config = tiny_config("darts", epochs=1, retrain_epochs=200)
    config = dataclasses.replace(config, time_limit=0.01)
    result = run_search(config, store)
    retrain = result.best
    assert retrain is not None and retrain.tag == "retrain" and retrain.state == "COMPLETE"
    assert 1 <= retrain.metrics["epochs_run"] < 200
    bar = totals[f"{result.study.name} retrain"]
    assert bar[0] == 200 and bar[-1] == retrain.metrics["epochs_run"]
    assert retrain.budget["epochs"] == 200 and "time_limit" not in retrain.budget["extra"]
    again = run_search(config, store, resume=True)
    assert again.trials_run == 0 and again.best is not None and again.best.id == retrain.id
    plain = run_search(tiny_config("darts", epochs=1), Store(sqlite_url.replace(".db", "2.db")))
    assert plain.best is not None and "epochs_run" not in plain.best.metrics


def test_retrain_epochs_0_means_no_retraining(tmp_path: Path) -> None:
    """The derived genotype is the result, printed as such; no retrained trial is created."""
    args = ["search", "--space", "nb201", "--strategy", "darts", "--retrain-epochs", "0"]
    args += ["--strategy-opt", "epochs=1", "--strategy-opt", "max_batches=1", "--no-progress"]
    args += ["--space-opt", "cells_per_stage=1", "--space-opt", "channels=4", "--device", "cpu"]
    done = run_cli(*args, "--storage", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("derived genotype of study nb201-darts (not retrained):")
    assert "notation: |" in done.stdout and "not retrained" in done.stderr
    store = Store(f"sqlite:///{tmp_path / 's.db'}", create=False)
    try:
        assert [t.tag for t in store.trials("nb201-darts")] == ["supernet"]
    finally:
        store.close()


def test_search_sees_its_own_data_and_retraining_the_studys(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``search_data_fraction`` and ``search_resolution`` shrink the supernet's data only; the
    retrained trial keeps the study's budget (all the data at the native size)."""
    seen: list[tuple[int, tuple[int, ...]]] = []
    original = OneShotContext.end_epoch

    def end_epoch(self: OneShotContext, *args: Any) -> None:
        x, _y = self.splits.train.tensors
        seen.append((len(x), tuple(x.shape[1:])))
        original(self, *args)

    monkeypatch.setattr(OneShotContext, "end_epoch", end_epoch)
    store = Store(sqlite_url)
    config = tiny_config("darts", epochs=1, search_data_fraction=0.25, search_resolution=6)
    result = run_search(config, store)
    full = run_search(tiny_config("darts", epochs=1), Store(sqlite_url.replace(".db", "2.db")))
    assert result.best is not None and full.best is not None
    ((searched, shape),) = seen[:1]
    ((everything, native),) = seen[1:]
    assert shape == (1, 6, 6) and native == (1, 8, 8)
    assert abs(searched - everything / 4) <= 10  # stratified: about a quarter of each class
    retrain = result.best
    assert retrain.tag == "retrain" and retrain.budget.get("resolution") is None
    assert retrain.budget.get("data_fraction", 1.0) == 1.0


@pytest.mark.parametrize("option", ["search_data_fraction=0", "search_resolution=0"])
def test_bad_search_fidelity_is_one_line(option: str, tmp_path: Path) -> None:
    args = ["search", "--space", "nb201", "--strategy", "darts", "--strategy-opt", option]
    done = run_cli(*args, "--storage", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert option.split("=")[0] in done.stderr.strip().splitlines()[-1]


def test_each_epoch_is_one_short_log_line(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An epoch's line carries its scalar values and the derived cell's notation, not the
    per-op (alpha) or per-edge (PC-DARTS beta) architecture weights, which are stored."""
    caplog.set_level("INFO", logger="nasplat")
    store = Store(sqlite_url)
    result = run_search(tiny_config("darts", epochs=1, partial_channels=2), store)
    lines = [r.getMessage() for r in caplog.records if ": epoch 1:" in r.getMessage()]
    assert len(lines) == 1 and "derived |" in lines[0] and "value=" in lines[0]
    assert "alpha." not in lines[0] and "beta." not in lines[0]
    series = store.intermediate_series(store.trials(result.study.id)[0].id)
    assert any(k.startswith("beta.") for k in series) and any(
        k.startswith("alpha.") for k in series
    )
