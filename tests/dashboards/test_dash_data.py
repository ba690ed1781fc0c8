"""The data step of every figure, on a small study written through the Store API."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from dash_studies import Built, add_trials, chain_genotype
from sqlalchemy import text

from dashboards import data
from dashboards.db import Reader
from dashboards.table import FilterError, trial_rows
from nasplat.budget import Budget
from nasplat.direction import Direction
from nasplat.errors import StorageError


def test_reader_is_read_only_and_names_unknown_studies(reader: Reader) -> None:
    with pytest.raises(StorageError, match="alpha-study, beta-study"):
        reader.study("nope")
    with pytest.raises(Exception, match="readonly|read-only|query_only|attempt to write"):
        reader.execute(text("DELETE FROM trials"))


def test_version_changes_when_trials_are_written(built: Built, reader: Reader) -> None:
    before = reader.version()
    assert reader.version() == before
    add_trials(built.store, built.study, 1, seed=9, start=100)
    assert reader.version() != before


def test_best_so_far_is_monotone_and_keeps_only_changes(built: Built, reader: Reader) -> None:
    frame = data.best_so_far(reader, [built.study, built.other])
    assert set(frame["study"]) == {built.study, built.other}
    values = {t.number: t.value for t in built.store.trials(built.study, states=["COMPLETE"])}
    alpha = frame[frame["study"] == built.study]
    assert alpha["best_by_number"].is_monotonic_increasing
    running = np.maximum.accumulate([values[n] for n in sorted(values)])
    expected = dict(zip(sorted(values), running, strict=True))
    for number, best in zip(alpha["number"], alpha["best_by_number"], strict=True):
        assert best == pytest.approx(expected[number])
    assert alpha["best_by_number"].iloc[-1] == pytest.approx(max(values.values()))
    assert len(alpha) < len(values)  # only the points where the best changes (and the last)
    assert alpha["number"].iloc[-1] == max(values)
    assert (alpha["elapsed_s"] >= 0).all()


def test_pareto_mask() -> None:
    cost = np.array([1.0, 2.0, 2.0, 3.0, 4.0, np.nan])
    acc = np.array([0.5, 0.7, 0.6, 0.65, 0.9, 1.0])
    assert data.pareto_mask(cost, acc, Direction.MAXIMIZE).tolist() == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert data.pareto_mask(cost, -acc, Direction.MINIMIZE).tolist() == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert data.pareto_mask(cost, acc, Direction.MINIMIZE).tolist() == [
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_trials_frame_has_metrics_pareto_and_genotype(built: Built, reader: Reader) -> None:
    frame = data.trials_frame(reader, built.study)
    assert len(frame) == len(built.store.trials(built.study))
    assert set(frame["state"]) == {"COMPLETE", "PRUNED", "FAILED", "RUNNING"}
    complete = frame[frame["params"].notna()]
    assert (complete["flops"] == complete["params"] * 64).all()
    front = frame[frame["pareto_params"]]
    assert not front.empty and (front["state"] == "COMPLETE").all()
    cheapest = complete["params"].min()
    assert front["value"].max() == pytest.approx(complete["value"].max())
    assert front["params"].min() == cheapest
    scored = frame["value"].notna()
    assert (frame.loc[scored, "drawn"] == "all").all() and (frame.loc[~scored, "drawn"] == "").all()
    assert frame.loc[scored, "genotype"].str.contains("layer0.op=").all()
    assert frame.loc[scored, "arch_hash"].str.len().eq(64).all()
    limited = data.trials_frame(reader, built.study, hover_limit=5)
    assert (limited["genotype"] == "").sum() > 0
    assert limited.loc[limited["pareto_params"], "genotype"].str.len().gt(0).all()


def test_trials_frame_thins_to_front_top_and_a_sample(built: Built, reader: Reader) -> None:
    full = data.trials_frame(reader, built.study)
    thin = data.trials_frame(reader, built.study, max_points=12)
    drawn = thin[thin["drawn"] != ""]
    assert len(drawn) <= 12 < int(full["value"].notna().sum())
    fronts = thin[[f"pareto_{m}" for m in data.COST_METRICS]].any(axis=1)
    assert (thin.loc[fronts, "drawn"] == "front").all()  # every Pareto point is drawn
    best = thin.loc[thin["value"].idxmax()]
    assert best["drawn"] in ("front", "top")
    assert set(drawn["drawn"]) <= {"front", "top", "sample"} and "sample" in set(drawn["drawn"])
    assert (thin.loc[thin["drawn"] == "", "genotype"] == "").all()


def test_learning_curves_mark_where_pruned_trials_stopped(built: Built, reader: Reader) -> None:
    curves = data.learning_curves(reader, built.study)
    pruned = curves[curves["state"] == "PRUNED"]
    assert not pruned.empty
    stops = curves[curves["stopped"]]
    assert set(stops["trial_id"]) == set(pruned["trial_id"])
    assert (stops["step"] == 1).all()  # pruned after two steps (0 and 1)
    few = data.learning_curves(reader, built.study, max_trials=4)
    assert few["trial_id"].nunique() <= 4


def test_rungs_group_the_same_architecture(built: Built, reader: Reader) -> None:
    ladder = data.rungs(reader, built.study)
    assert sorted(ladder["rung"].tolist()) == [0, 0, 0, 1, 1]
    assert ladder.groupby("rung")["epochs"].first().tolist() == [1, 3]
    promoted = ladder[ladder["rung"] == 1]["arch_hash"]
    assert set(promoted) <= set(ladder[ladder["rung"] == 0]["arch_hash"])


def test_op_frequency_top_k_and_all(built: Built, reader: Reader) -> None:
    freq = data.op_frequency(reader, built.study, top_k=3)
    assert set(freq["group"]) == {"top-3", "all"}
    assert set(freq["slot"]) == {"layer 0", "layer 1", "layer 2"}
    sums = freq.groupby(["group", "slot"])["fraction"].sum()
    assert np.allclose(sums.to_numpy(), 1.0)
    top = freq[freq["group"] == "top-3"].groupby("slot")["count"].sum()
    assert (top == 3).all()
    archs = {t.arch_hash: t.genotype for t in built.store.trials(built.study)}
    layer0 = [g["layer0.op"] for g in archs.values()]
    everything = freq[(freq["group"] == "all") & (freq["slot"] == "layer 0")].set_index("op")[
        "count"
    ]
    assert everything.to_dict() == {op: layer0.count(op) for op in set(layer0)}


@pytest.mark.parametrize(
    ("space", "decision", "slot"),
    [
        ("chain", "layer3.op", "layer 3"),
        ("chain", "layer3.width", None),
        ("cell", "reduce.n4.op1", "reduce node 4"),
        ("cell", "reduce.n4.in1", None),
        ("nb201", "edge.3.1", "edge 1→3"),
        ("hierarchical", "motif2.m1.e2_0", "m1 edge 0→2"),
        ("hierarchical", "motif3.e4_3", "cell edge 3→4"),
        ("mystery", "block.op", "block.op"),
        ("mystery", "block.kernel", None),
    ],
)
def test_op_slot(space: str, decision: str, slot: str | None) -> None:
    assert data.op_slot(space, decision) == slot


def test_decisions_frame_samples_and_ranks_dimensions(built: Built, reader: Reader) -> None:
    frame = data.decisions_frame(reader, built.study, max_dims=3)
    assert list(frame.columns[:2]) == ["number", "value"]
    assert len(frame.columns) == 5
    assert (
        len(frame)
        == built.store.count_trials(
            built.store.get_study(built.study).id, states=["COMPLETE"], tag=None
        )
        + 6
    )
    sampled = data.decisions_frame(reader, built.study, limit=10)
    assert 0 < len(sampled) <= 10


def test_arch_weights_and_derived_genotype(built: Built, reader: Reader) -> None:
    weights = data.arch_weights(reader, built.study)
    assert set(weights["edge"]) == {"normal.n2.e0", "normal.n2.e1"}
    assert set(weights["op"]) == {"none", "sep_conv_3x3", "skip_connect"}
    per_step = weights.groupby(["edge", "step"])["weight"].sum()
    assert np.allclose(per_step.to_numpy(), 1.0)
    derived = data.derived_genotypes(weights)
    assert "none" not in set(derived["op"])  # none is the largest weight at epoch 0, never chosen
    assert derived[derived["step"] == 2]["op"].tolist() == ["sep_conv_3x3", "sep_conv_3x3"]
    assert data.arch_weights(reader, built.other).empty


def test_timeline_and_concurrency(built: Built, reader: Reader) -> None:
    line = data.timeline(reader, built.study)
    assert {"w0", "w1", "local"} <= set(line["worker"])
    assert (line["end_s"] >= line["start_s"]).all()
    assert line.loc[line["state"] == "FAILED", "retries"].eq(1).all()
    running = data.concurrency(line)
    assert running["running"].iloc[-1] == 0
    assert running["running"].max() >= 1


def test_best_and_trial_detail(built: Built, reader: Reader) -> None:
    best = built.store.best_trial(built.study)
    number, value, genotype = data.best_genotype(reader, built.study)
    assert (number, value, genotype) == (best.number, best.value, best.genotype)
    detail = data.trial_detail(reader, built.study, best.number)
    assert detail["genotype"] == best.genotype and detail["metrics"] == best.metrics
    assert detail["series"]["value"]["step"].tolist() == [0, 1, 2]
    assert data.trial_detail(reader, built.study, 10_000) is None


def test_studies_frame_counts(built: Built, reader: Reader) -> None:
    frame = data.studies_frame(reader).set_index("name")
    listed = {s["name"]: s for s in built.store.list_studies()}
    for name in (built.study, built.other):
        for column in ("trials", "complete", "pruned", "failed", "running"):
            assert frame.loc[name, column] == listed[name][column]
        assert frame.loc[name, "best"] == pytest.approx(listed[name]["best_value"])


def test_trial_rows_sort_filter_and_page_in_sql(built: Built, reader: Reader) -> None:
    everything = len(built.store.trials(built.study))
    page, total = trial_rows(reader, built.study, 0, 5, [{"colId": "value", "sort": "desc"}])
    assert total == everything and len(page) == 5
    assert page["value"].is_monotonic_decreasing
    pruned = {
        "state": {"filterType": "text", "type": "contains", "filter": "PRU"},
        "value": {"filterType": "number", "type": "greaterThan", "filter": 0.3},
    }
    page, total = trial_rows(reader, built.study, 0, 50, [], pruned)
    assert total == len(page) > 0 and set(page["state"]) == {"PRUNED"}
    assert (page["value"] > 0.3).all()
    second, _ = trial_rows(reader, built.study, 10, 20)
    assert second["number"].tolist() == list(range(10, 20))
    rung = {"tag": {"filterType": "text", "type": "equals", "filter": "RUNG-1"}}
    assert trial_rows(reader, built.study, 0, 50, [], rung)[1] == 2
    either = {
        "number": {
            "filterType": "number",
            "operator": "OR",
            "conditions": [
                {"type": "lessThan", "filter": 2},
                {"type": "inRange", "filter": 20, "filterTo": 21},
            ],
        }
    }
    assert trial_rows(reader, built.study, 0, 50, [], either)[0]["number"].tolist() == [
        0,
        1,
        20,
        21,
    ]
    blank = {"params": {"filterType": "number", "type": "blank"}}
    rows, total = trial_rows(reader, built.study, 0, 100, [], blank)
    assert total == everything - len(
        [t for t in built.store.trials(built.study) if "params" in t.metrics]
    )
    with pytest.raises(FilterError, match="unknown column"):
        trial_rows(reader, built.study, 0, 5, [], {"nope": {"type": "equals", "filter": 1}})
    with pytest.raises(FilterError, match="needs a number"):
        trial_rows(reader, built.study, 0, 5, [], {"value": {"type": "equals", "filter": "x"}})
    with pytest.raises(FilterError, match="unknown number filter"):
        trial_rows(reader, built.study, 0, 5, [], {"value": {"type": "contains", "filter": 1}})


def test_trial_points_read_again_only_what_changed(built: Built, reader: Reader) -> None:
    store, study = built.store, built.study
    before = data.trial_points(reader, study)
    running = before.loc[before["state"] == "RUNNING", "id"].tolist()
    assert len(running) == 1 and before["end_s"].isna().sum() == 1
    store.finish_trial(running[0], state="COMPLETE", value=0.99, metrics={"params": 5.0})
    add_trials(store, study, 3, seed=11, start=300)
    extra = store.create_trial(
        store.get_study(study).id, chain_genotype(random.Random(4)), Budget()
    )
    store.interrupt_running(store.get_study(study).id, trial_ids=[extra.id])
    merged = data.trial_points(reader, study, since=before)
    fresh = data.trial_points(reader, study)
    assert len(merged) == len(before) + 4

    def plain(frame: pd.DataFrame) -> pd.DataFrame:  # None and NaN alike in text columns
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(merged), plain(fresh))
    assert merged.set_index("id").loc[running[0], "params"] == 5.0
    assert merged.set_index("id").loc[extra.id, "state"] == "INTERRUPTED"


def test_sources_share_reads_per_version_and_keep_the_best_drawing(
    built: Built, reader: Reader
) -> None:
    from dashboards.sources import Sources, store_version

    sources = Sources(reader, top_k=20, max_points=None)
    store, study = built.store, built.study
    version = store_version(reader)
    assert sources.studies(version) is sources.studies(version)  # read once per version
    summary = sources.summary(study, version)
    assert summary is sources.summary(study, version)
    cell = sources.draw(study, [], version, "cell")
    # a worse trial: a new version, the same best trial, so the same drawing
    record = store.get_study(study)
    worse = store.create_trial(record.id, chain_genotype(random.Random(8)), Budget(epochs=3))
    store.finish_trial(worse.id, state="COMPLETE", value=0.01)
    newer = store_version(reader)
    assert newer != version
    assert sources.studies(newer) is not sources.studies(version)
    assert sources.summary(study, newer).trials == summary.trials + 1
    assert sources.draw(study, [], newer, "cell").figure is cell.figure
    # a better one: drawn again, titled with the new best trial
    better = store.create_trial(record.id, chain_genotype(random.Random(9)), Budget(epochs=3))
    store.finish_trial(better.id, state="COMPLETE", value=2.0)
    redrawn = sources.draw(study, [], store_version(reader), "cell")
    assert (
        redrawn.figure is not cell.figure
        and f"trial {better.number}," in redrawn.figure.layout.title.text
    )


def test_package_import_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, dashboards, dashboards.cells; print('plotly' in sys.modules, 'dash' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr
