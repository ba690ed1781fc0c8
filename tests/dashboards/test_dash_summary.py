"""The summary header, value formatting and the timeline's bins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dash_studies import Built

from dashboards import data
from dashboards.db import Reader
from dashboards.fmt import format_duration, format_value
from dashboards.summary import study_summary
from dashboards.thin import binned_concurrency, drawn_caption, time_bins


@pytest.mark.parametrize(
    ("metric", "value", "text"),
    [
        ("val_acc", 0.6518105849582173, "0.6518"),
        ("accuracy", 93.456789, "93.46"),
        ("params", 1_234_567.0, "1.23M"),
        ("flops", 5.5e9, "5.5G"),
        ("latency_ms", 12.3456, "12.3 ms"),
        ("loss", 0.0123456, "0.01235"),
        ("train_seconds", 4321.0, "1 h 12 min"),
        ("val_acc", None, "–"),
        ("val_acc", float("nan"), "–"),
    ],
)
def test_format_value(metric: str, value: float | None, text: str) -> None:
    assert format_value(metric, value) == text


def test_format_duration() -> None:
    assert format_duration(2.5) == "2.5 s"
    assert format_duration(75) == "1 min 15 s"
    assert format_duration(3 * 86400 + 7200) == "3 d 2 h"


def test_summary_states_budget_best_and_notation(built: Built, reader: Reader) -> None:
    store = built.store
    record = store.get_study(built.study)
    store.interrupt_running(record.id)  # the running trial: now INTERRUPTED
    summary = study_summary(reader, built.study)
    trials = store.trials(built.study)
    assert summary.trials == len(trials)
    assert summary.counts["INTERRUPTED"] == 1 and summary.counts["RUNNING"] == 0
    assert "1 interrupted" in summary.trials_text
    finished = sum(t.state in ("COMPLETE", "PRUNED", "FAILED") for t in trials)
    assert summary.budget_text == f"{finished} trials"  # the study has no budget on record
    best = store.best_trial(built.study)
    assert summary.best_text == f"{best.value:.4f} (trial {best.number})"
    assert summary.notation.splitlines()[0] == f"layer0.op={best.genotype['layer0.op']}"
    items = dict(summary.items())
    assert list(items) == [
        "study",
        "space",
        "strategy",
        "evaluator",
        "objective",
        "budget used",
        "best",
        "trials",
        "time",
    ]
    assert items["objective"] == "val_acc (maximize)" and ", ran " in items["time"]


def test_summary_of_a_budgeted_study(built: Built, reader: Reader) -> None:
    built.store.create_study(
        "budgeted",
        space="nb201",
        strategy="random",
        evaluator="train",
        objectives=[("val_acc", "maximize")],
        config={"budget": 50, "time_limit": 3600},
    )
    summary = study_summary(reader, "budgeted")
    assert summary.budget_text == "0 of 50 trials, time limit 1 h 00 min"
    assert summary.best_text == "no completed trial yet" and summary.time_text == "no trial yet"


def test_time_bins_count_every_trial_once(built: Built, reader: Reader) -> None:
    line = data.timeline(reader, built.study)
    bins = time_bins(line, bins=7)
    workers = sorted(line["worker"].unique())
    assert len(bins) == 7 * len(workers) and sorted(set(bins["worker"])) == workers
    assert bins["finished"].sum() == int((line["state"] != "RUNNING").sum())
    assert bins["failed"].sum() == int((line["state"] == "FAILED").sum())
    assert bins["running"].sum() == int((line["state"] == "RUNNING").sum())
    assert np.isclose(bins["t1"].max(), max(line["end_s"].max(), line["start_s"].max()))


def test_binned_concurrency_keeps_the_peaks() -> None:
    times = np.arange(1000.0)
    running = pd.DataFrame({"time_s": times, "running": (times % 10).astype(int)})
    binned = binned_concurrency(running, bins=20)
    assert len(binned) <= 40 and binned["running"].max() == 9
    small = running.head(10)
    assert binned_concurrency(small, bins=20) is small


def test_drawn_caption() -> None:
    reasons = pd.Series(["front"] * 3 + ["top"] * 5 + ["sample"] * 12 + [""] * 80)
    assert drawn_caption(reasons) == (
        "20 of 100 trials drawn: Pareto front 3, top 5, even sample of 12"
    )
    assert drawn_caption(pd.Series(["all", "all", ""])) == ""
