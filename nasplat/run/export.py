"""Export a study's best architecture: genotype JSON, notation, weights, TorchScript, ONNX."""

from __future__ import annotations

import functools
import io
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from nasplat.errors import ExportError, NasplatError
from nasplat.registry import SPACES, load_builtins
from nasplat.run.deploy import onnx_bytes, torchscript_bytes
from nasplat.shape import NetShape

log = logging.getLogger("nasplat")

BASE_FORMATS = ("all", "json")
MODEL_FILES = {"torchscript": "model.ts", "onnx": "model.onnx"}
MODEL_EXPORTERS = {"torchscript": torchscript_bytes, "onnx": onnx_bytes}


def export_formats() -> list[str]:
    """``all``, ``json``, ``torchscript``, ``onnx`` and every registered space's notation."""
    load_builtins()
    fixed = (*BASE_FORMATS, *MODEL_FILES)
    notations = {SPACES.get(name).notation_format for name in SPACES.names()}
    return [*fixed, *sorted(f for f in notations if f and f not in fixed)]


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


def export_best(
    store: Any, study_name: str, out_dir: str, fmt: str = "all", *, force: bool = False
) -> list[str]:
    """Write the best trial's files into ``out_dir``; returns the paths written.

    ``all``: ``genotype.json`` (the genotype, its space options and the trial's network shape:
    rebuild with ``nasplat.build``), ``genotype.<space>.txt`` for spaces with a notation,
    ``metrics.json``, ``weights.pt`` (a state dict; ``torch.load(..., weights_only=True)``)
    when the trial kept its weights, and ``model.ts`` (TorchScript). ``json``: only
    ``genotype.json``; a space's ``notation_format``: only ``genotype.<fmt>.txt``;
    ``torchscript``: only ``model.ts``; ``onnx``: only ``model.onnx`` (the ``onnx`` extra).
    Models are exported in eval mode and checked against PyTorch on random inputs
    (:mod:`nasplat.run.deploy`). Every file is made and checked before any is written, and an
    existing file is an ExportError unless ``force``.
    """
    load_builtins()
    known = export_formats()
    if fmt not in known:
        raise NasplatError(f"unknown export format {fmt!r}; choices: {', '.join(known)}")
    study = store.get_study(study_name)
    trial = store.best_trial(study_name)
    space_options = study.config.get("space_options", {})
    space = SPACES.get(study.space)(**space_options)
    fixed = (*BASE_FORMATS, *MODEL_FILES)
    if fmt not in fixed and fmt != space.notation_format:
        raise NasplatError(f"format {fmt!r} does not apply to space {study.space!r}")
    shape, net_options = trial_network(study, space, trial)
    weights = store.trial_weights(trial.id) if fmt in ("all", *MODEL_FILES) else None  # read once

    @functools.cache
    def network() -> Any:
        model = build_trial(store, study, trial, space=space, weights=False)
        if weights is not None:
            load_weights(model, weights)
        else:
            log.warning("trial %d kept no weights; the exported model is untrained", trial.number)
        return model.eval()

    def notation() -> str:
        return space.to_notation(trial.genotype) + "\n"

    def genotype_json() -> str:
        exported = {
            **trial.genotype.to_dict(),
            "space_options": {**space_options, **net_options},
            "shape": shape.to_dict(),
        }
        return json.dumps(exported, indent=2) + "\n"

    def metrics_json() -> str:
        metrics = {"trial": trial.number, "value": trial.value, "net": shape.to_dict()}
        return json.dumps({**metrics, **trial.metrics}, indent=2) + "\n"

    def model_file(kind: str) -> Callable[[], bytes]:
        return lambda: MODEL_EXPORTERS[kind](network(), shape.input_shape)

    files: dict[str, Callable[[], str | bytes]] = {}
    if fmt in ("all", "json"):
        files["genotype.json"] = genotype_json
    if fmt == "all":
        if space.notation_format is not None:
            files[f"genotype.{study.space}.txt"] = notation
        files["metrics.json"] = metrics_json
        if weights is not None:
            files["weights.pt"] = lambda: weights
        files[MODEL_FILES["torchscript"]] = model_file("torchscript")
    elif fmt in MODEL_FILES:
        files[MODEL_FILES[fmt]] = model_file(fmt)
    elif fmt not in fixed:
        files[f"genotype.{fmt}.txt"] = notation
    paths = [os.path.join(out_dir, name) for name in files]
    refuse_overwrite(out_dir, paths, force)
    contents = [make() for make in files.values()]  # every model checked before a file is written
    os.makedirs(out_dir, exist_ok=True)
    for path, data in zip(paths, contents, strict=True):
        with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)
    return paths


def refuse_overwrite(out_dir: str, paths: list[str], force: bool) -> None:
    """ExportError when ``out_dir`` is a file, or (unless ``force``) a path exists."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ExportError(f"{out_dir} is not a folder")
    existing = [path for path in paths if os.path.lexists(path)]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ExportError(f"{existing[0]} already exists{more}; pass --force to overwrite")
