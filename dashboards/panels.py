"""The panels of a study page, shared by the static report and the live dashboard.

A panel is a figure, or, when there is nothing to draw, a line saying why; a panel that does
not apply to the study (architecture weights of a black-box study) is left out. Every read of
the store behind one drawing of a study goes through one :class:`StudySource`, so the trials
are read once for the three Overview figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
import plotly.graph_objects as go

from dashboards import data
from dashboards.cells import genotype_graph
from dashboards.db import Reader, StudyInfo
from dashboards.figures import (
    arch_weights_figure,
    best_so_far_figure,
    cell_figure,
    derived_genotype_figure,
    empty_figure,
    empty_reason,
    hypervolume_figure,
    learning_curves_figure,
    op_frequency_figure,
    parallel_categories_figure,
    timeline_figure,
    trials_figure,
)
from dashboards.fmt import format_value
from dashboards.limits import MAX_POINTS, TIMELINE_BARS
from dashboards.summary import Summary, summary_with_best
from nasplat.genotype import Genotype

TITLES = {
    "best-so-far": "Best so far",
    "hypervolume": "Hypervolume",
    "trials": "All trials",
    "timeline": "Timeline",
    "cell": "Best architecture",
    "ops": "Operator frequency",
    "decisions": "Decisions",
    "curves": "Learning curves",
    "alphas": "Architecture weights",
    "derived": "Derived genotype",
}
"""Every panel by key, in page order."""


@dataclass(frozen=True)
class Panel:
    """A figure, or ``figure`` None and ``note`` saying why there is nothing to draw."""

    key: str
    figure: go.Figure | None
    note: str = ""

    @property
    def title(self) -> str:
        return TITLES[self.key]


class StudySource:
    """The reads behind one drawing of a study, each done at most once.

    ``max_points``: trials drawn per scatter and timeline bars before thinning (None: all).
    """

    def __init__(
        self,
        reader: Reader,
        study: str,
        compare: Sequence[str] = (),
        top_k: int = 20,
        max_points: int | None = MAX_POINTS,
        previous: StudySource | None = None,
    ) -> None:
        self.previous = previous  # the same study drawn earlier: its trials are read again only
        # where they can have changed (see data.trial_points)
        self.reader = reader
        self.study = study
        self.compare = [c for c in compare if c != study]
        self.top_k = top_k
        self.max_points = max_points
        self.drawn: dict[str, Panel | None] = {}  # panels already drawn, by key
        self.kept_cell = None if previous is None else previous.cell_drawing()

    def cell_drawing(self) -> tuple[tuple[int, int, float], go.Figure] | None:
        """(study id, best trial number, value) and the best-architecture figure drawn for it, if
        drawn: a later source of the study keeps the drawing while the best trial stays."""
        best, drawn = self.__dict__.get("best"), self.drawn.get("cell")
        if best is None or drawn is None or drawn.figure is None:
            return None
        return (self.info.id, best[0], best[1]), drawn.figure

    @cached_property
    def info(self) -> StudyInfo:
        return self.reader.study(self.study)

    @cached_property
    def points(self) -> pd.DataFrame:
        _ = self.info  # the study's id, to tell a later study of the same name apart
        since = self.previous.known_points() if self.previous is not None else None
        self.previous = None  # read once: the earlier source can go
        return data.trial_points(self.reader, self.study, since=since)

    def known_points(self) -> pd.DataFrame | None:
        """The trials already read, if they were and the study is still the same one."""
        points = self.__dict__.get("points")
        if points is None or self.info.id != self.reader.study(self.study).id:
            return None
        return points

    @cached_property
    def weights(self) -> pd.DataFrame:
        return data.arch_weights(self.reader, self.study)

    @cached_property
    def best(self) -> tuple[int, float, Genotype] | None:
        return data.best_genotype(self.reader, self.study)

    @cached_property
    def summary(self) -> Summary:
        return summary_with_best(self.reader, self.study, self.best)


def _best_so_far(src: StudySource) -> go.Figure:
    frame = data.best_so_far(src.reader, [src.study, *src.compare], {src.study: src.points})
    return best_so_far_figure(frame, src.info.objective)


def _hypervolume(src: StudySource) -> go.Figure | None:
    """Multi-objective studies only (their trials carry a ``hypervolume`` metric)."""
    if len(src.info.objectives) < 2:
        return None
    frame = data.hypervolume_history(src.reader, src.study)
    return None if frame.empty else hypervolume_figure(frame, data.reference_text(src.info))


def _trials(src: StudySource) -> go.Figure:
    frame = data.trials_frame(src.reader, src.study, max_points=src.max_points, points=src.points)
    return trials_figure(frame, src.info.objective)


def _timeline(src: StudySource) -> go.Figure:
    line = data.timeline(src.reader, src.study, points=src.points)
    bars = None if src.max_points is None else max(src.max_points, TIMELINE_BARS)
    return timeline_figure(line, data.concurrency(line), max_bars=bars)


def _cell(src: StudySource) -> go.Figure:
    if src.best is None:
        return empty_figure("no completed trial yet", "Best architecture")
    number, value, genotype = src.best
    if src.kept_cell is not None and src.kept_cell[0] == (src.info.id, number, value):
        return src.kept_cell[1]
    objective = src.info.objective
    return cell_figure(
        genotype_graph(genotype, src.info.config.get("space_options")),
        f"Best architecture: trial {number}, {objective} {format_value(objective, value)}",
    )


def _alphas(src: StudySource) -> go.Figure | None:
    return None if src.weights.empty else arch_weights_figure(src.weights)


def _derived(src: StudySource) -> go.Figure | None:
    return (
        None if src.weights.empty else derived_genotype_figure(data.derived_genotypes(src.weights))
    )


DRAW: dict[str, Callable[[StudySource], go.Figure | None]] = {
    "best-so-far": _best_so_far,
    "hypervolume": _hypervolume,
    "trials": _trials,
    "timeline": _timeline,
    "cell": _cell,
    "ops": lambda src: op_frequency_figure(
        data.op_frequency(src.reader, src.study, top_k=src.top_k)
    ),
    "decisions": lambda src: parallel_categories_figure(
        data.decisions_frame(src.reader, src.study), src.info.objective
    ),
    "curves": lambda src: learning_curves_figure(
        data.learning_curves(src.reader, src.study), data.rungs(src.reader, src.study)
    ),
    "alphas": _alphas,
    "derived": _derived,
}
"""How each panel is drawn; None: the panel does not apply to the study."""


def panel(src: StudySource, key: str) -> Panel | None:
    """One panel, or None when it does not apply to the study (drawn once per source)."""
    if key not in src.drawn:
        figure = DRAW[key](src)
        reason = None if figure is None else empty_reason(figure)
        src.drawn[key] = (
            None
            if figure is None
            else Panel(key, None, reason)
            if reason is not None
            else Panel(key, figure)
        )
    return src.drawn[key]


def study_panels(src: StudySource, keys: Iterable[str] = TITLES) -> dict[str, Panel]:
    """The panels of ``keys`` that apply to the study, in page order."""
    out = {}
    for key in keys:
        found = panel(src, key)
        if found is not None:
            out[key] = found
    return out
