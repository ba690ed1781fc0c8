"""Export a study's best architecture: genotype JSON, notation, weights, TorchScript."""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from typing import Any

from nasplat.errors import NasplatError
from nasplat.registry import SPACES, load_builtins

log = logging.getLogger("nasplat")


def export_best(store: Any, study_name: str, out_dir: str, fmt: str = "all") -> list[str]:
    """Write the best trial's files into ``out_dir``; returns the paths written.

    ``genotype.json`` (rebuild with ``nasplat.build``), ``genotype.<notation>.txt`` for spaces
    with a notation, ``weights.pt`` (a state dict; ``torch.load(..., weights_only=True)``) when
    the trial kept its weights, and ``model.ts`` (TorchScript, traced in eval mode).
    """
    load_builtins()
    study = store.get_study(study_name)
    trial = store.best_trial(study_name)
    space = SPACES.get(study.space)(**study.config.get("space_options", {}))
    os.makedirs(out_dir, exist_ok=True)
    written: list[str] = []

    def write(name: str, data: str | bytes) -> None:
        path = os.path.join(out_dir, name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)
        written.append(path)

    notation = space.to_notation(trial.genotype)
    has_notation = notation != trial.genotype.to_json()
    if fmt in ("darts", "nb201"):
        if not has_notation or fmt != {"cell": "darts", "nb201": "nb201"}.get(study.space):
            raise NasplatError(f"format {fmt!r} does not apply to space {study.space!r}")
        write(f"genotype.{fmt}.txt", notation + "\n")
        return written
    space_options = study.config.get("space_options", {})
    exported = {**trial.genotype.to_dict(), "space_options": space_options}
    write("genotype.json", json.dumps(exported, indent=2) + "\n")
    if fmt == "json":
        return written
    if has_notation:
        write(f"genotype.{study.space}.txt", notation + "\n")
    data = study.config.get("data", {})
    net_kwargs = {k: data[k] for k in ("in_channels", "num_classes", "input_size") if k in data}
    write(
        "metrics.json",
        json.dumps(
            {"trial": trial.number, "value": trial.value, "net": net_kwargs, **trial.metrics},
            indent=2,
        )
        + "\n",
    )
    import torch

    model = space.build(trial.genotype, **net_kwargs)
    weights = store.trial_weights(trial.id)
    if weights is not None:
        state = torch.load(io.BytesIO(weights), weights_only=True)
        model.load_state_dict(state)
        write("weights.pt", weights)
    else:
        log.warning("trial %d kept no weights; the TorchScript model is untrained", trial.number)
    model.eval()
    example = torch.zeros(
        1,
        net_kwargs.get("in_channels", 1),
        net_kwargs.get("input_size", 8),
        net_kwargs.get("input_size", 8),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, example)
        path = os.path.join(out_dir, "model.ts")
        traced.save(path)
    written.append(path)
    return written
