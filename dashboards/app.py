"""The live dashboard (Dash): studies, a summary header, figures, a server-side trial table and
trial details.

The page arrives with the store's studies, the newest study picked and the store's version
token, so its first figures are one request away. Every ``refresh_s`` seconds it asks for the
version token (a few ``COUNT``/``MAX`` queries); figures and the table are recomputed only when
it changed, and only for the visible tab; one :class:`~dashboards.panels.StudySource` per
(study, version) is shared by every request, so a figure is drawn once per change however many
browsers look. Scatter plots are thinned past ``max_points`` trials (:mod:`dashboards.thin`).
The trial table (AG Grid, infinite row model) pages, sorts and filters in SQL
(:mod:`dashboards.table`). Clicking a table row or a point of the trials scatter shows that
trial's genotype, drawing and curves.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import dash
import dash_ag_grid as dag
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from flask import request

from dashboards import data
from dashboards.auth import require_token
from dashboards.cells import genotype_graph
from dashboards.db import Reader
from dashboards.figures import cell_figure, trial_curves_figure
from dashboards.fmt import format_value
from dashboards.limits import MAX_POINTS
from dashboards.panels import Panel, StudySource, panel
from dashboards.style import CSS, STATE_COLORS
from dashboards.summary import study_summary
from dashboards.table import COLUMNS, NUMERIC_COLUMNS, FilterError, trial_rows

TABS = {
    "overview": ("cell", "best-so-far", "trials", "timeline"),
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
PLOTLY_JS = "_dash-component-suites/plotly/package_data/plotly.min.js"
INDEX = f"""<!DOCTYPE html>
<html><head>{{%metas%}}<title>{{%title%}}</title>{{%favicon%}}{{%css%}}
<style>{CSS}
.dash-graph {{ width: 100%; }}</style>
<script defer src="PREFIX{PLOTLY_JS}"></script>
</head>
<body>{{%app_entry%}}<footer>{{%config%}}{{%scripts%}}{{%renderer%}}</footer></body></html>"""
"""The page: the shared style sheet, and plotly.js (5 MB) fetched with the page's scripts
instead of after the first graph appears."""


def _clean(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON-safe table rows (NaN and None become empty cells)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in records
    ]


def _version(reader: Reader) -> Any:
    return json.loads(json.dumps(reader.version(), default=str))


class Sources:
    """One :class:`StudySource` per (study, compare, version): the newest few, thread safe.
    A study's new source reads only the trials that changed since its previous one."""

    def __init__(self, reader: Reader, top_k: int, max_points: int | None, keep: int = 4) -> None:
        self.reader, self.top_k, self.max_points, self.keep = reader, top_k, max_points, keep
        self._lock = threading.Lock()
        self._sources: OrderedDict[str, tuple[StudySource, threading.Lock]] = OrderedDict()
        self._latest: dict[str, StudySource] = {}

    def draw(self, study: str, compare: list[str], version: Any, key: str) -> Any:
        """The panel ``key`` of that source (None: the panel does not apply)."""
        name = json.dumps([study, sorted(compare), version], default=str)
        with self._lock:
            if name not in self._sources:
                src = StudySource(
                    self.reader,
                    study,
                    compare,
                    self.top_k,
                    self.max_points,
                    previous=self._latest.get(study),
                )
                self._latest[study] = src
                self._sources[name] = (src, threading.Lock())
                while len(self._sources) > self.keep:
                    self._sources.popitem(last=False)
            src, lock = self._sources[name]
        with lock:  # concurrent requests for one source wait for one read of its trials
            return panel(src, key)

    def prefetch(self, keys: Sequence[str]) -> None:
        """Draw ``keys`` of the store's newest study in the background: the page will ask for
        them once the browser has loaded its scripts."""

        def run() -> None:
            try:
                names = self.reader.study_names()
                if names:
                    for key in keys:
                        self.draw(names[-1], [], _version(self.reader), key)
            except Exception:  # noqa: BLE001 - the page's own request reports it
                return

        threading.Thread(target=run, name="nasplat-prefetch", daemon=True).start()


def _column_defs() -> list[dict[str, Any]]:
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


def _summary_items(summary: Any) -> list[Any]:
    return [
        html.Div([html.Dt(label), html.Dd(text, className="best" if label == "best" else "")])
        for label, text in summary.items()
    ]


def _note(found: Panel) -> html.Li:
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


def _layout(reader: Reader, sources: Sources, refresh_s: float) -> html.Div:
    """The page as it arrives: the studies, the newest picked with its summary and Overview
    drawn (the prefetch started with the page request has usually drawn it), the version
    token. The page's first figures need no callback."""
    frame = data.studies_frame(reader)
    rows = _clean(frame[list(STUDY_COLUMNS)].to_dict("records"))
    latest = rows[-1]["name"] if rows else None
    version = _version(reader)
    drawn: dict[str, Panel | None] = {}
    title, items, notation = "No study in this store yet", [], ""
    if latest is not None:
        drawn = {key: sources.draw(latest, [], version, key) for key in TABS["overview"]}
        summary = study_summary(reader, latest)
        title, items, notation = f"Study {latest}", _summary_items(summary), summary.notation
    notes = [_note(p) for p in drawn.values() if p is not None and p.figure is None]
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
                    html.Span(f"store: {reader.url}", className="muted"),
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
                        columnDefs=_column_defs(),
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


def create_app(
    storage: str | None = None,
    refresh_s: float = 5.0,
    top_k: int = 20,
    token: str | None = None,
    max_points: int | None = MAX_POINTS,
) -> Dash:
    """The Dash app over the store at ``storage`` (default: ``$NASPLAT_STORAGE`` or nasplat.db).
    ``token``: every request must carry it (:mod:`dashboards.auth`). ``max_points``: trials a
    scatter draws before thinning (None: every trial)."""
    from nasplat.registry import load_builtins

    load_builtins()  # the spaces draw architectures: loaded now, not on the first page
    reader = Reader(storage)
    sources = Sources(reader, top_k, max_points)
    app = Dash(__name__, title="nasplat dashboard", update_title=None)
    app.index_string = INDEX.replace("PREFIX", app.config.requests_pathname_prefix)
    if token is not None:
        require_token(app.server, token)
    app.layout = lambda: _layout(reader, sources, refresh_s)

    @app.server.before_request
    def _prefetch() -> None:
        if request.path == app.config.requests_pathname_prefix:  # the page itself
            sources.prefetch(TABS["overview"])

    sources.prefetch(TABS["overview"])
    app.server.config["nasplat_reader"] = reader
    app.server.config["nasplat_sources"] = sources

    @app.callback(Output("version", "data"), Input("tick", "n_intervals"), State("version", "data"))
    def poll(_n: int, known: Any) -> Any:
        token = _version(reader)
        if token == known:
            raise PreventUpdate
        return token

    @app.callback(
        Output("studies", "rowData"),
        Output("compare", "options"),
        Input("version", "data"),
        prevent_initial_call=True,
    )
    def list_studies(_version: Any) -> tuple[list[dict[str, Any]], list[str]]:
        frame = data.studies_frame(reader)
        return _clean(frame[list(STUDY_COLUMNS)].to_dict("records")), frame["name"].tolist()

    @app.callback(
        Output("study", "data"),
        Input("studies", "selectedRows"),
        State("study", "data"),
        prevent_initial_call=True,
    )
    def pick_study(selected: Any, current: str | None) -> str:
        if not isinstance(selected, list) or not selected or selected[0].get("name") == current:
            raise PreventUpdate
        return selected[0]["name"]

    @app.callback(
        Output("summary-title", "children"),
        Output("summary", "children"),
        Output("best-notation", "children"),
        Input("study", "data"),
        Input("version", "data"),
        prevent_initial_call=True,  # the page arrives with it
    )
    def summarize(study: str | None, _version: Any) -> tuple[str, list[Any], str]:
        if not study:
            return "No study in this store yet", [], ""
        summary = study_summary(reader, study)
        return f"Study {study}", _summary_items(summary), summary.notation

    @app.callback(
        *[Output(f"panel-{tab}", "style") for tab in TABS],
        *[Output(f"slot-{key}", "style") for key in KEYS],
        *[Output(f"fig-{key}", "figure") for key in KEYS],
        *[Output(f"notes-{tab}", "children") for tab in TABS],
        *[Output(f"notes-card-{tab}", "style") for tab in TABS],
        Input("tabs", "value"),
        Input("study", "data"),
        Input("compare", "value"),
        Input("version", "data"),
        prevent_initial_call=True,  # the page arrives with the Overview drawn
    )
    def draw(tab: str, study: str | None, compare: list[str] | None, version: Any) -> list[Any]:
        if not study:
            raise PreventUpdate
        tab_styles = [{} if t == tab else HIDDEN for t in TABS]
        slots, figures = [dash.no_update] * len(KEYS), [dash.no_update] * len(KEYS)
        notes = {t: dash.no_update for t in TABS}
        note_styles = {t: dash.no_update for t in TABS}
        listed = []
        for key in TABS[tab]:
            found = sources.draw(study, compare or [], version, key)
            index = KEYS.index(key)
            shown = found is not None and found.figure is not None
            slots[index] = {} if shown else HIDDEN
            figures[index] = found.figure if shown else {}
            if found is not None and not shown:
                listed.append(_note(found))
        notes[tab] = listed
        note_styles[tab] = {} if listed else HIDDEN
        return [*tab_styles, *slots, *figures, *notes.values(), *note_styles.values()]

    @app.callback(
        Output("trials", "getRowsResponse"),
        Output("table-status", "children"),
        Input("trials", "getRowsRequest"),
        State("study", "data"),
    )
    def table_rows(request: dict[str, Any] | None, study: str | None) -> tuple[Any, str]:
        if not study or not request:
            raise PreventUpdate
        start = int(request.get("startRow") or 0)
        end = int(request.get("endRow") or start + 25)
        try:
            frame, total = trial_rows(
                reader,
                study,
                start,
                end,
                request.get("sortModel") or [],
                request.get("filterModel") or {},
            )
        except FilterError as exc:
            return {"rowData": [], "rowCount": 0}, str(exc)
        return (
            {"rowData": _clean(frame.to_dict("records")), "rowCount": total},
            f"{total} trial(s) match",
        )

    # a new version or study: the table asks for its rows again (kept until they arrive)
    app.clientside_callback(
        """function(version, study) {
            dash_ag_grid.getApiAsync('trials').then(api => api.refreshInfiniteCache());
            return window.dash_clientside.no_update;
        }""",
        Output("table-refresh", "data"),
        Input("version", "data"),
        Input("study", "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("detail-title", "children"),
        Output("detail-genotype", "children"),
        Output("detail-cell", "figure"),
        Output("detail-curve", "figure"),
        Output("detail-body", "style"),
        Input("trials", "cellClicked"),
        Input("fig-trials", "clickData"),
        State("study", "data"),
        prevent_initial_call=True,
    )
    def show_trial(
        cell: dict[str, Any] | None, click: dict[str, Any] | None, study: str | None
    ) -> tuple[Any, ...]:
        number = selected_number(dash.ctx.triggered_id, cell, click)
        if number is None or not study:
            raise PreventUpdate
        detail = data.trial_detail(reader, study, number)
        if detail is None:
            raise PreventUpdate
        info = reader.study(study)
        genotype = detail["genotype"]
        title = f"Trial {number}: {detail['state']}" + (
            f", {info.objective} {format_value(info.objective, detail['value'])}"
            if detail["value"] is not None
            else ""
        )
        text = json.dumps(
            {
                "genotype": genotype.to_dict(),
                "metrics": detail["metrics"],
                "budget": detail["budget"],
                "tag": detail["tag"],
                "worker": detail["worker"],
                "error": detail["error"],
            },
            indent=2,
        )
        return (
            title,
            text,
            cell_figure(
                genotype_graph(genotype, info.config.get("space_options")), f"Trial {number}"
            ),
            trial_curves_figure(detail["series"], number),
            {},
        )

    return app


def selected_number(
    trigger: str | None, cell: dict[str, Any] | None, click: dict[str, Any] | None
) -> int | None:
    """The trial number picked by a table cell or a click on the trials scatter."""
    if trigger == "fig-trials" and click and click.get("points"):
        custom = click["points"][0].get("customdata")
        if custom:
            return int(float(custom[0]))
    if trigger == "trials" and cell and cell.get("rowId") not in (None, ""):
        return int(float(cell["rowId"]))
    return None


def serve(
    storage: str | None,
    host: str = "127.0.0.1",
    port: int = 8050,
    refresh_s: float = 5.0,
    top_k: int = 20,
    token: str | None = None,
    max_points: int | None = MAX_POINTS,
) -> None:
    """Run the live dashboard until interrupted (binds to 127.0.0.1 unless told otherwise;
    ``token``: required on every request, see :mod:`dashboards.auth`)."""
    app = create_app(storage, refresh_s=refresh_s, top_k=top_k, token=token, max_points=max_points)
    app.run(host=host, port=port, debug=False)
