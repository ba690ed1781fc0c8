"""The live dashboard (Dash): studies, figures, a server-side trial table and trial details.

Every ``refresh_s`` seconds the page asks the server for the store's version token (a few
``COUNT``/``MAX`` queries); figures and tables are recomputed only when it changed, and only for
the visible tab. The trial table pages, sorts and filters in SQL (:mod:`dashboards.table`).
Clicking a table row or a point of the trials scatter shows that trial's genotype, cell drawing
and curves.
"""

from __future__ import annotations

import json
import math
from typing import Any

import dash
from dash import Dash, Input, Output, State, dash_table, dcc, html
from dash.dash_table.Format import Format, Scheme
from dash.exceptions import PreventUpdate

from dashboards import data
from dashboards.auth import require_token
from dashboards.cells import genotype_graph
from dashboards.db import Reader
from dashboards.figures import (
    arch_weights_figure,
    best_so_far_figure,
    cell_figure,
    derived_genotype_figure,
    empty_figure,
    hypervolume_figure,
    learning_curves_figure,
    op_frequency_figure,
    parallel_categories_figure,
    timeline_figure,
    trial_curves_figure,
    trials_figure,
)
from dashboards.table import COLUMNS, NUMERIC_COLUMNS, FilterError, trial_page

TABS = {
    "overview": ("best-so-far", "hypervolume", "trials", "timeline"),
    "architectures": ("cell", "ops", "decisions"),
    "curves": ("curves", "alphas", "derived"),
}
STUDY_COLUMNS = (
    "name",
    "space",
    "strategy",
    "objective",
    "trials",
    "complete",
    "pruned",
    "failed",
    "running",
    "best",
)
GRAPH_CONFIG = {"displaylogo": False}
FLOAT_COLUMNS = ("value", "params", "flops", "latency_ms", "duration_s")
NUMBER_FORMAT = Format(precision=5, scheme=Scheme.decimal_or_exponent)


def _clean(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON-safe table rows (NaN and None become empty cells)."""
    out = []
    for row in records:
        out.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
    return out


def figure_for(reader: Reader, key: str, study: str, compare: list[str], top_k: int) -> Any:
    """One figure of the dashboard by its id."""
    info = reader.study(study)
    if key == "best-so-far":
        return best_so_far_figure(
            data.best_so_far(reader, [study, *[c for c in compare if c != study]]), info.objective
        )
    if key == "hypervolume":
        return hypervolume_figure(
            data.hypervolume_history(reader, study), data.reference_text(info)
        )
    if key == "trials":
        return trials_figure(data.trials_frame(reader, study), info.objective)
    if key == "timeline":
        line = data.timeline(reader, study)
        return timeline_figure(line, data.concurrency(line))
    if key == "cell":
        best = data.best_genotype(reader, study)
        if best is None:
            return empty_figure("no completed trial yet", "Best architecture")
        number, value, genotype = best
        return cell_figure(
            genotype_graph(genotype, info.config.get("space_options")),
            f"Best architecture: trial {number}, {info.objective}={value:.4g}",
        )
    if key == "ops":
        return op_frequency_figure(data.op_frequency(reader, study, top_k=top_k))
    if key == "decisions":
        return parallel_categories_figure(data.decisions_frame(reader, study), info.objective)
    if key == "curves":
        return learning_curves_figure(
            data.learning_curves(reader, study), data.rungs(reader, study)
        )
    weights = data.arch_weights(reader, study)
    if key == "alphas":
        return arch_weights_figure(weights)
    return derived_genotype_figure(data.derived_genotypes(weights))


def _layout(reader: Reader, refresh_s: float, page_size: int) -> html.Div:
    graphs = {
        tab: html.Div(
            [dcc.Graph(id=f"fig-{key}", config=GRAPH_CONFIG) for key in keys],
            id=f"panel-{tab}",
            style={"display": "block" if tab == "overview" else "none"},
        )
        for tab, keys in TABS.items()
    }
    return html.Div(
        [
            html.H2("nasplat dashboard"),
            html.Div(f"store: {reader.url}", id="store-url", style={"color": "#666"}),
            dcc.Interval(id="tick", interval=int(refresh_s * 1000), n_intervals=0),
            dcc.Store(id="version"),
            dcc.Store(id="study"),
            html.H3("Studies"),
            dash_table.DataTable(
                id="studies",
                columns=[{"name": c, "id": c} for c in STUDY_COLUMNS],
                data=[],
                row_selectable="single",
                selected_rows=[0],
                sort_action="native",
                style_table={"overflowX": "auto"},
                style_cell={"fontFamily": "system-ui, sans-serif", "fontSize": 13},
            ),
            html.Div(
                [
                    html.Label("compare best-so-far with: "),
                    dcc.Dropdown(
                        id="compare",
                        multi=True,
                        placeholder="other studies",
                        style={"minWidth": "20rem"},
                    ),
                ],
                style={"margin": "0.6rem 0"},
            ),
            dcc.Tabs(
                id="tabs",
                value="overview",
                children=[dcc.Tab(label=t.capitalize(), value=t) for t in TABS],
            ),
            *graphs.values(),
            html.H3("Trials"),
            html.Div(id="table-status", style={"color": "#a33"}),
            dash_table.DataTable(
                id="trials",
                columns=[
                    {"name": c, "id": c, "type": "numeric", "format": NUMBER_FORMAT}
                    if c in FLOAT_COLUMNS
                    else {"name": c, "id": c, "type": "numeric" if c in NUMERIC_COLUMNS else "text"}
                    for c in COLUMNS
                ],
                data=[],
                page_current=0,
                page_size=page_size,
                page_action="custom",
                sort_action="custom",
                sort_mode="multi",
                sort_by=[],
                filter_action="custom",
                filter_query="",
                style_table={"overflowX": "auto"},
                style_cell={
                    "fontFamily": "system-ui, sans-serif",
                    "fontSize": 13,
                    "maxWidth": "24rem",
                    "overflow": "hidden",
                    "textOverflow": "ellipsis",
                },
            ),
            html.Div(
                [
                    html.H3("Selected trial", id="detail-title"),
                    html.Pre(
                        id="detail-genotype",
                        style={
                            "background": "#f6f8fa",
                            "padding": "0.6rem",
                            "maxHeight": "20rem",
                            "overflow": "auto",
                        },
                    ),
                    dcc.Graph(id="detail-cell", config=GRAPH_CONFIG),
                    dcc.Graph(id="detail-curve", config=GRAPH_CONFIG),
                ],
                id="detail",
            ),
        ],
        style={"fontFamily": "system-ui, sans-serif", "margin": "1rem 2rem"},
    )


def create_app(
    storage: str | None = None,
    refresh_s: float = 5.0,
    top_k: int = 20,
    page_size: int = 25,
    token: str | None = None,
) -> Dash:
    """The Dash app over the store at ``storage`` (default: ``$NASPLAT_STORAGE`` or nasplat.db).
    ``token``: every request must carry it (:mod:`dashboards.auth`)."""
    reader = Reader(storage)
    app = Dash(__name__, title="nasplat dashboard", update_title=None)
    if token is not None:
        require_token(app.server, token)
    app.layout = _layout(reader, refresh_s, page_size)
    app.server.config["nasplat_reader"] = reader

    @app.callback(Output("version", "data"), Input("tick", "n_intervals"), State("version", "data"))
    def poll(_n: int, known: Any) -> Any:
        token = json.loads(json.dumps(reader.version(), default=str))
        if token == known:
            raise PreventUpdate
        return token

    @app.callback(
        Output("studies", "data"),
        Output("compare", "options"),
        Input("version", "data"),
    )
    def list_studies(_version: Any) -> tuple[list[dict[str, Any]], list[str]]:
        frame = data.studies_frame(reader)
        rows = _clean(frame[list(STUDY_COLUMNS)].to_dict("records"))
        return rows, frame["name"].tolist()

    @app.callback(
        Output("study", "data"),
        Input("studies", "selected_rows"),
        Input("studies", "data"),
        State("study", "data"),
    )
    def pick_study(
        selected: list[int] | None, rows: list[dict[str, Any]], current: str | None
    ) -> str:
        if not rows:
            raise PreventUpdate
        index = (selected or [0])[0]
        name = rows[min(index, len(rows) - 1)]["name"]
        if name == current:
            raise PreventUpdate
        return name

    keys = [key for group in TABS.values() for key in group]

    @app.callback(
        *[Output(f"panel-{tab}", "style") for tab in TABS],
        *[Output(f"fig-{key}", "figure") for key in keys],
        Input("tabs", "value"),
        Input("study", "data"),
        Input("compare", "value"),
        Input("version", "data"),
    )
    def draw(tab: str, study: str | None, compare: list[str] | None, _version: Any) -> list[Any]:
        if not study:
            raise PreventUpdate
        styles = [{"display": "block" if t == tab else "none"} for t in TABS]
        figures = [
            figure_for(reader, key, study, compare or [], top_k)
            if key in TABS[tab]
            else dash.no_update
            for key in keys
        ]
        return [*styles, *figures]

    @app.callback(
        Output("trials", "data"),
        Output("trials", "page_count"),
        Output("table-status", "children"),
        Input("study", "data"),
        Input("trials", "page_current"),
        Input("trials", "page_size"),
        Input("trials", "sort_by"),
        Input("trials", "filter_query"),
        Input("version", "data"),
    )
    def table_page(
        study: str | None,
        page: int,
        size: int,
        sort_by: list[dict[str, str]],
        filter_query: str,
        _v: Any,
    ) -> tuple[list[dict[str, Any]], int, str]:
        if not study:
            raise PreventUpdate
        try:
            frame, total = trial_page(
                reader, study, page or 0, size or page_size, sort_by or [], filter_query
            )
        except FilterError as exc:
            return [], 1, str(exc)
        return (
            _clean(frame.to_dict("records")),
            max(1, math.ceil(total / (size or page_size))),
            f"{total} trial(s) match",
        )

    @app.callback(
        Output("detail-title", "children"),
        Output("detail-genotype", "children"),
        Output("detail-cell", "figure"),
        Output("detail-curve", "figure"),
        Input("trials", "active_cell"),
        Input("fig-trials", "clickData"),
        State("trials", "data"),
        State("study", "data"),
    )
    def show_trial(
        active: dict[str, Any] | None,
        click: dict[str, Any] | None,
        rows: list[dict[str, Any]],
        study: str | None,
    ) -> tuple[Any, ...]:
        number = selected_number(dash.ctx.triggered_id, active, click, rows)
        if number is None or not study:
            raise PreventUpdate
        detail = data.trial_detail(reader, study, number)
        if detail is None:
            raise PreventUpdate
        genotype = detail["genotype"]
        title = f"Trial {number}: {detail['state']}" + (
            f", value {detail['value']:.4g}" if detail["value"] is not None else ""
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
                genotype_graph(genotype, reader.study(study).config.get("space_options")),
                f"Trial {number}",
            ),
            trial_curves_figure(detail["series"], number),
        )

    return app


def selected_number(
    trigger: str | None,
    active: dict[str, Any] | None,
    click: dict[str, Any] | None,
    rows: list[dict[str, Any]],
) -> int | None:
    """The trial number picked by a table cell or a click on the trials scatter."""
    if trigger == "fig-trials" and click and click.get("points"):
        custom = click["points"][0].get("customdata")
        if custom:
            return int(float(custom[0]))
    if active and rows and 0 <= active.get("row", -1) < len(rows):
        return int(rows[active["row"]]["number"])
    return None


def serve(
    storage: str | None,
    host: str = "127.0.0.1",
    port: int = 8050,
    refresh_s: float = 5.0,
    top_k: int = 20,
    token: str | None = None,
) -> None:
    """Run the live dashboard until interrupted (binds to 127.0.0.1 unless told otherwise;
    ``token``: required on every request, see :mod:`dashboards.auth`)."""
    app = create_app(storage, refresh_s=refresh_s, top_k=top_k, token=token)
    app.run(host=host, port=port, debug=False)
