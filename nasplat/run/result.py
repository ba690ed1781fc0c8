"""What a driver returns."""

from __future__ import annotations

from dataclasses import dataclass

from nasplat.errors import StorageError
from nasplat.genotype import Genotype
from nasplat.store import StudyRecord, TrialRecord, TrialStore


@dataclass(frozen=True)
class SearchResult:
    """``derived``: a one-shot search's genotype when it was not retrained (no best trial)."""

    study: StudyRecord
    trials_run: int
    best: TrialRecord | None
    derived: Genotype | None = None


def best_trial(store: TrialStore, study: StudyRecord) -> TrialRecord | None:
    """The study's best trial, or None before the first completed one."""
    try:
        return store.best_trial(study.id)
    except StorageError:
        return None
