"""The hypervolume figure of a multi-objective study (report and live dashboard)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasplat.config import SearchConfig
from nasplat.run import run_search
from nasplat.store import Store

pytest.importorskip("plotly")


def test_hypervolume_over_trials(tmp_path: Path) -> None:
    from dashboards import data
    from dashboards.db import Reader
    from dashboards.report import study_figures

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    base = {
        "space": "nb201",
        "evaluator": "tabular",
        "evaluator_options": {"table": "nb201", "metric": "cifar10_valid_acc"},
        "strategy": "nsga2",
        "budget": 12,
        "keep_weights": "none",
    }
    run_search(
        SearchConfig.from_dict(
            {**base, "study": "mo", "objective": "val_acc,params", "reference_point": [0, 1.6e6]}
        ),
        store,
        progress=False,
    )
    run_search(SearchConfig.from_dict({**base, "study": "single"}), store, progress=False)
    reader = Reader(store)
    history = data.hypervolume_history(reader, "mo")
    stored = [t.metrics["hypervolume"] for t in store.trials("mo")]
    assert list(history["hypervolume"]) == sorted(set(stored))  # the steps, never decreasing
    assert history["number"].iloc[-1] == 11  # the last trial closes the line
    figures = study_figures(reader, "mo")
    figure = figures["hypervolume"]
    assert list(figures)[:3] == ["best-so-far", "hypervolume", "trials"]
    assert "reference point val_acc=0, params=1.6e+06" in figure.layout.title.text
    assert list(figure.data[0].y) == list(history["hypervolume"])
    assert "hypervolume" not in study_figures(reader, "single")  # one objective: no figure
    # the live page shows the same panel on its Overview tab, and leaves it out for one objective
    pytest.importorskip("dash")
    from dashboards.page import TABS
    from dashboards.panels import StudySource, panel

    assert "hypervolume" in TABS["overview"]
    assert panel(StudySource(reader, "mo"), "hypervolume").figure.data
    assert panel(StudySource(reader, "single"), "hypervolume") is None
    reader.close()
    store.close()
