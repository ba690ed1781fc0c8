"""The drawing step: figures from the data step's tables, the report and the app's callbacks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
        "curves",
        "ops",
        "decisions",
        "alphas",
        "derived",
        "cell",
        "timeline",
    ]
    kinds = {key: {t.type for t in fig.data} for key, fig in figures.items()}
    assert kinds["best-so-far"] == {"scattergl"} and kinds["trials"] == {"scattergl"}
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
    assert shown == 3 * len(with_cost)  # one point per trial on each cost panel
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


def test_empty_study_gives_explaining_figures(built: Built, reader: Reader) -> None:
    built.store.create_study(
        "empty",
        space="nb201",
        strategy="random",
        evaluator="train",
        objectives=[("loss", "minimize")],
        config={},
    )
    figures = study_figures(reader, "empty")
    for key, fig in figures.items():
        assert fig.layout.annotations, key  # a message instead of an empty plot


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
    assert page.count('class="figure"') == 9 and "Plotly.newPlot" in page
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


def test_app_layout_and_callback_helpers(built: Built) -> None:
    pytest.importorskip("dash")
    from dashboards.app import create_app, figure_for, selected_number

    app = create_app(built.url, refresh_s=1)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout").get_json()
    assert "fig-trials" in str(layout) and "studies" in str(layout)
    reader = app.server.config["nasplat_reader"]
    for key in (
        "best-so-far",
        "trials",
        "timeline",
        "cell",
        "ops",
        "decisions",
        "curves",
        "alphas",
        "derived",
    ):
        assert figure_for(reader, key, built.study, [built.other], 5).data, key
    rows = [{"number": 7}, {"number": 9}]
    assert selected_number("trials", {"row": 1}, None, rows) == 9
    click = {"points": [{"customdata": ["12", "abc", "..."]}]}
    assert selected_number("fig-trials", {"row": 1}, click, rows) == 12
    assert selected_number("trials", None, None, rows) is None
