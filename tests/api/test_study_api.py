"""The Python API: create_study/load_study/optimize, user objectives, trials back as frames."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import TensorDataset

import nasplat
from nasplat.errors import ConfigError, ExportError, StorageError, UnknownNameError
from nasplat.ml.data import DataSplits
from nasplat.registry import DATASETS, OBJECTIVES, SPACES, Registry

SMALL_CHAIN = {"layers": 2, "widths": [8], "ops": "conv_3x3,max_pool_3x3,skip_connect"}


def toy_splits(name: str = "toy", seed: int = 0) -> DataSplits:
    g = torch.Generator().manual_seed(seed)

    def part(n: int) -> TensorDataset:
        x = torch.randn(n, 1, 8, 8, generator=g)
        return TensorDataset(x, (x.mean((1, 2, 3)) > 0).long())

    return DataSplits(name, part(64), part(32), part(32), 1, 2, 8)


def fit(model: torch.nn.Module, ctx: nasplat.TrialContext) -> float:
    """A user's own training: Adam, ``ctx.epochs`` epochs (2 by default), report per epoch."""
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    accuracy = 0.0
    for epoch in range(ctx.epochs or 2):
        model.train()
        for x, y in ctx.loader("train", 32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            right = sum((model(x).argmax(1) == y).sum().item() for x, y in ctx.loader("val", 64))
        accuracy = right / len(ctx.val)
        ctx.report(epoch, val_acc=accuracy)
    return accuracy


def test_user_objective_runs_every_trial_and_frames_have_one_column_per_decision(tmp_path):
    study = nasplat.create_study(
        "chain",
        data=toy_splits(),
        space_options=SMALL_CHAIN,
        strategy="random",
        storage=f"sqlite:///{tmp_path}/s.db",
        n_trials=3,
        seed=1,
    )
    study.optimize(fit)
    frame = study.trials_dataframe()
    decisions = [d.name for d in SPACES.create("chain", **SMALL_CHAIN).decisions()]
    assert {f"params_{d}" for d in decisions} <= set(frame.columns)
    assert list(frame["state"]) == ["COMPLETE"] * 3
    assert study.best.value == max(frame["value"])
    assert study.best_params == study.best.params == dict(study.best.genotype)
    # intermediate values reported through ctx.report reach the store
    series = study.store.intermediate_values(study.best.id)
    assert len(series) == 2


def test_failures_are_stored_with_their_message_logged_and_the_search_goes_on(tmp_path, caplog):
    calls: list[int] = []

    def flaky(model, ctx):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom in my objective")
        if len(calls) == 2:
            return math.nan
        if len(calls) == 3:
            return "not a number"
        return {"val_acc": 0.5, "extra": 2}

    study = nasplat.create_study(
        "chain", data=toy_splits(), space_options=SMALL_CHAIN, storage="memory://", n_trials=4
    )
    with caplog.at_level(logging.WARNING, logger="nasplat"):
        study.optimize(flaky)
    states = [(t.state, t.error) for t in study.trials]
    assert states[0] == ("FAILED", "RuntimeError: boom in my objective")
    assert states[1][0] == "FAILED" and "nan" in states[1][1]
    assert states[2][0] == "FAILED" and "return a number" in states[2][1]
    assert states[3] == ("COMPLETE", None)
    assert study.best.metrics["extra"] == 2
    assert "boom in my objective" in caplog.text


def test_failures_are_visible_from_python_without_any_logging_setup(tmp_path):
    script = textwrap.dedent(
        """
        import torch, nasplat
        from nasplat.ml.data import DataSplits
        from torch.utils.data import TensorDataset
        x = torch.randn(40, 1, 8, 8); y = torch.arange(40) % 2
        part = TensorDataset(x, y)
        def objective(model, ctx):
            raise ValueError("my objective broke")
        study = nasplat.create_study("chain", data=DataSplits("d", part, part, part, 1, 2, 8),
            space_options={"layers": 1, "widths": [4]}, storage="memory://", n_trials=1)
        study.optimize(objective)
        print("states", [t.state for t in study.trials])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "states ['FAILED']" in done.stdout
    assert "ValueError: my objective broke" in done.stderr


def test_load_if_exists_resumes_and_n_trials_means_more_trials(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    kwargs = dict(data=toy_splits(), space_options=SMALL_CHAIN, storage=url, study_name="mine")
    nasplat.create_study("chain", **kwargs, n_trials=2).optimize(fit)
    with pytest.raises(StorageError, match="load_if_exists=True"):
        nasplat.create_study("chain", **kwargs)
    again = nasplat.create_study("chain", **kwargs, load_if_exists=True)
    again.optimize(fit, n_trials=2)
    assert len(again.trials) == 4
    loaded = nasplat.load_study("mine", storage=url, data=toy_splits())
    assert [t.number for t in loaded.trials] == [0, 1, 2, 3]
    assert loaded.best.value == again.best.value
    with pytest.raises(StorageError, match="no study 'other'"):
        nasplat.load_study("other", storage=url)


def test_rerunning_a_notebook_cell_replaces_the_objects_it_registered():
    def objective(model, ctx):
        return 0.25

    first = nasplat.create_study(
        "chain", data=toy_splits(), space_options=SMALL_CHAIN, storage="memory://", n_trials=1
    )
    first.optimize(objective)

    def objective(model, ctx):  # noqa: F811 - the cell, run again with a change
        return 0.75

    second = nasplat.create_study(
        "chain",
        data=toy_splits(seed=3),
        space_options=SMALL_CHAIN,
        storage="memory://",
        n_trials=1,
    )
    second.optimize(objective)
    assert first.best.value == 0.25 and second.best.value == 0.75
    assert (
        OBJECTIVES.get(
            f"{__name__}:test_rerunning_a_notebook_cell_replaces_the_objects_it_registered.<locals>.objective"
        )
        is objective
    )


def test_registry_replace_and_module_attr_names():
    reg: Registry[object] = Registry("widget")
    a, b = object(), object()
    reg.add("w", a)
    reg.add("w", a)  # the same object again: fine
    with pytest.raises(ValueError, match="duplicate widget"):
        reg.add("w", b)
    reg.add("w", b, replace=True)
    assert reg.get("w") is b

    def loader():  # a notebook cell defining a dataset loader...
        return 1

    first = loader
    reg.add("cell", first)

    def loader():  # noqa: F811 - ...run again: a new object, the same definition
        return 2

    reg.add("cell", loader)
    assert reg.get("cell") is loader and reg.get("cell") is not first
    with pytest.raises(ValueError, match="duplicate widget name 'cell'"):
        reg.add("cell", math.sqrt)  # another thing under a taken name
    assert reg.get("math:sqrt") is math.sqrt  # imported on first use
    with pytest.raises(UnknownNameError, match="cannot import widget 'math:nosuch'"):
        reg.get("math:nosuch")
    with pytest.raises(UnknownNameError, match="defined in a script or notebook"):
        reg.get("__main__:Thing")


def test_bad_input_is_a_clear_exception_before_anything_is_written(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    with pytest.raises(UnknownNameError, match="unknown strategy 'evolutoin'"):
        nasplat.create_study("chain", strategy="evolutoin", storage=url)
    with pytest.raises(UnknownNameError, match="unknown space"):
        nasplat.create_study("chian", storage=url)
    study = nasplat.create_study(
        "chain", data=toy_splits(), storage=url, strategy_options={"population_size": 0}
    )
    with pytest.raises(ConfigError, match="population"):
        study.optimize(fit, n_trials=1)
    with pytest.raises(ConfigError, match="must be a function"):
        study.optimize(42)
    assert study.store.study_names() == []


def test_export_and_build_of_the_best_trial(tmp_path):
    study = nasplat.create_study(
        "chain",
        data=toy_splits(),
        space_options=SMALL_CHAIN,
        storage=f"sqlite:///{tmp_path}/s.db",
        n_trials=2,
    )
    study.optimize(fit)
    written = study.export(str(tmp_path / "out"))
    assert any(p.endswith("weights.pt") for p in written)
    with pytest.raises(ExportError, match="already exists .*; pass --force"):
        study.export(str(tmp_path / "out"))
    assert study.export(str(tmp_path / "out"), "torchscript", force=True) == [
        str(tmp_path / "out" / "model.ts")
    ]
    model = study.build().eval()
    loaded = nasplat.build(str(tmp_path / "out" / "genotype.json")).eval()
    loaded.load_state_dict(torch.load(tmp_path / "out" / "weights.pt", weights_only=True))
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model(x), loaded(x))


def test_the_data_loader_of_a_dataset_registered_from_python_is_picklable():
    import pickle

    nasplat.create_study("chain", data=toy_splits("pickled"), storage="memory://")
    loader = pickle.loads(pickle.dumps(DATASETS.get("pickled")))
    assert loader().name == "pickled"
