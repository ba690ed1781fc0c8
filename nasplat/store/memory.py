"""An in-memory trial store (``memory://``): the SQL store's protocol held in dicts.

For benchmarks (``nasplat bench``) and quick runs that need no file. It lives as long as the
process, so worker processes (the Ray executor) cannot share it, and nothing survives a crash.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from nasplat.budget import Budget
from nasplat.errors import StorageError, StudyExistsError
from nasplat.genotype import Genotype
from nasplat.store.records import (
    ANY_TAG,
    EVALUATED,
    FINISHED,
    FULL,
    INTERRUPTED,
    INTERRUPTED_ERROR,
    NEW,
    STATES,
    Claim,
    StudyRecord,
    TrialRecord,
    checked_objectives,
)

MEMORY_URL = "memory://"


def _now() -> datetime:
    return datetime.now(UTC)


def _tag_matches(trial: TrialRecord, tag: str | None) -> bool:
    return tag == ANY_TAG or trial.tag == tag


class MemoryStore:
    """The :class:`~nasplat.store.protocol.TrialStore` protocol in memory. Not thread safe."""

    def __init__(self, url: str = MEMORY_URL) -> None:
        self.url = url
        self._studies: dict[int, StudyRecord] = {}
        self._trials: dict[int, TrialRecord] = {}
        self._by_study: dict[int, list[int]] = {}
        self._evaluated: dict[tuple[int, str, str, str], int] = {}
        self._best: dict[tuple[int, str | None], int] = {}
        self._intermediate: dict[int, dict[str, dict[int, float]]] = {}
        self._checkpoints: dict[int, list[dict[str, Any]]] = {}
        self._weights: dict[int, bytes] = {}
        self._ids = itertools.count(1)

    @property
    def safe_url(self) -> str:
        return self.url

    def close(self) -> None:
        """Nothing to release."""

    # --- studies ----------------------------------------------------------------------------
    def create_study(
        self,
        name: str,
        *,
        space: str,
        strategy: str,
        evaluator: str,
        objectives: Sequence[tuple[str, str]],
        config: dict[str, Any],
    ) -> StudyRecord:
        if self.has_study(name):
            raise StudyExistsError(f"study {name!r} already exists in {self.url}")
        record = StudyRecord(
            id=next(self._ids),
            name=name,
            space=space,
            strategy=strategy,
            evaluator=evaluator,
            objectives=tuple((m, str(d)) for m, d in checked_objectives(objectives)),
            config=dict(config),
            created_at=_now(),
        )
        self._studies[record.id] = record
        self._by_study[record.id] = []
        self._checkpoints[record.id] = []
        return record

    def setdefault_study_config(self, study_id: int, key: str, value: Any) -> Any:
        record = self._study(study_id)
        if record.config.get(key) is None:
            record = replace(record, config={**record.config, key: value})
            self._studies[study_id] = record
        return record.config[key]

    def _study(self, study: str | int) -> StudyRecord:
        if isinstance(study, int):
            if study not in self._studies:
                raise StorageError(f"no study with id {study}")
            return self._studies[study]
        return self.get_study(study)

    def get_study(self, name: str) -> StudyRecord:
        for record in self._studies.values():
            if record.name == name:
                return record
        known = ", ".join(self.study_names()) or "none"
        raise StorageError(f"no study {name!r} in {self.url} (studies: {known})")

    def has_study(self, name: str) -> bool:
        return name in self.study_names()

    def study_names(self) -> list[str]:
        return [s.name for s in self._studies.values()]

    def list_studies(self) -> list[dict[str, Any]]:
        out = []
        for study in self._studies.values():
            trials = self.trials(study.id)
            best = self._best.get((study.id, ANY_TAG))
            out.append(
                {
                    "name": study.name,
                    "space": study.space,
                    "strategy": study.strategy,
                    "evaluator": study.evaluator,
                    "objective": study.objective,
                    "direction": str(study.direction),
                    "trials": len(trials),
                    **{s.lower(): sum(t.state == s for t in trials) for s in STATES},
                    "best_value": None if best is None else self._trials[best].value,
                    "created_at": study.created_at.isoformat(timespec="seconds"),
                }
            )
        return out

    def delete_study(self, name: str) -> None:
        study = self.get_study(name)
        for trial_id in self._by_study.pop(study.id):
            self._trials.pop(trial_id)
            self._intermediate.pop(trial_id, None)
            self._weights.pop(trial_id, None)
        self._checkpoints.pop(study.id)
        self._evaluated = {k: v for k, v in self._evaluated.items() if k[0] != study.id}
        self._best = {k: v for k, v in self._best.items() if k[0] != study.id}
        del self._studies[study.id]

    # --- trials -----------------------------------------------------------------------------
    def create_trial(
        self,
        study_id: int,
        genotype: Genotype,
        budget: Budget,
        *,
        worker: str | None = None,
        tag: str | None = None,
    ) -> TrialRecord:
        self._study(study_id)
        record = TrialRecord(
            id=next(self._ids),
            study_id=study_id,
            number=len(self._by_study[study_id]),
            state="RUNNING",
            genotype=genotype,
            arch_hash=genotype.sha,
            budget=budget.to_dict(),
            value=None,
            metrics={},
            started_at=_now(),
            finished_at=None,
            worker=worker,
            error=None,
            tag=tag,
        )
        self._trials[record.id] = record
        self._by_study[study_id].append(record.id)
        return record

    def claim_trial(
        self,
        study_id: int,
        genotype: Genotype,
        budget: Budget,
        *,
        tag: str | None = None,
        limit: int | None = None,
        owner: str | None = None,
    ) -> Claim:
        """As the SQL store's; one process holds this store, so nothing runs elsewhere."""
        found = self.find_evaluated(study_id, genotype, budget)
        if found is not None:
            return Claim(EVALUATED, found)
        if limit is not None and len(self._by_study[self._study(study_id).id]) >= limit:
            counted = self.count_trials(study_id, ("RUNNING", *FINISHED), tag)
            if counted >= limit:
                return Claim(FULL)
        return Claim(NEW, self.create_trial(study_id, genotype, budget, worker=owner, tag=tag))

    def interrupt_orphans(
        self, study_id: int, trial_ids: Iterable[int] | None = None, *, mine: bool = False
    ) -> int:
        """Only this process uses the store: its RUNNING trials are orphans with ``mine``."""
        return self.interrupt_running(study_id, trial_ids) if mine else 0

    def beat(self, owner: str) -> None:
        """Only this process uses the store."""

    def end_beat(self, owner: str) -> None:
        """Only this process uses the store."""

    def _trial(self, trial_id: int) -> TrialRecord:
        if trial_id not in self._trials:
            raise StorageError(f"no trial with id {trial_id}")
        return self._trials[trial_id]

    def finish_trial(
        self,
        trial_id: int,
        *,
        state: str,
        value: float | None = None,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
        weights: bytes | None = None,
        keep_weights: str = "best",
        checkpoint: dict[str, Any] | None = None,
        worker: str | None = None,
    ) -> None:
        if state not in FINISHED:
            raise ValueError(f"finish state must be one of {FINISHED}, got {state!r}")
        old = self._trial(trial_id)
        record = replace(
            old,
            state=state,
            value=value,
            metrics={k: float(v) for k, v in (metrics or {}).items()},
            error=error,
            finished_at=_now(),
            worker=worker if worker is not None else old.worker,
        )
        self._trials[trial_id] = record
        if state in ("COMPLETE", "PRUNED"):
            key = (record.study_id, record.genotype.space, record.arch_hash, _budget_key(record))
            self._evaluated.setdefault(key, trial_id)
        improved = False
        if state == "COMPLETE" and value is not None:
            direction = self._studies[record.study_id].direction
            for tag in (ANY_TAG, record.tag):
                best = self._best.get((record.study_id, tag))
                if best is None or direction.better(value, self._trials[best].value):
                    self._best[(record.study_id, tag)] = trial_id
                    improved = improved or tag == ANY_TAG
        if weights is not None and keep_weights != "none":
            if keep_weights == "all":
                self._weights[trial_id] = weights
            elif improved:
                study_trials = set(self._by_study[record.study_id])
                for held in [t for t in self._weights if t in study_trials]:
                    del self._weights[held]
                self._weights[trial_id] = weights
        if checkpoint is not None:
            self.save_checkpoint(record.study_id, checkpoint)

    def set_trial_architecture(self, trial_id: int, genotype: Genotype) -> None:
        old = self._trial(trial_id)
        self._trials[trial_id] = replace(old, genotype=genotype, arch_hash=genotype.sha)

    def mark_retry(self, trial_id: int, error: str) -> None:
        old = self._trial(trial_id)
        self._trials[trial_id] = replace(old, retries=old.retries + 1, error=error)

    def interrupt_running(self, study_id: int, trial_ids: Iterable[int] | None = None) -> int:
        wanted = None if trial_ids is None else set(trial_ids)
        running = [
            t
            for t in self.trials(study_id)
            if t.state == "RUNNING" and (wanted is None or t.id in wanted)
        ]
        for trial in running:
            self._trials[trial.id] = replace(
                trial, state=INTERRUPTED, error=INTERRUPTED_ERROR, finished_at=_now()
            )
        return len(running)

    def get_trial(self, trial_id: int) -> TrialRecord:
        return self._with_curve(self._trial(trial_id), False)

    def trials(
        self,
        study: str | int,
        *,
        states: Iterable[str] | None = None,
        with_intermediate: bool = False,
        since: int = 0,
    ) -> list[TrialRecord]:
        wanted = None if states is None else set(states)
        ids = self._by_study[self._study(study).id][since:]  # numbers are list positions
        return [
            self._with_curve(self._trials[i], with_intermediate)
            for i in ids
            if wanted is None or self._trials[i].state in wanted
        ]

    def _with_curve(self, trial: TrialRecord, with_intermediate: bool) -> TrialRecord:
        if not with_intermediate:
            return trial
        return replace(trial, intermediate=tuple(self.intermediate_values(trial.id)))

    def count_trials(
        self, study_id: int, states: Iterable[str] = FINISHED, tag: str | None = ANY_TAG
    ) -> int:
        wanted = set(states)
        return sum(
            self._trials[i].state in wanted and _tag_matches(self._trials[i], tag)
            for i in self._by_study[study_id]
        )

    def best_trial(self, study: str | int, tag: str | None = ANY_TAG) -> TrialRecord:
        record = self._study(study)
        best = self._best.get((record.id, tag))
        if best is None:
            raise StorageError(f"study {record.name!r} has no completed trial yet")
        return self._trials[best]

    def find_evaluated(
        self, study_id: int, genotype: Genotype, budget: Budget
    ) -> TrialRecord | None:
        found = self._evaluated.get((study_id, genotype.space, genotype.sha, budget.key()))
        return None if found is None else self._trials[found]

    def trial_index(self, study_id: int, budget: Budget) -> list[tuple[int, str, str]]:
        key = budget.key()
        trials = (self._trials[i] for i in self._by_study[study_id])
        return [(t.number, t.arch_hash, t.state) for t in trials if _budget_key(t) == key]

    def trial_weights(self, trial_id: int) -> bytes | None:
        return self._weights.get(trial_id)

    # --- learning curves ----------------------------------------------------------------------
    def report_intermediate(
        self, trial_id: int, step: int, value: float, key: str = "value"
    ) -> None:
        self._intermediate.setdefault(trial_id, {}).setdefault(key, {})[step] = float(value)

    def intermediate_values(
        self, trial_id: int, key: str | None = "value"
    ) -> list[tuple[int, float]]:
        series = self.intermediate_series(trial_id)
        if key is not None:
            return series.get(key, [])
        return sorted(point for points in series.values() for point in points)

    def intermediate_series(self, trial_id: int) -> dict[str, list[tuple[int, float]]]:
        stored = self._intermediate.get(trial_id, {})
        return {key: sorted(points.items()) for key, points in sorted(stored.items())}

    # --- strategy checkpoints ---------------------------------------------------------------
    def save_checkpoint(self, study_id: int, state: dict[str, Any]) -> None:
        self._checkpoints[study_id].append(state)

    def load_checkpoint(self, study_id: int) -> dict[str, Any] | None:
        saved = self._checkpoints.get(study_id)
        return saved[-1] if saved else None

    def prune_checkpoints(self, study_id: int, keep: int = 3) -> None:
        del self._checkpoints[study_id][:-keep]

    # --- tables -------------------------------------------------------------------------------
    def trials_dataframe(self, study: str | int) -> Any:
        from nasplat.store.frames import trials_frame

        return trials_frame(self.trials(study))


def _budget_key(record: TrialRecord) -> str:
    return Budget.from_dict(record.budget).key()
