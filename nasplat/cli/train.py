"""Train one given architecture from scratch and store it as a trial (``nasplat train``)."""

from __future__ import annotations

from typing import Any

from nasplat.budget import Budget
from nasplat.direction import Direction
from nasplat.genotype_io import parse_genotype
from nasplat.registry import EVALUATORS
from nasplat.run.trial import evaluate_and_record
from nasplat.store import Store, StudyRecord, TrialRecord


def train_one(
    store: Store,
    *,
    genotype_text: str,
    space: str | None,
    dataset: str,
    data_dir: str | None,
    epochs: int,
    seed: int,
    study: str | None,
    device: str,
    evaluator_options: dict[str, Any],
    space_options: dict[str, Any],
) -> tuple[TrialRecord, StudyRecord]:
    """Train and store; the study (default ``train-SPACE``) is created when absent."""
    genotype, space_obj = parse_genotype(genotype_text, space, space_options)
    options = {
        "dataset": dataset,
        "data_dir": data_dir,
        "seed": seed,
        "device": device,
        "epochs": epochs,
        **evaluator_options,
    }
    evaluator = EVALUATORS.create("train", space_obj, **options)
    name = study or f"train-{space_obj.name}"
    if store.has_study(name):
        record = store.get_study(name)
    else:
        record = store.create_study(
            name,
            space=space_obj.name,
            strategy="manual",
            evaluator="train",
            objectives=[("val_acc", Direction.MAXIMIZE)],
            config={
                "space": space_obj.name,
                "space_options": space_obj.options,
                "dataset": dataset,
                "data_dir": data_dir,
                "seed": seed,
                "shape": evaluator.data_shape().to_dict(),
            },
        )
    canonical = space_obj.canonicalize(genotype)
    budget = Budget(epochs=epochs)
    trial = store.create_trial(record.id, canonical, budget, tag="manual")
    evaluate_and_record(store, record, trial, budget, evaluator)
    return store.get_trial(trial.id), record
