"""The static report: one self-contained HTML file for one or several studies.

Each study gets a summary header (study, space, strategy, budget used, best value at the
metric's precision, time), its best architecture drawn beside its notation, then every panel
that applies; panels with nothing to show are listed with the reason instead of drawn empty.
plotly.js is inlined once (no CDN, no MathJax), so the file opens with no network.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import plotly.graph_objects as go

from dashboards.db import Reader
from dashboards.fmt import format_count
from dashboards.limits import MAX_POINTS
from dashboards.panels import Panel, StudySource, study_panels
from dashboards.plotlyjs import plotly_js_text
from dashboards.style import CSS
from dashboards.summary import Summary, study_summary

PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def study_figures(
    reader: Reader, study: str, compare: Sequence[str] = (), top_k: int = 20
) -> dict[str, go.Figure]:
    """Every figure of a study that has something to draw, by panel key."""
    src = StudySource(reader, study, compare, top_k)
    return {k: p.figure for k, p in study_panels(src).items() if p.figure is not None}


class _Figures:
    """Turns figures into HTML, inlining plotly.js (:mod:`dashboards.plotlyjs`) with the first
    one only."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: go.Figure, key: str) -> str:
        self.count += 1
        script = f"<script>{plotly_js_text()}</script>" if self.count == 1 else ""
        return script + fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            div_id=f"plot-{self.count}-{key}",
            config=PLOT_CONFIG,
            default_width="100%",
        )


def _summary_html(summary: Summary) -> str:
    items = "".join(
        f'<div><dt>{html.escape(label)}</dt><dd class="{"best" if label == "best" else ""}">'
        f"{html.escape(text)}</dd></div>"
        for label, text in summary.items()
    )
    return f'<dl class="summary">{items}</dl>'


def _best_html(cell: Panel | None, summary: Summary, figure_html: _Figures) -> str:
    if cell is None or cell.figure is None:
        return ""
    return (
        '<div class="card best-arch" id="best-architecture">'
        f'<div class="drawing">{figure_html(cell.figure, "cell")}</div>'
        '<div class="notation"><h2>Notation</h2>'
        f'<pre class="notation-text" id="best-notation">{html.escape(summary.notation)}</pre>'
        "</div></div>"
    )


def _study_html(
    reader: Reader,
    study: str,
    compare: Sequence[str],
    top_k: int,
    max_points: int | None,
    figure_html: _Figures,
) -> str:
    summary = study_summary(reader, study)
    panels = study_panels(StudySource(reader, study, compare, top_k, max_points))
    cell = panels.pop("cell", None)
    parts = [
        f'<section class="study" id="study-{html.escape(study)}">',
        f'<div class="card"><h2>Study {html.escape(study)}</h2>{_summary_html(summary)}</div>',
        _best_html(cell, summary, figure_html),
    ]
    for key, found in panels.items():
        if found.figure is not None:
            parts.append(
                f'<div class="card figure" id="fig-{key}">{figure_html(found.figure, key)}</div>'
            )
    notes = [p for p in (cell, *panels.values()) if p is not None and p.figure is None]
    if notes:
        items = "".join(
            f"<li><b>{html.escape(p.title)}</b>: {html.escape(p.note)}</li>" for p in notes
        )
        parts.append(
            f'<div class="card" id="not-shown"><h2>Not shown</h2><ul class="notes">{items}</ul></div>'
        )
    parts.append("</section>")
    return "".join(parts)


def _contents(reader: Reader, studies: Sequence[str]) -> str:
    rows = []
    for name in studies:
        summary = study_summary(reader, name)
        rows.append(
            f'<li><a href="#study-{html.escape(name)}">{html.escape(name)}</a>: '
            f"{html.escape(summary.info.space)} / {html.escape(summary.info.strategy)}, "
            f"{format_count(summary.trials)} trials, best {html.escape(summary.best_text)}</li>"
        )
    return f'<nav class="card"><h2>Studies</h2><ul class="notes">{"".join(rows)}</ul></nav>'


def render_report(
    reader: Reader,
    studies: str | Sequence[str],
    compare: Sequence[str] = (),
    top_k: int = 20,
    max_points: int | None = MAX_POINTS,
) -> str:
    """The report of one study (or of several, one section each) as one HTML string."""
    names = [studies] if isinstance(studies, str) else list(studies)
    figure_html = _Figures()
    body = "".join(_study_html(reader, n, compare, top_k, max_points, figure_html) for n in names)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = names[0] if len(names) == 1 else f"{len(names)} studies"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nasplat report: {html.escape(title)}</title>
<style>{CSS}</style></head>
<body><div class="page">
<div class="topbar"><h1>nasplat report: {html.escape(title)}</h1>
<span class="muted">generated {stamp}</span></div>
{_contents(reader, names) if len(names) > 1 else ""}
{body}
</div></body></html>
"""


def write_report(
    reader: Reader,
    studies: str | Sequence[str],
    out: str | Path,
    compare: Sequence[str] = (),
    top_k: int = 20,
    max_points: int | None = MAX_POINTS,
) -> Path:
    """Write the report of ``studies`` to ``out`` (folders created) and return its path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(reader, studies, compare, top_k, max_points), encoding="utf-8")
    return path
