"""DARTS (first order) on your own model space, from Python and from the CLI; the derived
genotype is retrained and exported, its weights and TorchScript model included."""

import os
import subprocess
import sys

import torch
from cnn_space import Net

import nasplat

# --- from Python ----------------------------------------------------------------------------
study = nasplat.create_study(
    Net,
    space_options={"in_channels": 1},  # digits: 1x8x8 images, 10 classes
    data="digits",
    strategy="darts",
    strategy_options={"order": 1, "epochs": 2, "retrain_epochs": 2},
    storage="sqlite:///darts.db",
)
study.optimize()
print("derived and retrained:", study.best.params, "val_acc", round(study.best.value, 3))
written = study.export("from-python")
model = torch.jit.load(os.path.join("from-python", "model.ts"))
print("TorchScript output:", tuple(model(torch.zeros(2, 1, 8, 8)).shape))

# --- from the CLI: the space is `module:Class`, importable from PYTHONPATH --------------------
here = os.path.dirname(os.path.abspath(__file__))
env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
nasplat_cli = [sys.executable, "-m", "nasplat"]
common = ["--storage", "sqlite:///darts.db"]
subprocess.run(
    [*nasplat_cli, "search", "--space", "cnn_space:Net", "--space-opt", "in_channels=1",
     "--strategy", "darts", "--order", "1", "--strategy-opt", "epochs=2",
     "--retrain-epochs", "2", "--study", "cli-darts", "--no-progress", *common],
    check=True, env=env,
)  # fmt: skip
subprocess.run(
    [*nasplat_cli, "export", "--study", "cli-darts", "--out", "from-cli", *common],
    check=True,
    env=env,
)
print(sorted(os.listdir("from-cli")))
