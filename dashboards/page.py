"""The live dashboard's page: its layout and look (no callbacks here, see :mod:`dashboards.app`).

The page arrives with the store's studies, the newest study picked, its summary, notation and
Overview drawn, and the store's version token, so its first figures need no callback.
"""

from __future__ import annotations

import math
from typing import Any

import dash_ag_grid as dag
from dash import dcc, html

from dashboards.db import Reader
from dashboards.panels import Panel
from dashboards.plotlyjs import ROUTE as PLOTLY_ROUTE
from dashboards.sources import Sources, store_version
from dashboards.style import CSS, STATE_COLORS
from dashboards.summary import Summary
from dashboards.table import COLUMNS, NUMERIC_COLUMNS

TABS = {
    "overview": ("cell", "best-so-far", "hypervolume", "trials", "timeline"),
    "architectures": ("ops", "decisions"),
    "curves": ("curves", "alphas", "derived"),
}
KEYS = [key for group in TABS.values() for key in group]
STUDY_COLUMNS = ("name", "space", "strategy", "objective", "trials", "complete", "interrupted")
GRAPH_CONFIG = {"displaylogo": False}
FORMATS = {  # d3 formats of the numeric table columns: SI prefixes for sizes, 3 decimals for times
    "value": ".5~g",
    "params": ".4~s",
    "flops": ".4~s",
    "latency_ms": ".3~f",
    "duration_s": ".3~f",
}
WIDTHS = {"number": 90, "state": 130, "retries": 90, "error": 160}
HIDDEN = {"display": "none"}
INDEX = f"""<!DOCTYPE html>
<html><head>{{%metas%}}<title>{{%title%}}</title>{{%favicon%}}{{%css%}}
<style>{CSS}
.dash-graph {{ width: 100%; }}</style>
<script defer src="PREFIX{PLOTLY_ROUTE}"></script>
</head>
<body>{{%app_entry%}}<footer>{{%config%}}{{%scripts%}}{{%renderer%}}</footer></body></html>"""
"""The page: the shared style sheet, and plotly.js (:mod:`dashboards.plotlyjs`) fetched with the
page's scripts instead of after the first graph appears."""


def clean_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON-safe table rows (NaN and None become empty cells)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in records
    ]


def column_defs() -> list[dict[str, Any]]:
    state_styles = [
        {"condition": f"params.value === '{s}'", "style": {"color": c, "fontWeight": 600}}
        for s, c in STATE_COLORS.items()
        if s != "INTERRUPTED"
    ]
    interrupted = {
        "condition": "params.value === 'INTERRUPTED'",
        "style": {
            "color": "#fff",
            "background": "repeating-linear-gradient(45deg, #6c5b7b, #6c5b7b 4px, "
            "#84739a 4px, #84739a 8px)",
            "fontWeight": 600,
        },
    }
    out: list[dict[str, Any]] = []
    for column in COLUMNS:
        spec: dict[str, Any] = {"field": column, "headerName": column}
        if column in NUMERIC_COLUMNS:
            spec |= {"filter": "agNumberColumnFilter", "type": "rightAligned"}
        else:
            spec["filter"] = "agTextColumnFilter"
        if column in FORMATS:
            spec["valueFormatter"] = {
                "function": f"params.value == null ? '' : d3.format('{FORMATS[column]}')(params.value)"
            }
        if column in WIDTHS:
            spec["minWidth"] = WIDTHS[column]
        if column == "state":
            spec["cellStyle"] = {"styleConditions": [*state_styles, interrupted]}
        if column == "error":
            spec["tooltipField"] = "error"
        out.append(spec)
    return out


def summary_items(summary: Summary) -> list[Any]:
    return [
        html.Div([html.Dt(label), html.Dd(text, className="best" if label == "best" else "")])
        for label, text in summary.items()
    ]


def note(found: Panel) -> html.Li:
    return html.Li([html.B(found.title), f": {found.note}"])


def _slot(key: str, found: Panel | None = None, notation: str = "") -> html.Div:
    """A panel's place on the page, drawn when ``found`` has a figure, hidden otherwise."""
    shown = found is not None and found.figure is not None
    graph = dcc.Graph(
        id=f"fig-{key}",
        figure=found.figure if shown else {},
        config=GRAPH_CONFIG,
        style={"width": "100%"},
    )
    style = {} if shown else HIDDEN
    if key == "cell":
        return html.Div(
            [
                html.Div(graph, className="drawing"),
                html.Div(
                    [
                        html.H2("Notation"),
                        html.Pre(notation, id="best-notation", className="notation-text"),
                    ],
                    className="notation",
                ),
            ],
            id="slot-cell",
            className="card best-arch",
            style=style,
        )
    return html.Div(graph, id=f"slot-{key}", className="card", style=style)


def layout(reader: Reader, sources: Sources, refresh_s: float) -> html.Div:
    """The page as it arrives: the studies, the newest picked with its summary and Overview
    drawn (the prefetch started with the page request has usually drawn it), the version
    token. The page's first figures need no callback."""
    version = store_version(reader)
    frame = sources.studies(version)
    rows = clean_rows(frame[list(STUDY_COLUMNS)].to_dict("records"))
    latest = rows[-1]["name"] if rows else None
    drawn: dict[str, Panel | None] = {}
    title, items, notation = "No study in this store yet", [], ""
    if latest is not None:
        drawn = {key: sources.draw(latest, [], version, key) for key in TABS["overview"]}
        summary = sources.summary(latest, version)
        title, items, notation = f"Study {latest}", summary_items(summary), summary.notation
    notes = [note(p) for p in drawn.values() if p is not None and p.figure is None]
    panels = {
        tab: html.Div(
            [
                *[_slot(key, drawn.get(key), notation) for key in keys],
                html.Div(
                    [
                        html.H2("Not shown"),
                        html.Ul(
                            notes if tab == "overview" else [],
                            id=f"notes-{tab}",
                            className="notes",
                        ),
                    ],
                    id=f"notes-card-{tab}",
                    className="card",
                    style={} if tab == "overview" and notes else HIDDEN,
                ),
            ],
            id=f"panel-{tab}",
            className="panel-grid",
            style={} if tab == "overview" else HIDDEN,
        )
        for tab, keys in TABS.items()
    }
    return html.Div(
        [
            html.Div(
                [
                    html.H1("nasplat dashboard"),
                    html.Span(f"store: {reader.safe_url}", className="muted"),
                ],
                className="topbar",
            ),
            dcc.Interval(id="tick", interval=int(refresh_s * 1000), n_intervals=0),
            dcc.Store(id="version", data=version),
            dcc.Store(id="study", data=latest),
            dcc.Store(id="table-refresh"),
            html.Div(
                [
                    html.H2("Studies"),
                    dag.AgGrid(
                        id="studies",
                        rowData=rows,
                        columnDefs=[{"field": c} for c in STUDY_COLUMNS],
                        getRowId="params.data.name",
                        selectedRows={"ids": [latest] if latest else []},
                        columnSize="responsiveSizeToFit",
                        dashGridOptions={
                            "rowSelection": {
                                "mode": "singleRow",
                                "checkboxes": False,
                                "enableClickSelection": True,
                            },
                            "domLayout": "autoHeight",
                        },
                        style={"width": "100%"},
                    ),
                    html.Div(
                        [
                            html.Label("Compare best-so-far with"),
                            dcc.Dropdown(
                                id="compare",
                                options=[r["name"] for r in rows],
                                multi=True,
                                placeholder="other studies",
                            ),
                        ],
                        style={"marginTop": "10px", "maxWidth": "640px"},
                    ),
                ],
                className="card",
            ),
            html.Div(
                [
                    html.H2(title, id="summary-title"),
                    html.Dl(items, id="summary", className="summary"),
                ],
                className="card",
            ),
            dcc.Tabs(
                id="tabs",
                value="overview",
                children=[dcc.Tab(label=t.capitalize(), value=t) for t in TABS],
                style={"marginBottom": "12px"},
            ),
            *panels.values(),
            html.Div(
                [
                    html.H2("Trials"),
                    html.Div(id="table-status", className="muted"),
                    dag.AgGrid(
                        id="trials",
                        columnDefs=column_defs(),
                        rowModelType="infinite",
                        getRowId="params.data.number",
                        columnSize="responsiveSizeToFit",
                        defaultColDef={
                            "sortable": True,
                            "resizable": True,
                            "floatingFilter": True,
                            "minWidth": 80,
                            "filterParams": {"maxNumConditions": 2},
                        },
                        dashGridOptions={
                            "pagination": True,
                            "paginationPageSize": 25,
                            "paginationPageSizeSelector": False,
                            "cacheBlockSize": 25,
                            "maxBlocksInCache": 4,
                            "rowBuffer": 0,
                            "tooltipShowDelay": 300,
                            "domLayout": "autoHeight",
                        },
                        style={"width": "100%"},
                    ),
                ],
                className="card",
            ),
            html.Div(
                [
                    html.H2("Selected trial: click a table row or a point", id="detail-title"),
                    html.Div(
                        [
                            html.Pre(id="detail-genotype", className="notation-text"),
                            dcc.Graph(id="detail-cell", config=GRAPH_CONFIG),
                            dcc.Graph(id="detail-curve", config=GRAPH_CONFIG),
                        ],
                        id="detail-body",
                        style=HIDDEN,
                    ),
                ],
                id="detail",
                className="card",
            ),
        ],
        className="page",
    )
