"""The one-shot search path: train a supernet, record it per epoch, retrain the result.

:func:`run_one_shot` is what :meth:`nasplat.search.Search.run` calls for a one-shot strategy
(``strategy.one_shot``). The study then holds:

- one trial tagged ``supernet``: RUNNING while the supernet trains, linked to the genotype
  the search derives at the end of each epoch (before the first epoch: a placeholder, the
  space's sample for the study's seed), with one intermediate value per epoch and key
  (``value``: the supernet's validation accuracy; ``alpha.<edge>.<op>``: softmaxed
  architecture weights, for strategies that have them). It ends COMPLETE *without* a trial
  value (metrics only: ``supernet_val_acc``, ``search_seconds``, ``epochs``), so ``best`` and
  the dashboard's rankings never compare a shared-weight accuracy with a trained one;
- one ordinary trial tagged ``retrain``: the final genotype trained from scratch by the
  study's evaluator at the study's budget (``retrain_epochs`` overrides the epochs). It is
  the search's result.

A strategy checkpoint is written after every epoch (``{"one_shot": {epoch, genotype,
strategy}}``); ``--resume`` continues from the last one, skips the search when the supernet
trial is COMPLETE, and reruns a retraining that was interrupted.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nasplat.budget import Budget
from nasplat.executor import (
    describe_error,
    evaluate_and_record,
)
from nasplat.genotype import Genotype
from nasplat.store import StudyRecord, TrialRecord

if TYPE_CHECKING:
    import torch

    from nasplat.data import DataSplits
    from nasplat.search import Search, SearchResult
    from nasplat.space import SearchSpace
    from nasplat.store import Store

log = logging.getLogger("nasplat")
SUPERNET_TAG = "supernet"
RETRAIN_TAG = "retrain"
CHECKPOINTS_KEPT = 2


@dataclass
class OneShotContext:
    """What a one-shot strategy's ``search(context)`` gets: data, device, seed and the store.

    ``report``/``end_epoch`` write to the supernet trial; ``load_checkpoint`` returns the
    strategy state saved by the last ``end_epoch`` (None on a fresh search).
    """

    search: Search
    splits: DataSplits
    device: torch.device
    trial: TrialRecord
    advance: Callable[[str], None] = lambda text: None
    epochs_done: list[int] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.search.store

    @property
    def study(self) -> StudyRecord:
        return self.search.study

    @property
    def space(self) -> SearchSpace:
        return self.search.space

    @property
    def seed(self) -> int:
        return self.search.config.seed

    def report(self, epoch: int, key: str, value: float) -> None:
        """One intermediate value of the supernet trial (``key="value"``: validation accuracy)."""
        self.store.report_intermediate(self.trial.id, epoch, float(value), key=key)

    def report_many(self, epoch: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.report(epoch, key, value)

    def log(self, message: str) -> None:
        log.info("%s: %s", self.study.name, message)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Save a JSON strategy state (``{"one_shot": ...}`` in the study's checkpoints)."""
        self.store.save_checkpoint(self.study.id, {"one_shot": state})
        self.store.prune_checkpoints(self.study.id, keep=CHECKPOINTS_KEPT)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The strategy state of the last finished epoch, or None."""
        checkpoint = self.store.load_checkpoint(self.study.id)
        if not checkpoint or "one_shot" not in checkpoint:
            return None
        return checkpoint["one_shot"]["strategy"]

    def end_epoch(
        self,
        epoch: int,
        genotype: Genotype,
        values: Mapping[str, float],
        state: dict[str, Any],
    ) -> None:
        """Record a finished epoch: its values, its derived genotype (the supernet trial's
        architecture from now on, and a log line) and the strategy state to resume from."""
        canonical = self.space.canonicalize(genotype)
        self.report_many(epoch, values)
        self.store.set_trial_architecture(self.trial.id, canonical)
        self.save_checkpoint({"epoch": epoch, "genotype": canonical.to_dict(), "strategy": state})
        self.epochs_done.append(epoch)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items() if not k.startswith("alpha."))
        self.log(f"epoch {epoch}: {shown}; derived {self.space.to_notation(canonical)}")
        self.advance(f"val_acc={values.get('value', float('nan')):.4f}")


def _latest(store: Store, study_id: int, tag: str) -> TrialRecord | None:
    found = [t for t in store.trials(study_id) if t.tag == tag]
    return found[-1] if found else None


def _supernet_trial(search: Search) -> tuple[TrialRecord, int]:
    """``(the study's supernet trial, trials created)``: the existing one on resume, else a new
    one linked to a placeholder genotype."""
    existing = _latest(search.store, search.study.id, SUPERNET_TAG)
    if existing is not None:
        return existing, 0
    placeholder = search.space.canonicalize(search.space.sample(random.Random(search.config.seed)))
    strategy = search.strategy
    budget = Budget(epochs=getattr(strategy, "epochs", None), extra={"one_shot": strategy.name})
    return search.store.create_trial(search.study.id, placeholder, budget, tag=SUPERNET_TAG), 1


def _retrain(search: Search, genotype: Genotype) -> tuple[TrialRecord, int]:
    """Train ``genotype`` from scratch as an ordinary trial; ``(trial, trials created)``."""
    store, study = search.store, search.study
    canonical = search.space.canonicalize(genotype)
    epochs = getattr(search.strategy, "retrain_epochs", None)
    budget = search.budget if epochs is None else search.budget.replace(epochs=epochs)
    done = store.find_evaluated(study.id, canonical, budget)
    if done is not None:
        return done, 0
    trial = store.create_trial(study.id, canonical, budget, tag=RETRAIN_TAG)
    log.info(
        "%s: retraining the derived genotype from scratch (trial %d)", study.name, trial.number
    )
    evaluate_and_record(
        store, study, trial, budget, search.evaluator, keep_weights=search.config.keep_weights
    )
    return store.get_trial(trial.id), 1


def run_one_shot(search: Search, progress: bool = True) -> SearchResult:
    """Run a one-shot strategy's search, then retrain its genotype (see the module doc)."""
    from nasplat.progress import progress_bar
    from nasplat.search import SearchResult
    from nasplat.training import resolve_device

    store, study, config = search.store, search.study, search.config
    if _running_retrain(search):
        store.interrupt_running(study.id)
    trial, created = _supernet_trial(search)
    if trial.state == "COMPLETE":
        genotype = trial.genotype
        log.info("%s: the supernet search already finished; retraining its result", study.name)
    else:
        context = OneShotContext(search, _splits(search), resolve_device(config.device), trial)
        total = getattr(search.strategy, "epochs", 1)
        checkpoint = store.load_checkpoint(study.id) or {}
        done = checkpoint.get("one_shot", {}).get("epoch", 0)
        started = time.perf_counter()
        with progress_bar(progress, total=total, completed=done, label=study.name) as bar:
            context.advance = bar.advance
            try:
                genotype = search_once(search, context)
            except Exception as exc:  # a kill (KeyboardInterrupt) leaves it RUNNING instead
                store.finish_trial(trial.id, state="FAILED", error=describe_error(exc))
                raise
        genotype = search.space.canonicalize(genotype)
        series = store.intermediate_values(trial.id, "value")
        metrics = {"search_seconds": time.perf_counter() - started, "epochs": float(total)}
        if series:
            metrics["supernet_val_acc"] = series[-1][1]
        store.set_trial_architecture(trial.id, genotype)
        store.finish_trial(trial.id, state="COMPLETE", value=None, metrics=metrics)
        log.info("%s: derived %s", study.name, search.space.to_notation(genotype))
    best, retrained = _retrain(search, genotype)
    return SearchResult(study, created + retrained, best if best.state == "COMPLETE" else None)


def _splits(search: Search) -> DataSplits:
    """The data of the search: the evaluator's splits at the study's budget (so
    ``--data-fraction`` and ``--resolution`` shrink the supernet search as well), else the
    dataset as loaded."""
    load_splits = getattr(search.evaluator, "load_splits", None)
    if load_splits is not None:
        return load_splits(search.budget)
    from nasplat.data import load_dataset

    config = search.config
    return load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)


def _running_retrain(search: Search) -> bool:
    """Whether an earlier session was killed while retraining (its trial is still RUNNING)."""
    trial = _latest(search.store, search.study.id, RETRAIN_TAG)
    return trial is not None and trial.state == "RUNNING"


def search_once(search: Any, context: Any) -> Any:
    """The strategy's search, data-parallel over Ray Train workers with ``--executor ray``."""
    if search.config.executor == "ray":
        from nasplat.oneshot_ray import search_data_parallel

        return search_data_parallel(search, context)
    return search.strategy.search(context)
