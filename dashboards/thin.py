"""Keeping big studies drawable: which trials a scatter draws, and the timeline in time bins.

A figure of 100,000 trials is megabytes of JSON and seconds of rendering, and no one reads
100,000 overlapping markers. The scatter draws the Pareto fronts, the top trials and an even
sample of the rest (the caption says how many of each); the timeline, past a limit, counts the
trials each worker finished per time bin instead of drawing one bar per trial. Pure pandas and
numpy: tables in, tables out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dashboards.fmt import format_count
from dashboards.limits import TIME_BINS, TOP_TRIALS


def drawn_reasons(
    frame: pd.DataFrame,
    maximize: bool,
    max_points: int | None,
    fronts: Sequence[str] = (),
    top: int = TOP_TRIALS,
) -> pd.Series:
    """Why each row is drawn: ``front`` (True in any of the ``fronts`` flag columns: always
    drawn), ``top`` (the ``top`` best values, at most a quarter of ``max_points``), ``sample``
    (an even sample, by row order, of the rest, up to ``max_points`` rows in all), ``all`` (no
    thinning needed), or ``""`` (not drawn: no value, or thinned out)."""
    scored = frame["value"].notna()
    reasons = pd.Series("", index=frame.index, dtype=object)
    if max_points is None or int(scored.sum()) <= max_points:
        reasons[scored] = "all"
        return reasons
    on_front = frame[list(fronts)].any(axis=1) if fronts else pd.Series(False, index=frame.index)
    ranked = frame["value"].where(scored).rank(ascending=not maximize, method="first")
    reasons[scored & (ranked <= min(top, max_points // 4))] = "top"
    reasons[scored & on_front] = "front"
    rest = frame.index[scored & (reasons == "")]
    room = max_points - int((reasons != "").sum())
    if room > 0 and len(rest):
        step = max(1, math.ceil(len(rest) / room))
        reasons[rest[::step]] = "sample"
    return reasons


def drawn_caption(reasons: pd.Series) -> str:
    """What a thinned scatter shows, e.g. ``2,000 of 100,000 trials drawn: Pareto front 12,
    top 200, even sample of 1,788``; empty when every trial is drawn."""
    counts = reasons.value_counts()
    if counts.get("all", 0) or not counts.drop("", errors="ignore").sum():
        return ""
    drawn = int(counts.drop("", errors="ignore").sum())
    total = drawn + int(counts.get("", 0))
    parts = [
        f"{label} {format_count(int(counts[key]))}"
        for key, label in (("front", "Pareto front"), ("top", "top"), ("sample", "even sample of"))
        if counts.get(key, 0)
    ]
    return f"{format_count(drawn)} of {format_count(total)} trials drawn: " + ", ".join(parts)


def time_bins(frame: pd.DataFrame, bins: int = TIME_BINS) -> pd.DataFrame:
    """Trials finished per worker per time bin, from a :func:`~dashboards.data.timeline` table:
    every (worker, bin) pair, workers sorted, bins in time order.

    Columns: worker, t0, t1 (the bin, seconds since the study started), finished, failed (of
    those finished, FAILED), running (trials still running that started in the bin).
    """
    columns = ["worker", "t0", "t1", "finished", "failed", "running"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    end = float(max(frame["end_s"].max(), frame["start_s"].max(), 1e-9))
    edges = np.linspace(0.0, end, bins + 1)
    finished = frame["state"] != "RUNNING"
    at = np.where(finished, frame["end_s"], frame["start_s"])
    slot = np.clip(np.searchsorted(edges, at, side="right") - 1, 0, bins - 1)
    workers, names = pd.factorize(frame["worker"].astype(str), sort=True)
    table = pd.DataFrame(
        {
            "worker": workers,
            "bin": slot,
            "finished": finished.to_numpy(dtype=int),
            "failed": (frame["state"] == "FAILED").to_numpy(dtype=int),
            "running": (~finished).to_numpy(dtype=int),
        }
    )
    counts = table.groupby(["worker", "bin"])[["finished", "failed", "running"]].sum()
    grid = pd.MultiIndex.from_product([range(len(names)), range(bins)])
    out = counts.reindex(grid, fill_value=0).rename_axis(["worker", "bin"]).reset_index()
    out["worker"] = np.asarray(names)[out["worker"]]
    out["t0"] = edges[out["bin"]]
    out["t1"] = edges[out["bin"] + 1]
    return out[columns]


def binned_concurrency(running: pd.DataFrame, bins: int = TIME_BINS) -> pd.DataFrame:
    """The most trials in flight per time bin, from a :func:`~dashboards.data.concurrency`
    table (a step line of at most ``2 * bins`` points instead of one per event)."""
    if len(running) <= 2 * bins:
        return running
    times = running["time_s"].to_numpy(dtype=float)
    edges = np.linspace(times[0], times[-1], bins + 1)
    starts = np.unique(np.searchsorted(times, edges[:-1], side="left"))
    peaks = np.maximum.reduceat(running["running"].to_numpy(), starts)
    return pd.DataFrame({"time_s": times[starts], "running": peaks})
