"""Frozen records handed out by the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import ConfigError, StorageError
from nasplat.genotype import Genotype
from nasplat.shape import NetShape

STATES = ("RUNNING", "COMPLETE", "PRUNED", "FAILED", "INTERRUPTED")
FINISHED = ("COMPLETE", "PRUNED", "FAILED")
"""The states a trial's evaluation ends in; they count towards a study's budget."""
INTERRUPTED = "INTERRUPTED"
"""A trial whose evaluation never ended: its search process died or was stopped (crash, signal,
SIGKILL) or its worker was lost. On record, never counted towards the budget; its architecture
is evaluated again when the study resumes."""
INTERRUPTED_ERROR = "interrupted: the search stopped before this trial finished"
ANY_TAG = "*"
"""``tag`` filter meaning "every trial, tagged or not" (``None`` means untagged only)."""


@dataclass(frozen=True)
class StudyRecord:
    id: int
    name: str
    space: str
    strategy: str
    evaluator: str
    objectives: tuple[tuple[str, str], ...]
    config: dict[str, Any]
    created_at: datetime

    @property
    def objective(self) -> str:
        return self.objectives[0][0]

    @property
    def direction(self) -> Direction:
        return Direction.parse(self.objectives[0][1])

    @property
    def shape(self) -> NetShape:
        """The network shape recorded with the study (defaults for studies that train nothing)."""
        return NetShape.of_study(self.config)


@dataclass(frozen=True)
class TrialRecord:
    id: int
    study_id: int
    number: int
    state: str
    genotype: Genotype
    arch_hash: str
    budget: dict[str, Any]
    value: float | None
    metrics: dict[str, float]
    started_at: datetime
    finished_at: datetime | None
    worker: str | None
    error: str | None
    tag: str | None = None
    retries: int = 0
    intermediate: tuple[tuple[int, float], ...] = field(default=())

    @property
    def params(self) -> dict[str, Any]:
        """The architecture's decisions (as Optuna's ``trial.params``)."""
        return dict(self.genotype)

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


NEW, EVALUATED, RUNNING_ELSEWHERE, FULL = "new", "evaluated", "running", "full"


@dataclass(frozen=True)
class Claim:
    """What :meth:`TrialStore.claim_trial` found: a ``new`` RUNNING trial for the caller, the
    architecture ``evaluated`` already (that trial), ``running`` in another process (that
    trial), or the budget ``full`` (no trial)."""

    status: str
    trial: TrialRecord | None = None


def checked_objectives(objectives: Sequence[tuple[str, str]]) -> list[tuple[str, Direction]]:
    """Objectives with their directions parsed (StorageError for a bad direction)."""
    try:
        return [(metric, Direction.parse(direction)) for metric, direction in objectives]
    except ConfigError as exc:
        raise StorageError(str(exc)) from None
