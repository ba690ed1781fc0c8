"""The one-shot driver: train a supernet, record it per epoch, retrain the result.

The study then holds:

- one trial tagged ``supernet``: RUNNING while the supernet trains, linked to the genotype
  the search derives at the end of each epoch (before the first epoch: a placeholder, the
  space's sample for the study's seed), with one intermediate value per epoch and key
  (``value``: the supernet's validation accuracy; ``alpha.<edge>.<op>``: softmaxed
  architecture weights, for strategies that have them). It ends COMPLETE *without* a trial
  value (metrics only: ``supernet_val_acc``, ``search_seconds``, ``epochs``), so ``best`` and
  the dashboard's rankings never compare a shared-weight accuracy with a trained one;
- one ordinary trial tagged ``retrain``: the final genotype trained from scratch by the
  study's evaluator at the study's budget (the strategy's ``retrain_epochs`` overrides the
  epochs). It is the search's result.

A strategy checkpoint is written after every epoch (``{"one_shot": {epoch, genotype,
strategy}}``); ``--resume`` continues from the last one, skips the search when the supernet
trial is COMPLETE, and reruns a retraining that was interrupted. ``--time-limit`` bounds the
session: the search runs its epochs, then the retraining's are cut to the time left. The
supernet search runs where the study's executor says
(:meth:`nasplat.executor.Executor.search_one_shot`): in this process, or data-parallel over
Ray Train workers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nasplat.budget import Budget
from nasplat.genotype import Genotype
from nasplat.run.progress import progress_bar
from nasplat.run.result import SearchResult
from nasplat.run.study import StudyRun
from nasplat.run.trial import describe_error, evaluate_and_record
from nasplat.space import SearchSpace
from nasplat.store import StudyRecord, TrialRecord, TrialStore
from nasplat.strategy import ARCH_WEIGHT_KEYS

if TYPE_CHECKING:
    import torch

    from nasplat.strategy import OneShotStrategy

log = logging.getLogger("nasplat")
SUPERNET_TAG = "supernet"
RETRAIN_TAG = "retrain"
CHECKPOINTS_KEPT = 2


@dataclass
class OneShotContext:
    """What a one-shot strategy's ``search(context)`` gets: data, device, seed, the store and
    the supernet trial it reports to.

    ``report``/``end_epoch`` write to the supernet trial; ``load_checkpoint`` returns the
    strategy state saved by the last ``end_epoch`` (None on a fresh search); ``prepared`` is
    called by the strategy once its supernet and optimisers exist (a data-parallel context
    synchronises them there).
    """

    store: TrialStore
    study: StudyRecord
    space: SearchSpace
    seed: int
    splits: Any
    device: torch.device
    trial: TrialRecord
    advance: Callable[[str], None] = lambda text: None
    epochs_done: list[int] = field(default_factory=list)

    def report(self, epoch: int, key: str, value: float) -> None:
        """One intermediate value of the supernet trial (``key="value"``: validation accuracy)."""
        self.store.report_intermediate(self.trial.id, epoch, float(value), key=key)

    def report_many(self, epoch: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.report(epoch, key, value)

    def log(self, message: str) -> None:
        log.info("%s: %s", self.study.name, message)

    def mean_across_workers(self, values: list[float]) -> list[float]:
        """Each value averaged over the workers of a data-parallel search (every worker then
        decides alike from its own shard's measurements); in one process, the values."""
        return list(values)

    def prepared(self, strategy: OneShotStrategy) -> None:
        """Called once the strategy's supernet and optimisers exist (default: nothing)."""

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
        shown = ", ".join(
            f"{k}={v:.4g}" for k, v in values.items() if not k.startswith(ARCH_WEIGHT_KEYS)
        )
        self.log(f"epoch {epoch}: {shown}; derived {self.space.to_notation(canonical)}")
        self.advance(f"val_acc={values.get('value', float('nan')):.4f}")


def latest_trial(store: TrialStore, study_id: int, tag: str) -> TrialRecord | None:
    found = [t for t in store.trials(study_id) if t.tag == tag]
    return found[-1] if found else None


def supernet_trial(run: StudyRun) -> tuple[TrialRecord, int]:
    """``(the study's supernet trial, trials created)``: the existing one on resume, else a new
    one linked to a placeholder genotype."""
    existing = latest_trial(run.store, run.study.id, SUPERNET_TAG)
    if existing is not None:
        return existing, 0
    placeholder = run.space.canonicalize(run.space.sample(random.Random(run.config.seed)))
    strategy: Any = run.strategy
    budget = Budget(epochs=strategy.epochs, extra={"one_shot": strategy.name})
    return run.store.create_trial(run.study.id, placeholder, budget, tag=SUPERNET_TAG), 1


def retrain(
    run: StudyRun, genotype: Genotype, progress: bool = True, deadline: float | None = None
) -> tuple[TrialRecord, int]:
    """Train ``genotype`` from scratch as an ordinary trial, with a progress bar over its
    epochs; ``(trial, trials created)``. With a ``deadline`` (``time.monotonic()``) its epochs
    are planned to the time left (``TrainConfig.time_limit``), and so is the bar's total; the
    trial keeps the study's budget and records ``epochs_run``."""
    store, study = run.store, run.study
    canonical = run.space.canonicalize(genotype)
    epochs = run.strategy.retrain_epochs  # type: ignore[attr-defined]
    budget = run.budget if epochs is None else run.budget.replace(epochs=epochs)
    done = store.find_evaluated(study.id, canonical, budget)
    if done is not None:
        return done, 0
    trial = store.create_trial(study.id, canonical, budget, tag=RETRAIN_TAG)
    log.info(
        "%s: retraining the derived genotype from scratch (trial %d)", study.name, trial.number
    )
    label = f"{study.name} retrain"
    if deadline is not None:
        left = max(deadline - time.monotonic(), 1.0)  # at least one epoch runs anyway
        log.info("%s: --time-limit leaves %.0f s for the retraining", study.name, left)
        budget = budget.replace(extra={**budget.extra, "time_limit": left})
    with progress_bar(progress, total=budget.epochs or 1, label=label) as bar:
        evaluate_and_record(
            store,
            study,
            trial,
            budget,
            run.evaluator,
            keep_weights=run.config.keep_weights,
            on_report=lambda _step, value: bar.advance(f"val_acc={value:.4f}"),
            on_replan=bar.set_total,
        )
    return store.get_trial(trial.id), 1


def search_context(run: StudyRun, trial: TrialRecord) -> OneShotContext:
    """The in-process context of a study's supernet search: the evaluator's data at the
    study's budget (so ``--data-fraction`` and ``--resolution`` shrink the search too), with
    the strategy's ``search_data_fraction`` and ``search_resolution`` applied."""
    from nasplat.ml.training import resolve_device

    return OneShotContext(
        run.store,
        run.study,
        run.space,
        run.config.seed,
        run.evaluator.load_splits(run.strategy.search_budget(run.budget)),  # type: ignore[attr-defined]
        resolve_device(run.config.device),
        trial,
    )


def run_one_shot(run: StudyRun, progress: bool = True) -> SearchResult:
    """Run a one-shot strategy's search, then retrain its genotype (see the module doc)."""
    store, study = run.store, run.study
    strategy: Any = run.strategy
    time_limit = run.config.time_limit
    deadline = None if time_limit is None else time.monotonic() + time_limit
    retraining = latest_trial(store, study.id, RETRAIN_TAG)
    if retraining is not None and retraining.state == "RUNNING":
        store.interrupt_running(study.id)  # an earlier session was killed while retraining
    trial, created = supernet_trial(run)
    if trial.state == "COMPLETE":
        genotype = trial.genotype
        log.info("%s: the supernet search already finished; retraining its result", study.name)
    else:
        context = search_context(run, trial)
        checkpoint = store.load_checkpoint(study.id) or {}
        done = checkpoint.get("one_shot", {}).get("epoch", 0)
        started = time.perf_counter()
        label = f"{study.name} supernet"
        with progress_bar(progress, total=strategy.epochs, completed=done, label=label) as bar:
            context.advance = bar.advance
            try:
                genotype = run.executor.search_one_shot(strategy, context)
            except Exception as exc:  # a kill (KeyboardInterrupt) leaves it RUNNING instead
                store.finish_trial(trial.id, state="FAILED", error=describe_error(exc))
                raise
            finally:
                run.executor.close()
        genotype = run.space.canonicalize(genotype)
        series = store.intermediate_values(trial.id, "value")
        metrics = {
            "search_seconds": time.perf_counter() - started,
            "epochs": float(strategy.epochs),
        }
        if series:
            metrics["supernet_val_acc"] = series[-1][1]
        store.set_trial_architecture(trial.id, genotype)
        store.finish_trial(trial.id, state="COMPLETE", value=None, metrics=metrics)
        log.info("%s: derived %s", study.name, run.space.to_notation(genotype))
    if strategy.retrain_epochs == 0:  # the derived genotype is the result, untrained
        log.info("%s: --retrain-epochs 0: not retrained", study.name)
        return SearchResult(study, created, None, derived=genotype)
    best, retrained = retrain(run, genotype, progress, deadline)
    return SearchResult(study, created + retrained, best if best.state == "COMPLETE" else None)
