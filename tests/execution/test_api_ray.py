"""Objects defined in a script's ``__main__`` (a model space, an objective, data) reach Ray
workers by value (cloudpickle)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

MAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch, nasplat
    from torch.utils.data import TensorDataset
    from nasplat.ml.data import DataSplits

    from nasplat import nn as nsn

    class Doubling(torch.nn.Module):  # a user's own module, only in this script
        def forward(self, x):
            return 2 * x

    class Space(torch.nn.Sequential):  # a user's model space, only in this script
        def __init__(self):
            op = nsn.LayerChoice({"double": Doubling(), "same": torch.nn.Identity()}, label="op")
            width = nsn.choice("width", [4, 8])
            super().__init__(torch.nn.Flatten(), op, nsn.Linear(64, width), nsn.Linear(width, 2))

    def objective(model, ctx):  # a user's objective, only in this script
        x, y = ctx.train.tensors
        assert model(x).shape == (len(x), 2)
        return {"val_acc": float(Doubling()(torch.ones(1)).item()) / 4, "pid": os.getpid()}

    x = torch.randn(40, 1, 8, 8)
    part = TensorDataset(x, torch.arange(40) % 2)
    data = DataSplits("script-data", part, part, part, 1, 2, 8)
    study = nasplat.create_study(
        Space, data=data, strategy="random",
        storage=sys.argv[1], n_trials=4, executor="ray",
        executor_options={"workers": 2, "ray_address": sys.argv[2]},
    )
    study.optimize(objective)
    print("states", sorted({t.state for t in study.trials}), [t.error for t in study.trials])
    print("archs", len({t.arch_hash for t in study.trials}))
    print("values", sorted({t.value for t in study.trials}))
    print("driver", os.getpid(), "workers", sorted({int(t.metrics["pid"]) for t in study.trials}))
    """
)


@pytest.mark.ray
def test_objective_and_data_from_main_run_on_ray_workers(tmp_path, ray_session):
    script = tmp_path / "search.py"
    script.write_text(MAIN_SCRIPT)
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = subprocess.run(
        [sys.executable, str(script), url, ray_session],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines["states"].startswith("['COMPLETE']"), lines["states"]
    assert lines["archs"] == "4"  # the space's 4 architectures, each once
    assert lines["values"] == "[0.5]"
    driver, workers = lines["driver"].split(" workers ")
    assert str(driver) not in workers  # the trials ran in other processes


def test_a_plugin_that_cannot_be_pickled_is_one_clear_error():
    import threading

    import pytest

    from nasplat.errors import ConfigError
    from nasplat.executor import ExecutionContext
    from nasplat.run.ray import check_shippable

    lock = threading.Lock()
    context = ExecutionContext(
        "sqlite:///x.db",
        1,
        "chain",
        {},
        "objective",
        {},
        "val_acc",
        plugins=(("objective", "__main__:f", lambda model, ctx: lock.locked()),),
    )
    with pytest.raises(ConfigError, match="cannot send the study's .* importable module"):
        check_shippable(context)
