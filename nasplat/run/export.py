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
from nasplat.shape import NetShape

log = logging.getLogger("nasplat")

BASE_FORMATS = ("all", "json")


def export_formats() -> list[str]:
    """``all``, ``json`` and the notation format of every registered space."""
    load_builtins()
    notations = {SPACES.get(name).notation_format for name in SPACES.names()}
    return [*BASE_FORMATS, *sorted(f for f in notations if f and f not in BASE_FORMATS)]


def trial_network(study: Any, space: Any, trial: Any) -> tuple[NetShape, dict[str, Any]]:
    """``(shape, net_options)`` of the network a trial trained: the study's shape at the
    trial's budget, and its cell count when the budget reduced it."""
    shape = NetShape.of_study(study.config).at_budget(trial.budget)
    cells, cell_option = (trial.budget or {}).get("cells"), space.cell_count_option()
    return shape, ({cell_option: cells} if cells is not None and cell_option else {})


def build_trial(
    store: Any, study: Any, trial: Any, *, space: Any = None, weights: bool = True
) -> Any:
    """A trial's ``nn.Module`` as it trained, with its stored weights when kept (and asked)."""
    load_builtins()
    space = space or SPACES.get(study.space)(**study.config.get("space_options", {}))
    shape, net_options = trial_network(study, space, trial)
    model = space.build(trial.genotype, shape, **net_options)
    state = store.trial_weights(trial.id) if weights else None
    if state is not None:
        load_weights(model, state)
    return model


def load_weights(model: Any, state: bytes) -> None:
    """Load a stored state dict (``torch.save`` bytes) into ``model``."""
    import torch

    model.load_state_dict(torch.load(io.BytesIO(state), weights_only=True))


def export_best(store: Any, study_name: str, out_dir: str, fmt: str = "all") -> list[str]:
    """Write the best trial's files into ``out_dir``; returns the paths written.

    ``genotype.json`` (the genotype, its space options and the trial's network shape: rebuild
    with ``nasplat.build``), ``genotype.<space>.txt`` for spaces with a notation, ``weights.pt``
    (a state dict; ``torch.load(..., weights_only=True)``) when the trial kept its weights, and
    ``model.ts`` (TorchScript, traced in eval mode). ``fmt`` = a space's ``notation_format``
    writes only ``genotype.<fmt>.txt``; ``json`` only ``genotype.json``.
    """
    load_builtins()
    known = export_formats()
    if fmt not in known:
        raise NasplatError(f"unknown export format {fmt!r}; choices: {', '.join(known)}")
    study = store.get_study(study_name)
    trial = store.best_trial(study_name)
    space_options = study.config.get("space_options", {})
    space = SPACES.get(study.space)(**space_options)
    os.makedirs(out_dir, exist_ok=True)
    written: list[str] = []

    def write(name: str, data: str | bytes) -> None:
        path = os.path.join(out_dir, name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)
        written.append(path)

    if fmt not in BASE_FORMATS:
        if fmt != space.notation_format:
            raise NasplatError(f"format {fmt!r} does not apply to space {study.space!r}")
        write(f"genotype.{fmt}.txt", space.to_notation(trial.genotype) + "\n")
        return written
    shape, net_options = trial_network(study, space, trial)
    exported = {
        **trial.genotype.to_dict(),
        "space_options": {**space_options, **net_options},
        "shape": shape.to_dict(),
    }
    write("genotype.json", json.dumps(exported, indent=2) + "\n")
    if fmt == "json":
        return written
    if space.notation_format is not None:
        write(f"genotype.{study.space}.txt", space.to_notation(trial.genotype) + "\n")
    write(
        "metrics.json",
        json.dumps(
            {"trial": trial.number, "value": trial.value, "net": shape.to_dict(), **trial.metrics},
            indent=2,
        )
        + "\n",
    )
    import torch

    model = build_trial(store, study, trial, space=space, weights=False)
    weights = store.trial_weights(trial.id)  # read once: loaded and written
    if weights is not None:
        load_weights(model, weights)
        write("weights.pt", weights)
    else:
        log.warning("trial %d kept no weights; the TorchScript model is untrained", trial.number)
    model.eval()
    example = torch.zeros(shape.example_input_shape())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, example)
        path = os.path.join(out_dir, "model.ts")
        traced.save(path)
    written.append(path)
    return written
