"""The drawing step: figures from the data step's tables, the report and the app's callbacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from dash_studies import Built

pytest.importorskip("plotly")
NASPLAT = [sys.executable, "-c", "from nasplat.cli import main; main()"]

from dashboards import data  # noqa: E402
from dashboards.cells import genotype_graph  # noqa: E402
from dashboards.db import Reader  # noqa: E402
from dashboards.report import study_figures  # noqa: E402


def test_every_figure_draws_real_traces(built: Built, reader: Reader) -> None:
    figures = study_figures(reader, built.study, compare=[built.other], top_k=5)
    assert list(figures) == [
        "best-so-far",
        "trials",
        "timeline",
        "cell",
        "ops",
        "decisions",
        "curves",
        "alphas",
        "derived",
    ]
    kinds = {key: {t.type for t in fig.data} for key, fig in figures.items()}
    assert kinds["best-so-far"] == {"scatter"} and kinds["trials"] == {"scatter"}  # SVG: few
    assert kinds["ops"] == {"heatmap"} and kinds["decisions"] == {"parcats"}
    assert kinds["derived"] == {"heatmap"} and "scatter" in kinds["alphas"]
    names = {t.name for t in figures["best-so-far"].data}
    assert names == {built.study, built.other}
    trials = figures["trials"]
    assert "Pareto front" in {t.name for t in trials.data}
    with_cost = [
        t for t in built.store.trials(built.study, states=["COMPLETE"]) if "params" in t.metrics
    ]
    shown = sum(len(t.x) for t in trials.data if t.name == "COMPLETE")
    assert shown == 3 * len(with_cost)  # one point per trial for each cost metric
    # one cost metric drawn at a time; the buttons switch the visible traces and the x axis
    (menu,) = trials.layout.updatemenus
    assert [b.label for b in menu.buttons] == ["params", "flops", "latency_ms"]
    visible = [t.name for t in trials.data if t.visible]
    assert "COMPLETE" in visible and len(visible) == len(trials.data) // 3
    for button in menu.buttons:
        mask, axis = button.args
        assert sum(mask["visible"]) == len(visible) and axis["xaxis.title.text"] == button.label
    assert trials.layout.xaxis.title.text == "params"
    assert not trials.layout.title.subtitle.text  # nothing thinned
    assert {t.name for t in figures["curves"].data} >= {
        "COMPLETE curves",
        "PRUNED curves",
        "pruned here",
        "rung 0 (1 epochs)",
    }
    assert {t.name for t in figures["timeline"].data} >= {
        "COMPLETE",
        "FAILED",
        "retried",
        "in flight",
    }
    texts = {a.text for a in figures["cell"].layout.annotations}
    best = data.best_genotype(reader, built.study)[2]
    assert f"{best['layer0.op']} ×{best['layer0.width']}" in texts


def test_thinned_figures_state_what_they_draw(built: Built, reader: Reader) -> None:
    from dashboards.panels import StudySource, panel

    src = StudySource(reader, built.study, max_points=12)
    trials = panel(src, "trials").figure
    caption = trials.layout.title.subtitle.text
    scored = sum(1 for t in built.store.trials(built.study) if t.value is not None)
    assert re.fullmatch(
        rf"\d+ of {scored} trials drawn: Pareto front \d+, .*even sample of \d+", caption
    )
    frame = data.trials_frame(reader, built.study, max_points=12)
    drawn = frame[frame["drawn"] != ""]
    assert int(caption.split()[0]) == len(drawn) <= 12
    points = sum(len(t.x) for t in trials.data if t.name != "Pareto front")
    assert points == 3 * int(drawn["params"].notna().sum())  # each drawn trial on 3 panels
    from dashboards.figures import timeline_figure

    line = data.timeline(reader, built.study)
    assert "heatmap" not in {t.type for t in panel(src, "timeline").figure.data}  # bars: few
    timeline = timeline_figure(line, data.concurrency(line), max_bars=12)
    assert {t.type for t in timeline.data} >= {"heatmap"}
    assert "counted per worker in bins of" in timeline.layout.title.subtitle.text
    heat = next(t for t in timeline.data if t.type == "heatmap")
    finished = sum(1 for t in built.store.trials(built.study) if t.state != "RUNNING")
    assert np.nansum(np.asarray(heat.z, dtype=float)) == finished


def test_empty_and_inapplicable_panels(built: Built, reader: Reader) -> None:
    from dashboards.panels import StudySource, study_panels

    built.store.create_study(
        "empty",
        space="nb201",
        strategy="random",
        evaluator="train",
        objectives=[("loss", "minimize")],
        config={},
    )
    panels = study_panels(StudySource(reader, "empty"))
    assert "alphas" not in panels and "derived" not in panels  # no one-shot weights: n/a
    for key, found in panels.items():
        assert found.figure is None and found.note, key  # a reason instead of an empty plot
    assert panels["trials"].note == "no trial with an objective value yet"
    black_box = study_panels(StudySource(reader, built.other))
    assert "alphas" not in black_box and black_box["trials"].figure is not None


def test_single_step_curves_are_no_curves() -> None:
    from dashboards.figures import empty_reason, learning_curves_figure

    one_step = pd.DataFrame(
        {
            "trial_id": [1, 2],
            "number": [0, 1],
            "state": ["COMPLETE", "COMPLETE"],
            "tag": [None, None],
            "step": [0, 0],
            "value": [0.5, 0.6],
            "stopped": [False, False],
        }
    )
    reason = empty_reason(learning_curves_figure(one_step))
    assert reason is not None and "single step" in reason
    two = pd.concat([one_step, one_step.assign(step=1)]).sort_values(["trial_id", "step"])
    assert empty_reason(learning_curves_figure(two)) is None


def test_cell_figure_fallback_is_a_table() -> None:
    from dashboards.figures import cell_figure

    fig = cell_figure(genotype_graph({"space": "mystery", "decisions": {"a": 1}}))
    assert fig.data[0].type == "table"


def test_report_cli_writes_self_contained_html(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "report.html"
    cmd = [
        *NASPLAT,
        "dashboard",
        "--study",
        built.study,
        "--out",
        str(out),
        "--storage",
        built.url,
        "--compare",
        built.other,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    page = out.read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inlined, nothing to fetch
    assert page.count("Plotly.newPlot") == 9 and page.count('class="card figure"') == 8
    best = built.store.best_trial(built.study)
    assert f'<dd class="best">{best.value:.4f} (trial {best.number})</dd>' in page
    assert "<dt>budget used</dt>" in page and "<dt>strategy</dt><dd" in page
    notation = re.search(r'<pre class="notation-text" id="best-notation">(.*?)</pre>', page, re.S)
    assert notation and f"layer0.op={best.genotype['layer0.op']}" in notation.group(1)
    assert '{"space"' not in page  # no raw genotype JSON
    bad = subprocess.run(
        [*cmd[:5], "nope", *cmd[6:10]], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and "no study 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    neither = subprocess.run(
        [*NASPLAT, "dashboard"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert neither.returncode == 2 and "--serve" in neither.stderr


def test_report_of_every_study_without_study(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "all.html"
    cmd = [*NASPLAT, "dashboard", "--out", str(out), "--storage", built.url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert page.count('<section class="study"') == 2
    for name in (built.study, built.other):
        assert f'<a href="#study-{name}">{name}</a>' in page
    assert page.count("<script") - page.count("Plotly.newPlot") <= 2  # plotly.js once
    from nasplat.store import Store

    Store("sqlite:///" + str(tmp_path / "empty.db")).close()
    empty = subprocess.run(
        [*NASPLAT, "dashboard", "--out", str(out), "--storage", f"sqlite:///{tmp_path}/empty.db"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        empty.returncode == 2 and "no study in" in empty.stderr and "Traceback" not in empty.stderr
    )
    helped = subprocess.run(
        [*NASPLAT, "dashboard", "--help"], capture_output=True, text=True, timeout=300
    )
    assert "default: every study" in " ".join(helped.stdout.split())


def _callback(client: Any, output: str, inputs: list[dict], state: list[dict] = ()) -> Any:
    """Run one Dash callback through the server, as the page does."""
    body = {
        "output": output,
        "outputs": [
            {"id": part.split(".")[0], "property": part.split(".")[1]}
            for part in output.strip(".").split("...")
        ],
        "inputs": inputs,
        "state": list(state),
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }
    reply = client.post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def test_app_serves_the_page_table_and_panels(built: Built) -> None:
    pytest.importorskip("dash")
    from dashboards.app import create_app, selected_number

    app = create_app(built.url, refresh_s=1)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    tree = client.get("/_dash-layout").get_json()
    layout = json.dumps(tree)
    assert "dash_table" not in layout and "AgGrid" in layout
    assert f'"ids": ["{built.other}"]' in layout  # the newest study is picked, and drawn:
    assert f'"Study {built.other}"' in layout and '"budget used"' in layout
    found = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("props", {}).get("id", "").startswith("fig-"):
                found[node["props"]["id"]] = node["props"].get("figure") or {}
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    overview = {f"fig-{k}" for k in ("cell", "best-so-far", "trials", "timeline")}
    assert {k for k, fig in found.items() if fig.get("data")} == overview
    request = {"startRow": 25, "endRow": 50, "sortModel": [], "filterModel": {}}
    reply = _callback(
        client,
        "..trials.getRowsResponse...table-status.children..",
        [{"id": "trials", "property": "getRowsRequest", "value": request}],
        [{"id": "study", "property": "data", "value": built.study}],
    )
    total = len(built.store.trials(built.study))
    assert reply["table-status"]["children"] == f"{total} trial(s) match"
    rows = reply["trials"]["getRowsResponse"]
    assert rows["rowCount"] == total and [r["number"] for r in rows["rowData"]] == list(
        range(25, min(50, total))
    )
    bad = {**request, "filterModel": {"value": {"type": "equals", "filter": "x"}}}
    reply = _callback(
        client,
        "..trials.getRowsResponse...table-status.children..",
        [{"id": "trials", "property": "getRowsRequest", "value": bad}],
        [{"id": "study", "property": "data", "value": built.study}],
    )
    assert "needs a number" in reply["table-status"]["children"]
    sources = app.server.config["nasplat_sources"]
    version = app.server.config["nasplat_reader"].version()
    for key in ("best-so-far", "trials", "timeline", "cell", "ops", "decisions", "curves"):
        assert sources.draw(built.study, [built.other], version, key).figure.data, key
    assert sources.draw(built.other, [], version, "alphas") is None
    assert selected_number("trials", {"rowId": "9"}, None) == 9
    click = {"points": [{"customdata": ["12", "abc", "..."]}]}
    assert selected_number("fig-trials", {"rowId": "9"}, click) == 12
    assert selected_number("trials", None, None) is None
