"""The hypervolume of a multi-objective study after each trial (trial metric ``hypervolume``).

The loop keeps the study's Pareto front in memory (read from the store once, when it starts)
and gives every trial it finishes the hypervolume of the front so far: never smaller than the
previous trial's. The reference point is the study's ``reference_point`` (in the objectives'
own units); without one it is fixed when the first trial completes (each objective of that
trial made twice as bad, :func:`nasplat.pareto.default_reference`) and written into the study's
config in the same step, so a resumed study and processes sharing it keep the same one. A
process sharing a study counts the other processes' trials that completed before it started.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from nasplat.pareto import (
    ParetoArchive,
    Point,
    default_reference,
    orient,
    oriented_point,
    study_reference,
)
from nasplat.store import StudyRecord, TrialStore

log = logging.getLogger("nasplat")
REFERENCE_KEY = "reference_point"


class HypervolumeRecorder:
    """The Pareto front of a study's COMPLETE trials and its hypervolume."""

    def __init__(self, store: TrialStore, study: StudyRecord) -> None:
        self.store = store
        self.study = study
        self.objectives = study.objectives
        reference = study_reference(study.config)
        self.archive = ParetoArchive(
            None if reference is None else orient(reference, self.objectives)
        )
        for trial in store.trials(study.id, states=["COMPLETE"]):
            point = oriented_point(trial.metrics, self.objectives)
            if point is not None:
                self._add(point)

    @property
    def reference(self) -> list[float] | None:
        """The reference point in the objectives' units (None until it is fixed)."""
        ref = self.archive.reference
        return None if ref is None else list(orient(ref, self.objectives))

    @property
    def hypervolume(self) -> float:
        return self.archive.hypervolume

    def record(self, state: str, metrics: Mapping[str, float]) -> float:
        """Add a finished trial (only a COMPLETE one with every objective counts); the
        hypervolume after it."""
        point = oriented_point(metrics, self.objectives) if state == "COMPLETE" else None
        if point is not None:
            self._add(point)
        return self.archive.hypervolume

    def _add(self, point: Point) -> None:
        if self.archive.reference is None:
            proposed = list(orient(default_reference(point), self.objectives))
            stored = self.store.setdefault_study_config(self.study.id, REFERENCE_KEY, proposed)
            self.archive.set_reference(orient(stored, self.objectives))
            shown = ", ".join(
                f"{metric}={value:g}"
                for (metric, _), value in zip(self.objectives, stored, strict=True)
            )
            log.info("hypervolume reference point: %s (--reference-point to choose)", shown)
        self.archive.add(point)
