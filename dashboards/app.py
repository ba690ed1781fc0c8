"""The live dashboard (Dash): the server side of :mod:`dashboards.page`.

Every ``refresh_s`` seconds the page asks for the store's version token (a few ``COUNT``/``MAX``
queries); panels and the table are recomputed only when it changed, and only for the visible
tab, through :class:`~dashboards.sources.Sources` (each panel drawn once per version, shared by
every browser). Scatter plots are thinned past ``max_points`` trials (:mod:`dashboards.thin`).
The trial table (AG Grid, infinite row model) pages, sorts and filters in SQL
(:mod:`dashboards.table`). Clicking a table row or a point of the trials scatter shows that
trial's genotype, drawing and curves.
"""

from __future__ import annotations

import json
from typing import Any

import dash
from dash import Dash, Input, Output, State
from dash.exceptions import PreventUpdate
from flask import request, send_file

from dashboards import data
from dashboards.auth import require_token
from dashboards.cells import genotype_graph
from dashboards.db import Reader
from dashboards.figures import cell_figure, trial_curves_figure
from dashboards.fmt import format_value
from dashboards.limits import MAX_POINTS
from dashboards.page import (
    HIDDEN,
    INDEX,
    KEYS,
    STUDY_COLUMNS,
    TABS,
    clean_rows,
    layout,
    note,
    summary_items,
)
from dashboards.plotlyjs import ROUTE as PLOTLY_ROUTE
from dashboards.plotlyjs import plotly_js_path
from dashboards.sources import Sources, store_version
from dashboards.table import FilterError, trial_rows


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

    @app.server.route(app.config.routes_pathname_prefix + PLOTLY_ROUTE)
    def _plotly_js() -> Any:
        return send_file(plotly_js_path(), mimetype="text/javascript", max_age=86400)

    app.layout = lambda: layout(reader, sources, refresh_s)

    @app.server.before_request
    def _prefetch() -> None:
        if request.path == app.config.requests_pathname_prefix:  # the page itself
            sources.prefetch(TABS["overview"])

    sources.prefetch(TABS["overview"])
    app.server.config["nasplat_reader"] = reader
    app.server.config["nasplat_sources"] = sources

    @app.callback(Output("version", "data"), Input("tick", "n_intervals"), State("version", "data"))
    def poll(_n: int, known: Any) -> Any:
        token = store_version(reader)
        if token == known:
            raise PreventUpdate
        return token

    @app.callback(
        Output("studies", "rowData"),
        Output("compare", "options"),
        Input("version", "data"),
        prevent_initial_call=True,
    )
    def list_studies(version: Any) -> tuple[list[dict[str, Any]], list[str]]:
        frame = sources.studies(version)
        return clean_rows(frame[list(STUDY_COLUMNS)].to_dict("records")), frame["name"].tolist()

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
    def summarize(study: str | None, version: Any) -> tuple[str, list[Any], str]:
        if not study:
            return "No study in this store yet", [], ""
        summary = sources.summary(study, version)
        return f"Study {study}", summary_items(summary), summary.notation

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
                listed.append(note(found))
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
            {"rowData": clean_rows(frame.to_dict("records")), "rowCount": total},
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
