"""A study's summary header: what ran, how far it got, the best value at the metric's precision,
and the best architecture in its space's notation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from dashboards import data
from dashboards.cells import space_of
from dashboards.db import Reader, StudyInfo
from dashboards.fmt import format_count, format_duration, format_value
from nasplat.genotype import Genotype
from nasplat.store import models

COUNTED = ("COMPLETE", "PRUNED", "FAILED")  # the states that use up a study's budget


@dataclass(frozen=True)
class Summary:
    """What the header of a study page says."""

    info: StudyInfo
    counts: dict[str, int]
    started: float | None  # epoch seconds of the first trial's start
    last: float | None  # epoch seconds of the newest start or finish
    best_number: int | None = None
    best_value: float | None = None
    genotype: Genotype | None = None
    notation: str = ""

    @property
    def trials(self) -> int:
        return sum(self.counts.values())

    @property
    def best_text(self) -> str:
        """The best value at the metric's precision, e.g. ``0.6518 (trial 12)``."""
        if self.best_value is None:
            return "no completed trial yet"
        return f"{format_value(self.info.objective, self.best_value)} (trial {self.best_number})"

    @property
    def budget_text(self) -> str:
        """Trials counted against the budget, e.g. ``18 of 20 trials``."""
        used = sum(self.counts.get(s, 0) for s in COUNTED)
        budget = self.info.config.get("budget")
        text = (
            f"{format_count(used)} of {format_count(int(budget))} trials"
            if budget
            else (f"{format_count(used)} trials")
        )
        limit = self.info.config.get("time_limit")
        return text + (f", time limit {format_duration(float(limit))}" if limit else "")

    @property
    def trials_text(self) -> str:
        """``100 (90 complete, 8 pruned, 2 interrupted)``: every state present."""
        parts = [f"{format_count(n)} {s.lower()}" for s, n in self.counts.items() if n]
        return f"{format_count(self.trials)}" + (f" ({', '.join(parts)})" if parts else "")

    @property
    def time_text(self) -> str:
        """When the study started and how long it has run (first start to newest event)."""
        if self.started is None:
            return "no trial yet"
        began = datetime.fromtimestamp(self.started, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"{began}, ran {format_duration((self.last or self.started) - self.started)}"

    def items(self) -> list[tuple[str, str]]:
        """(label, text) pairs in reading order."""
        info = self.info
        return [
            ("study", info.name),
            ("space", info.space),
            ("strategy", info.strategy),
            ("evaluator", info.evaluator),
            ("objective", f"{info.objective} ({info.direction.value})"),
            ("budget used", self.budget_text),
            ("best", self.best_text),
            ("trials", self.trials_text),
            ("time", self.time_text),
        ]


def notation(genotype: Genotype, space_options: dict[str, Any] | None = None) -> str:
    """The genotype in its space's notation (DARTS tuples, the NAS-Bench-201 string, ...), or
    its decisions as ``name=value`` lines for spaces whose notation is plain JSON."""
    space = space_of(genotype.space, space_options)
    text = space.to_notation(genotype) if space is not None else genotype.to_json()
    if text != genotype.to_json():
        return text
    return "\n".join(f"{k}={v}" for k, v in genotype.items())


def study_summary(reader: Reader, study: str) -> Summary:
    """The summary of ``study``: counts by state in SQL, the best trial and its notation."""
    return summary_with_best(reader, study, data.best_genotype(reader, study))


def summary_with_best(
    reader: Reader, study: str, best: tuple[int, float, Genotype] | None
) -> Summary:
    """:func:`study_summary` with the best trial already read (see
    :func:`dashboards.data.best_genotype`)."""
    info = reader.study(study)
    t = models.trials
    counts = dict(
        reader.execute(
            select(t.c.state, func.count()).where(t.c.study_id == info.id).group_by(t.c.state)
        )
    )
    ordered = {s: int(counts.pop(s, 0)) for s in data.STATE_ORDER}
    ordered.update({str(s): int(n) for s, n in counts.items()})
    extra: dict[str, Any] = {}
    if best is not None:
        number, value, genotype = best
        extra = {
            "best_number": number,
            "best_value": value,
            "genotype": genotype,
            "notation": notation(genotype, info.config.get("space_options")),
        }
    first, last = data.study_span(reader, study)
    return Summary(info, ordered, first, last, **extra)
