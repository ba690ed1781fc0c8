"""The drawing step: tables from :mod:`dashboards.data` in, plotly Figures out.

No function here reads the store. Scatter-like traces with one point per trial use WebGL
(``go.Scattergl``) and one trace per group (lines of many trials are joined with gaps), so a
figure stays a handful of traces at 100,000 trials.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from dashboards.cells import CellGraph, Component, Edge
from dashboards.data import COST_METRICS, STATE_ORDER
from dashboards.fmt import format_count, format_duration
from dashboards.limits import TIMELINE_BARS
from dashboards.style import STATE_COLORS
from dashboards.thin import binned_concurrency, drawn_caption, time_bins
from nasplat.strategy import ARCH_WEIGHT_KEYS

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@functools.cache
def _template() -> go.layout.Template:
    """plotly_white's layout (its per-trace defaults left out: applying the whole template to
    every figure costs more than drawing a thinned one)."""
    return go.layout.Template(layout=pio.templates["plotly_white"].layout)


SVG_POINTS = 5_000
RETRIED_MARKS = 100  # retried trials marked on a binned timeline


def _layout(
    fig: go.Figure, title: str, height: int = 420, revision: str | None = None, caption: str = ""
) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "subtitle": {"text": caption}},
        template=_template(),
        height=height,
        margin={"l": 60, "r": 20, "t": 80 if caption else 60, "b": 50},
        legend={"orientation": "h", "y": -0.18},
        uirevision=revision or title,  # keep zoom and legend choices across live refreshes
    )
    return fig


def empty_figure(message: str, title: str = "") -> go.Figure:
    """A blank figure that says why there is nothing to draw (the reason is also kept in
    ``layout.meta``, see :func:`empty_reason`, so pages can show a line instead)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(meta={"empty": message})
    return _layout(fig, title, height=260)


def empty_reason(fig: go.Figure) -> str | None:
    """Why ``fig`` draws nothing (an :func:`empty_figure`), or None for a figure with data."""
    meta = fig.layout.meta
    return meta.get("empty") if isinstance(meta, dict) else None


def _translucent(color: str, alpha: float = 0.75) -> str:
    """``#rrggbb`` as ``rgba(...)`` (cheaper to draw than a per-point marker opacity)."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _scatter(points: int, **trace: object) -> go.Scatter | go.Scattergl:
    """An SVG scatter, or a WebGL one past :data:`SVG_POINTS` points (WebGL starts slowly,
    above all in software, but draws many points fast)."""
    return (go.Scattergl if points > SVG_POINTS else go.Scatter)(**trace)


def _gapped(frame: pd.DataFrame, key: str, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """x and y of many polylines (grouped by ``key``) joined into one array with NaN gaps."""
    if frame.empty:
        return np.array([]), np.array([])
    starts = frame[key].ne(frame[key].shift()).to_numpy().copy()
    starts[0] = False
    n = len(frame) + int(starts.sum())
    positions = np.arange(len(frame)) + np.cumsum(starts)
    xs = np.full(n, np.nan)
    ys = np.full(n, np.nan)
    xs[positions] = frame[x].to_numpy(dtype=float)
    ys[positions] = frame[y].to_numpy(dtype=float)
    return xs, ys


# --- best so far ----------------------------------------------------------------------------------
def best_so_far_figure(frame: pd.DataFrame, objective: str = "objective") -> go.Figure:
    """One step line per study against trial number (left) and wall-clock seconds (right)."""
    title = f"Best {objective} so far"
    if frame.empty:
        return empty_figure("no completed trial yet", title)
    fig = make_subplots(
        rows=1, cols=2, shared_yaxes=True, subplot_titles=("by trial number", "by wall-clock time")
    )
    for k, (study, group) in enumerate(frame.groupby("study", sort=False)):
        color = PALETTE[k % len(PALETTE)]
        by_time = group.sort_values("elapsed_s")
        for col, x, y, data in (
            (1, "number", "best_by_number", group),
            (2, "elapsed_s", "best_by_time", by_time),
        ):
            fig.add_trace(
                _scatter(
                    len(data),
                    x=data[x],
                    y=data[y],
                    mode="lines+markers",
                    line={"shape": "hv", "color": color},
                    marker={"size": 5},
                    name=str(study),
                    legendgroup=str(study),
                    showlegend=col == 1,
                    hovertemplate=f"{study}<br>{x}=%{{x}}<br>best=%{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="trial number", row=1, col=1)
    fig.update_xaxes(title_text="seconds since the study started", row=1, col=2)
    fig.update_yaxes(title_text=objective, row=1, col=1)
    return _layout(fig, title)


# --- hypervolume ----------------------------------------------------------------------------------
def hypervolume_figure(frame: pd.DataFrame, reference: str = "") -> go.Figure:
    """The study's hypervolume after each trial, a step line (never decreasing)."""
    title = "Hypervolume of the Pareto front" + (
        f" (reference point {reference})" if reference else ""
    )
    if frame.empty:
        return empty_figure("no hypervolume: not a multi-objective study, or no trial yet", title)
    fig = go.Figure(
        go.Scattergl(
            x=frame["number"],
            y=frame["hypervolume"],
            mode="lines+markers",
            line={"shape": "hv", "color": PALETTE[0]},
            marker={"size": 5},
            name="hypervolume",
            hovertemplate="trial %{x}<br>hypervolume=%{y:.5g}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="trial number")
    fig.update_yaxes(title_text="hypervolume")
    return _layout(fig, title)


# --- all trials -----------------------------------------------------------------------------------
def trials_figure(
    frame: pd.DataFrame, objective: str = "objective", metrics: Sequence[str] = COST_METRICS
) -> go.Figure:
    """Objective against a cost metric (params, FLOPs, latency: buttons switch between those
    present, one drawn at a time), one trace per state, the Pareto front drawn as a line; hover
    shows the trial, its hash and genotype. Rows whose ``drawn`` column is empty are left out (a
    thinned frame, see :func:`dashboards.data.trials_frame`) and the subtitle says what is
    drawn."""
    title = f"All trials: {objective} against cost"
    scored = frame[frame["value"].notna()] if not frame.empty else frame
    if scored.empty:
        return empty_figure("no trial with an objective value yet", title)
    caption = ""
    if "drawn" in scored:
        caption = drawn_caption(scored["drawn"])
        scored = scored[scored["drawn"] != ""]
    present = [m for m in metrics if m in scored and scored[m].notna().any()]
    axes = present or ["number"]
    hover = (
        "trial %{customdata[0]} (%{customdata[1]})<br>"
        + objective
        + "=%{y:.4g}<br>%{xaxis.title.text}=%{x:.4g}<br>%{customdata[2]}<extra></extra>"
    )

    def custom(rows: pd.DataFrame) -> np.ndarray:
        return np.stack(
            [rows["number"], rows["arch_hash"].astype(str).str.slice(0, 10), rows["genotype"]],
            axis=-1,
        )

    traces, owner = [], []  # owner: the axis (index into axes) each trace belongs to
    for k, metric in enumerate(axes):
        groups = [
            (state, scored[(scored["state"] == state) & scored[metric].notna()])
            for state in STATE_ORDER
        ]
        flag = f"pareto_{metric}"
        if flag in scored:
            groups.append(("Pareto front", scored[scored[flag]].sort_values(metric)))
        for name, group in groups:
            if group.empty:
                continue
            front = name == "Pareto front"
            traces.append(
                _scatter(
                    len(group),
                    x=group[metric],
                    y=group["value"],
                    mode="lines+markers" if front else "markers",
                    line={"shape": "hv", "color": "#222", "width": 1.5} if front else None,
                    marker=(
                        {"symbol": "diamond", "size": 9, "color": "#222"}
                        if front
                        else {"color": _translucent(STATE_COLORS[name]), "size": 6}
                    ),
                    name=name,
                    legendgroup=name,
                    visible=k == 0,
                    customdata=custom(group),
                    hovertemplate=hover,
                )
            )
            owner.append(k)
    fig = go.Figure(traces)

    def x_axis(metric: str) -> dict[str, Any]:
        log = metric != "number" and bool((scored[metric].dropna() > 0).all())
        return {"title": {"text": metric}, "type": "log" if log else "linear"}

    fig.update_layout(xaxis=x_axis(axes[0]), yaxis={"title": {"text": objective}})
    if len(axes) > 1:
        fig.update_layout(
            updatemenus=[
                {
                    "type": "buttons",
                    "direction": "right",
                    "x": 1,
                    "xanchor": "right",
                    "y": 1.02,
                    "yanchor": "bottom",
                    "buttons": [
                        {
                            "label": metric,
                            "method": "update",
                            "args": [
                                {"visible": [o == k for o in owner]},
                                {
                                    "xaxis.title.text": metric,
                                    "xaxis.type": x_axis(metric)["type"],
                                    "xaxis.autorange": True,
                                },
                            ],
                        }
                        for k, metric in enumerate(axes)
                    ],
                }
            ]
        )
    return _layout(fig, title, height=440, caption=caption)


# --- learning curves and rungs ----------------------------------------------------------------------
def learning_curves_figure(
    curves: pd.DataFrame, ladder: pd.DataFrame | None = None, key: str = "value"
) -> go.Figure:
    """Intermediate values per step (one gapped line per state), an ✕ where each pruned trial
    stopped; on the right (when present) the fidelity ladder: value per rung, lines joining the
    same architecture. Curves of a single step (1-epoch trials) are no curves: left out."""
    has_ladder = ladder is not None and not ladder.empty
    has_curves = not curves.empty and curves.groupby("trial_id")["step"].nunique().max() >= 2
    title = {
        (True, True): "Learning curves and fidelity ladder",
        (False, True): "Fidelity ladder",
    }.get((has_curves, has_ladder), "Learning curves")
    if not (has_curves or has_ladder):
        return empty_figure(
            "every trial reported a single step (e.g. 1-epoch trials): no curve to draw"
            if not curves.empty
            else "no intermediate values reported yet",
            title,
        )
    titles = [t for t, on in (("intermediate " + key, has_curves), ("rungs", has_ladder)) if on]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.08)
    if has_curves:
        _draw_curves(fig, curves, key)
    if has_ladder:
        assert ladder is not None
        _draw_ladder(fig, ladder, col=len(titles))
    return _layout(fig, title)


def _draw_curves(fig: go.Figure, curves: pd.DataFrame, key: str) -> None:
    for state in STATE_ORDER:
        group = curves[curves["state"] == state]
        if group.empty:
            continue
        xs, ys = _gapped(group, "trial_id", "step", "value")
        fig.add_trace(
            _scatter(
                len(xs),
                x=xs,
                y=ys,
                mode="lines",
                line={"color": STATE_COLORS[state], "width": 1},
                opacity=0.7,
                name=f"{state} curves",
                connectgaps=False,
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    stops = curves[curves["stopped"]]
    if not stops.empty:
        fig.add_trace(
            _scatter(
                len(stops),
                x=stops["step"],
                y=stops["value"],
                mode="markers",
                marker={"symbol": "x", "size": 9, "color": STATE_COLORS["PRUNED"]},
                name="pruned here",
                customdata=stops[["number"]],
                hovertemplate="trial %{customdata[0]} pruned at step %{x}<br>%{y:.4g}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_yaxes(title_text=key, row=1, col=1)


def _draw_ladder(fig: go.Figure, ladder: pd.DataFrame, col: int) -> None:
    ladder = ladder.sort_values(["arch_hash", "rung"])
    xs, ys = _gapped(ladder, "arch_hash", "rung", "value")
    fig.add_trace(
        _scatter(
            len(xs),
            x=xs,
            y=ys,
            mode="lines",
            line={"color": "#999", "width": 1},
            name="same architecture",
            hoverinfo="skip",
        ),
        row=1,
        col=col,
    )
    for k, (rung, group) in enumerate(ladder.groupby("rung")):
        epochs = group["epochs"].dropna()
        label = f"rung {rung}" + (f" ({int(epochs.iloc[0])} epochs)" if len(epochs) else "")
        fig.add_trace(
            _scatter(
                len(group),
                x=group["rung"],
                y=group["value"],
                mode="markers",
                marker={"size": 8, "color": PALETTE[k % len(PALETTE)]},
                name=label,
                customdata=np.stack(
                    [group["number"], group["arch_hash"].str.slice(0, 10)], axis=-1
                ),
                hovertemplate="trial %{customdata[0]} (%{customdata[1]})<br>%{y:.4g}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_xaxes(title_text="rung", dtick=1, row=1, col=col)


# --- operator frequency -----------------------------------------------------------------------------
def op_frequency_figure(frame: pd.DataFrame) -> go.Figure:
    """Heatmaps of operator share per edge/layer: top-k architectures beside all of them."""
    title = "Operator frequency per edge / layer"
    if frame.empty:
        return empty_figure("no operator decisions to count", title)
    groups = list(dict.fromkeys(frame["group"]))
    ops = sorted(frame["op"].unique())
    slots = sorted(frame["slot"].unique(), reverse=True)
    fig = make_subplots(
        rows=1, cols=len(groups), shared_yaxes=True, subplot_titles=groups, horizontal_spacing=0.03
    )
    for col, group in enumerate(groups, start=1):
        table = frame[frame["group"] == group]
        share = table.pivot(index="slot", columns="op", values="fraction").reindex(
            index=slots, columns=ops
        )
        count = table.pivot(index="slot", columns="op", values="count").reindex(
            index=slots, columns=ops
        )
        fig.add_trace(
            go.Heatmap(
                z=share.to_numpy(dtype=float),
                x=ops,
                y=slots,
                zmin=0,
                zmax=1,
                colorscale="Viridis",
                showscale=col == len(groups),
                colorbar={"title": {"text": "share"}},
                customdata=count.fillna(0).to_numpy(),
                hovertemplate="%{y} · %{x}<br>share %{z:.2f} (%{customdata:.0f} archs)<extra>"
                + group
                + "</extra>",
            ),
            row=1,
            col=col,
        )
    return _layout(fig, title, height=max(300, 120 + 24 * len(slots)))


# --- parallel categories ----------------------------------------------------------------------------
def parallel_categories_figure(frame: pd.DataFrame, objective: str = "objective") -> go.Figure:
    """Decisions as parallel categories, each trial's ribbon coloured by its objective."""
    title = "Decisions and objective"
    dims = [c for c in frame.columns if c not in ("number", "value")]
    if frame.empty or not dims:
        return empty_figure("no completed trial with varying decisions yet", title)
    fig = go.Figure(
        go.Parcats(
            dimensions=[{"label": d, "values": frame[d]} for d in dims],
            line={
                "color": frame["value"],
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": objective}},
            },
            hoveron="color",
            arrangement="freeform",
        )
    )
    fig.update_layout(margin={"l": 40, "r": 40})
    return _layout(fig, title + f" ({len(frame)} trials)", height=460)


# --- one-shot architecture weights --------------------------------------------------------------------
def arch_weights_figure(weights: pd.DataFrame) -> go.Figure:
    """Softmax weight of every op on every edge against epoch: one small panel per edge."""
    title = "Architecture weights per edge (softmax over ops)"
    if weights.empty:
        return empty_figure("no alpha.<edge>.<op> intermediate values in this study", title)
    edges = list(dict.fromkeys(weights["edge"]))
    ops = sorted(weights["op"].unique())
    cols = min(4, len(edges))
    rows = math.ceil(len(edges) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=edges,
        shared_yaxes=True,
        vertical_spacing=min(0.12, 0.6 / rows),
    )
    colors = {op: PALETTE[k % len(PALETTE)] for k, op in enumerate(ops)}
    for k, edge in enumerate(edges):
        row, col = divmod(k, cols)
        panel = weights[weights["edge"] == edge]
        for op, series in panel.groupby("op"):
            fig.add_trace(
                go.Scatter(
                    x=series["step"],
                    y=series["weight"],
                    mode="lines",
                    line={"color": colors[op]},
                    name=str(op),
                    legendgroup=str(op),
                    showlegend=k == 0,
                    hovertemplate=f"{edge} · {op}<br>epoch %{{x}}: %{{y:.3f}}<extra></extra>",
                ),
                row=row + 1,
                col=col + 1,
            )
    fig.update_yaxes(range=[0, 1])
    number = int(weights["number"].iloc[0])
    return _layout(fig, f"{title}, trial {number}", height=220 + 180 * rows)


def derived_genotype_figure(derived: pd.DataFrame) -> go.Figure:
    """The genotype derived at every epoch: the winning op per edge, shaded by its weight."""
    title = "Derived genotype per epoch (argmax op per edge)"
    if derived.empty:
        return empty_figure("no architecture weights to derive a genotype from", title)
    z = derived.pivot(index="edge", columns="step", values="weight")
    labels = derived.pivot(index="edge", columns="step", values="op").reindex_like(z)
    fig = go.Figure(
        go.Heatmap(
            z=z.to_numpy(dtype=float),
            x=[str(s) for s in z.columns],
            y=list(z.index),
            text=labels.fillna("").to_numpy(),
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "weight"}},
            hovertemplate="%{y}, epoch %{x}: %{text} (%{z:.3f})<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="epoch", type="category")
    return _layout(fig, title, height=max(260, 120 + 40 * len(z.index)))


# --- cell drawing -----------------------------------------------------------------------------------
class Marks(NamedTuple):
    """Layout shapes and annotations of a cell drawing, collected before they are set."""

    shapes: list[dict[str, Any]]
    annotations: list[dict[str, Any]]


def _edge_path(
    x0: float, y0: float, x1: float, y1: float, bend: float
) -> tuple[str, tuple[float, float], tuple[float, float]]:
    """An SVG path for a straight or curved (quadratic) edge, its label position and the point
    the edge arrives from (the control point, or the start for a straight edge)."""
    if not bend:
        return f"M {x0},{y0} L {x1},{y1}", ((x0 + x1) / 2, (y0 + y1) / 2), (x0, y0)
    cx = (x0 + x1) / 2 - (y1 - y0) * bend * 2
    cy = (y0 + y1) / 2 + (x1 - x0) * bend * 2
    label = (0.25 * x0 + 0.5 * cx + 0.25 * x1, 0.25 * y0 + 0.5 * cy + 0.25 * y1)
    return f"M {x0},{y0} Q {cx},{cy} {x1},{y1}", label, (cx, cy)


def _draw_component(fig: go.Figure, component: Component, dy: float, marks: Marks) -> None:
    """The component's nodes as a trace; its edges, arrow heads and title appended to ``marks``
    (shapes and annotations are set on the layout in one go: adding them one by one copies the
    layout each time)."""
    where = {n.id: (n.x, n.y + dy) for n in component.nodes}
    shrink = 0.12
    for edge in component.edges:
        _draw_edge(edge, where, shrink, marks)
    colors = {"input": "#a8dadc", "node": "#f1faee", "output": "#ffd6a5"}
    fig.add_trace(
        go.Scatter(
            x=[where[n.id][0] for n in component.nodes],
            y=[where[n.id][1] for n in component.nodes],
            mode="markers+text",
            text=[n.label for n in component.nodes],
            textposition="middle center",
            marker={
                "size": 34,
                "color": [colors.get(n.kind, "#eee") for n in component.nodes],
                "line": {"color": "#333", "width": 1},
            },
            hoverinfo="text",
            showlegend=False,
        )
    )
    xs = [x for x, _ in where.values()]
    marks.annotations.append(
        {
            "x": min(xs),
            "y": max(y for _, y in where.values()) + 0.55,
            "text": f"<b>{component.title}</b>",
            "showarrow": False,
            "xanchor": "left",
        }
    )


def _draw_edge(
    edge: Edge, where: dict[str, tuple[float, float]], shrink: float, marks: Marks
) -> None:
    (x0, y0), (x1, y1) = where[edge.source], where[edge.target]
    path, (lx, ly), (fx, fy) = _edge_path(x0, y0, x1, y1, edge.bend)
    color = {"op": "#1d3557", "skip": "#e76f51", "concat": "#aaa"}.get(edge.style, "#1d3557")
    dash = "dot" if edge.style == "concat" else "solid"
    marks.shapes.append(
        {
            "type": "path",
            "path": path,
            "line": {"color": color, "width": 1.5, "dash": dash},
            "layer": "below",
        }
    )
    # the arrow head: a short segment ending just outside the target node's marker
    length = math.hypot(x1 - fx, y1 - fy) or 1.0
    ux, uy = (x1 - fx) / length, (y1 - fy) / length
    ex, ey = x1 - ux * shrink, y1 - uy * shrink
    marks.annotations.append(
        {
            "x": ex,
            "y": ey,
            "ax": ex - ux * 0.05,
            "ay": ey - uy * 0.05,
            "xref": "x",
            "yref": "y",
            "axref": "x",
            "ayref": "y",
            "text": "",
            "showarrow": True,
            "arrowhead": 2,
            "arrowsize": 1.2,
            "arrowcolor": color,
            "arrowwidth": 1.5,
        }
    )
    if edge.label:
        marks.annotations.append(
            {
                "x": lx,
                "y": ly,
                "text": edge.label,
                "showarrow": False,
                "font": {"size": 10, "color": color},
                "bgcolor": "rgba(255,255,255,0.85)",
            }
        )


def cell_figure(graph: CellGraph, title: str = "Best architecture") -> go.Figure:
    """The genotype drawn as nodes and labelled edges (components stacked), or for spaces without
    a drawing a table of decisions."""
    if not graph.components:
        names = [k for k, _ in graph.table]
        values = [v for _, v in graph.table]
        fig = go.Figure(
            go.Table(header={"values": ["decision", "value"]}, cells={"values": [names, values]})
        )
        return _layout(
            fig, f"{title} ({graph.space}: decisions)", height=min(900, 120 + 24 * len(names))
        )
    fig = go.Figure()
    marks = Marks([], [])
    dy = 0.0
    for component in graph.components:
        ys = [n.y for n in component.nodes]
        top = max(ys)
        _draw_component(fig, component, dy - top, marks)
        dy -= (top - min(ys)) + 1.6
    fig.update_layout(shapes=marks.shapes, annotations=marks.annotations)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    height = int(min(1400, max(280, 150 * (-dy) + 80)))
    return _layout(fig, f"{title} ({graph.space})", height=height)


# --- timeline -----------------------------------------------------------------------------------------
def timeline_figure(
    frame: pd.DataFrame, running: pd.DataFrame, max_bars: int | None = TIMELINE_BARS
) -> go.Figure:
    """Each trial a bar on its worker's row (colour = state, ✕ = retried), and below the number
    of trials in flight over time. Past ``max_bars`` trials the bars become a heatmap of trials
    finished per worker and time bin, and the in-flight line its peak per bin."""
    title = "Trial timeline per worker"
    if frame.empty:
        return empty_figure("no trial yet", title)
    rows, names = pd.factorize(frame["worker"].astype(str), sort=True)
    workers = [str(w) for w in names]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06
    )
    frame = frame.assign(y=rows)
    binned = max_bars is not None and len(frame) > max_bars
    caption = ""
    if binned:
        bins = time_bins(frame)
        _timeline_heatmap(fig, bins, workers)
        running = binned_concurrency(running)
        width = float(bins["t1"].iloc[0] - bins["t0"].iloc[0]) if len(bins) else 0.0
        caption = (
            f"{format_count(len(frame))} trials, counted per worker in bins of "
            f"{format_duration(width)} (colour: trials finished)"
        )
    else:
        _timeline_bars(fig, frame)
    retried = frame[frame["retries"] > 0]
    if binned and len(retried) > RETRIED_MARKS:
        caption += f"; ✕: the newest {RETRIED_MARKS} of {format_count(len(retried))} retried trials"
        retried = retried.nlargest(RETRIED_MARKS, "number")
    if not retried.empty:
        fig.add_trace(
            _scatter(
                len(retried),
                x=retried["start_s"],
                y=retried["y"],
                mode="markers",
                marker={"symbol": "x", "size": 10, "color": "#000"},
                name="retried",
                customdata=np.stack(
                    [retried["number"], retried["retries"], retried["error"].fillna("")], axis=-1
                ),
                hovertemplate="trial %{customdata[0]}: %{customdata[1]} retries<br>%{customdata[2]}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        _scatter(
            len(running),
            x=running["time_s"],
            y=running["running"],
            mode="lines",
            line={"shape": "hv", "color": "#555"},
            name="in flight (peak per bin)" if binned else "in flight",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(
        tickvals=list(range(len(workers))), ticktext=workers, title_text="worker", row=1, col=1
    )
    fig.update_yaxes(title_text="in flight", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(title_text="seconds since the study started", row=2, col=1)
    return _layout(fig, title, height=max(360, 260 + 26 * len(workers)), caption=caption)


def _timeline_bars(fig: go.Figure, frame: pd.DataFrame) -> None:
    for state in STATE_ORDER:
        group = frame[frame["state"] == state]
        if group.empty:
            continue
        n = len(group)
        xs = np.full(3 * n, np.nan)
        ys = np.full(3 * n, np.nan)
        xs[0::3], xs[1::3] = group["start_s"], group["end_s"]
        ys[0::3] = ys[1::3] = group["y"]
        numbers = np.repeat(group["number"].to_numpy(dtype=float), 3)
        fig.add_trace(
            _scatter(
                3 * n,
                x=xs,
                y=ys,
                mode="lines",
                line={"color": STATE_COLORS[state], "width": 8},
                name=state,
                customdata=numbers,
                hovertemplate="trial %{customdata}<br>t=%{x:.1f}s<extra>" + state + "</extra>",
            ),
            row=1,
            col=1,
        )


def _timeline_heatmap(fig: go.Figure, bins: pd.DataFrame, workers: list[str]) -> None:
    shape = (len(workers), len(bins) // len(workers))  # every (worker, bin), workers sorted
    centers = ((bins["t0"] + bins["t1"]) / 2).to_numpy()[: shape[1]]
    fig.add_trace(
        go.Heatmap(
            x=centers,
            y=list(range(len(workers))),
            z=bins["finished"].to_numpy(dtype=float).reshape(shape),
            colorscale="Blues",
            colorbar={"title": {"text": "finished"}, "len": 0.7, "y": 0.64},
            customdata=bins[["failed", "running"]].to_numpy().reshape((*shape, 2)),
            name="trials finished",
            hovertemplate="%{x:.0f} s: %{z} finished, %{customdata[0]} failed, "
            "%{customdata[1]} still running<extra></extra>",
        ),
        row=1,
        col=1,
    )


def trial_curves_figure(series: dict[str, pd.DataFrame], number: int) -> go.Figure:
    """Every intermediate series of one trial (architecture weights, ``alpha.*`` and
    ``beta.*``, left out)."""
    title = f"Trial {number}: intermediate values"
    shown = {k: v for k, v in series.items() if not k.startswith(ARCH_WEIGHT_KEYS)}
    if not shown:
        return empty_figure("this trial reported no intermediate values", title)
    fig = go.Figure()
    for key, frame in shown.items():
        fig.add_trace(go.Scatter(x=frame["step"], y=frame["value"], mode="lines+markers", name=key))
    fig.update_xaxes(title_text="step")
    return _layout(fig, title, height=320)
