"""The data step: every figure's table, read from the store with SQL-side aggregation.

Each function takes a :class:`~dashboards.db.Reader` and a study name and returns a plain pandas
DataFrame (or a dict of plain values); the drawing step in :mod:`dashboards.figures` never
touches the store. Work that grows with the number of trials happens in SQL (window functions,
joins on indexed keys, ``GROUP BY``) or in vectorised pandas/numpy, never in per-trial Python
loops; per-row Python work is limited to bounded samples (top-k, a few thousand rows).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, literal, or_, select, text, union

from dashboards.cells import space_of
from dashboards.db import Reader, StudyInfo
from dashboards.thin import drawn_reasons
from nasplat.direction import Direction
from nasplat.genotype import Genotype
from nasplat.pareto import HYPERVOLUME
from nasplat.space import op_decision_slot
from nasplat.store import models

COST_METRICS = ("params", "flops", "latency_ms")
STATE_ORDER = ("COMPLETE", "PRUNED", "FAILED", "RUNNING", "INTERRUPTED")
ALPHA_PREFIX = "alpha."
HOVER_GENOTYPE_LIMIT = 500
POINT_COLUMNS = (
    "id",
    "number",
    "state",
    "value",
    "tag",
    "worker",
    "retries",
    "start_s",
    "end_s",
    "arch_id",
)


def _frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def _seconds(values: pd.Series) -> pd.Series:
    """Seconds since the epoch as floats: already numbers (the database converted them, see
    :func:`_epoch`) or timestamps (naive ones read as UTC)."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() == values.notna().sum():
        return numbers.astype(float)
    stamps = pd.to_datetime(values, utc=True, format="mixed")
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _epoch(reader: Reader, column: Any) -> Any:
    """A timestamp column as epoch seconds computed in SQL where the database can (the
    column itself otherwise; :func:`_seconds` converts either)."""
    converted = reader.epoch(column)
    return column if converted is None else converted


# --- best so far ------------------------------------------------------------------------------
def _running_best(values: np.ndarray, maximize: bool) -> np.ndarray:
    return np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)


def _completed(reader: Reader, info: StudyInfo) -> pd.DataFrame:
    """COMPLETE trials with a value: number, value, finished and start (the study's first
    start), epoch seconds."""
    t = models.trials
    start = select(func.min(t.c.started_at)).where(t.c.study_id == info.id).scalar_subquery()
    query = (
        select(t.c.number, t.c.value, _epoch(reader, t.c.finished_at), _epoch(reader, start))
        .where(t.c.study_id == info.id, t.c.state == "COMPLETE", t.c.value.is_not(None))
        .order_by(t.c.number)
    )
    return pd.DataFrame(reader.raw(query), columns=["number", "value", "finished", "start"])


def best_so_far(
    reader: Reader, studies: Sequence[str], points: Mapping[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Best objective so far per study, by trial number and by wall-clock time.

    Columns: study, number, elapsed_s (finish time since the study's first trial started),
    value, best_by_number, best_by_time. Only rows where either running best changes (each in
    its own order), plus each study's last trial, are kept (the lines are step functions), so
    100k trials stay small. SQL reads the values (or they come from a study's
    :func:`trial_points` in ``points``); the running best is numpy's.
    """
    frames = []
    for name in studies:
        info = reader.study(name)
        known = (points or {}).get(name)
        if known is None:
            df = _completed(reader, info)
            elapsed = _seconds(df["finished"]) - _seconds(df["start"])
        else:
            done = ((known["state"] == "COMPLETE") & known["value"].notna()).to_numpy()
            df = known.loc[done, ["number", "value"]]
            elapsed = known["end_s"].to_numpy()[done] - known["start_s"].min()
        if df.empty:
            continue
        frames.append(_best_steps(name, df["number"], df["value"], elapsed, info.maximize))
    columns = ["study", "number", "value", "best_by_number", "best_by_time", "elapsed_s"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _best_steps(study: str, number: Any, value: Any, elapsed: Any, maximize: bool) -> pd.DataFrame:
    """The running bests of one study's completed trials (in number order), by number and by
    elapsed time, keeping only the rows where either changes, plus the last."""
    number = np.asarray(number)
    value = np.asarray(value, dtype=float)
    elapsed = np.asarray(elapsed, dtype=float)
    by_number = _running_best(value, maximize)
    order = np.lexsort((number, elapsed))  # by time, ties by number; NaN times last
    best_in_time = _running_best(value[order], maximize)
    by_time = np.empty_like(best_in_time)
    by_time[order] = best_in_time
    keep = np.ones(len(value), dtype=bool)
    keep[1:] = by_number[1:] != by_number[:-1]
    time_changes = np.ones(len(value), dtype=bool)
    time_changes[1:] = best_in_time[1:] != best_in_time[:-1]
    keep[order[time_changes]] = True
    keep[-1] = True
    return pd.DataFrame(
        {
            "study": study,
            "number": number[keep],
            "value": value[keep],
            "best_by_number": by_number[keep],
            "best_by_time": by_time[keep],
            "elapsed_s": elapsed[keep],
        }
    )


# --- hypervolume ------------------------------------------------------------------------------
def hypervolume_history(reader: Reader, study: str) -> pd.DataFrame:
    """A multi-objective study's hypervolume after each trial (the trials' ``hypervolume``
    metric, written by the search loop), by trial number. Columns: number, hypervolume; only
    the rows where it changes, plus the last. Empty for a study without it."""
    info = reader.study(study)
    t, tv = models.trials, models.trial_values.alias()
    query = (
        select(t.c.number, tv.c.value)
        .join(tv, and_(tv.c.trial_id == t.c.id, tv.c.key == HYPERVOLUME))
        .where(t.c.study_id == info.id)
        .order_by(t.c.number)
    )
    df = _frame(reader.execute(query), ["number", HYPERVOLUME])
    if df.empty:
        return df
    changed = df[HYPERVOLUME] != df[HYPERVOLUME].shift()
    changed.iloc[-1] = True
    return df[changed].reset_index(drop=True)


def reference_text(info: StudyInfo) -> str:
    """``val_acc=0, params=1.6e+06``: a study's hypervolume reference point ("" if unfixed)."""
    reference = info.config.get("reference_point")
    if not reference:
        return ""
    names = [name.strip() for name in str(info.config.get("objective", "")).split(",")]
    return ", ".join(f"{n}={float(v):g}" for n, v in zip(names, reference, strict=False))


# --- all trials ---------------------------------------------------------------------------------
def _metric_columns(query: Any, trial: Any, metrics: Sequence[str]) -> Any:
    """Add one LEFT JOIN per metric on the (trial_id, key) unique index."""
    for metric in metrics:
        tv = models.trial_values.alias()
        query = query.outerjoin(
            tv, and_(tv.c.trial_id == trial.c.id, tv.c.key == metric)
        ).add_columns(tv.c.value.label(metric))
    return query


def compact_genotype(genotype_json: str, per_line: int = 4) -> str:
    """A genotype as ``name=value`` pairs, a few per line (hover text)."""
    decisions = json.loads(genotype_json)["decisions"]
    pairs = [f"{k}={v}" for k, v in decisions.items()]
    return "<br>".join("  ".join(pairs[i : i + per_line]) for i in range(0, len(pairs), per_line))


def pareto_mask(cost: np.ndarray, objective: np.ndarray, direction: Direction) -> np.ndarray:
    """True where no other point has lower-or-equal cost and a strictly better objective
    (and no cheaper point is at least as good). Vectorised: sort by cost, running best."""
    cost = np.asarray(cost, dtype=float)
    score = np.asarray(objective, dtype=float) * direction.sign  # larger is better
    valid = ~(np.isnan(cost) | np.isnan(score))
    mask = np.zeros(len(cost), dtype=bool)
    idx = np.flatnonzero(valid)
    if not len(idx):
        return mask
    order = idx[np.lexsort((-score[idx], cost[idx]))]  # cost ascending, best score first
    ordered = score[order]
    running = np.maximum.accumulate(ordered)
    previous = np.concatenate(([-np.inf], running[:-1]))
    mask[order[ordered > previous]] = True
    return mask


def trial_points(
    reader: Reader,
    study: str,
    metrics: Sequence[str] = COST_METRICS,
    since: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per trial in number order, as numbers: id, number, state, value, tag, worker,
    retries, start_s and end_s (epoch seconds, converted by the database; end_s NaN while
    running), arch_id, one column per metric. The one full read behind the Overview figures.

    ``since``: an earlier result for the same study: only the trials that can have changed are
    read (new ones, and those RUNNING then: a finished or interrupted trial never changes) and
    merged into it.
    """
    info = reader.study(study)
    t = models.trials
    query = select(
        t.c.id,
        t.c.number,
        t.c.state,
        t.c.value,
        t.c.tag,
        t.c.worker,
        t.c.retries,
        _epoch(reader, t.c.started_at),
        _epoch(reader, t.c.finished_at),
        t.c.architecture_id,
    ).where(t.c.study_id == info.id)
    incremental = since is not None and len(since) > 0
    if incremental:
        assert since is not None
        running = since.loc[since["state"] == "RUNNING", "id"].astype(int).tolist()
        query = query.where(
            or_(t.c.id > int(since["id"].max()), t.c.state == "RUNNING", t.c.id.in_(running))
        )
    query = _metric_columns(query, t, metrics).order_by(t.c.number)
    df = pd.DataFrame(reader.raw(query), columns=[*POINT_COLUMNS, *metrics])
    for column in ("value", *metrics):
        df[column] = pd.to_numeric(df[column], errors="coerce").astype(float)
    df["start_s"] = _seconds(df["start_s"])
    df["end_s"] = _seconds(df["end_s"])
    df["retries"] = df["retries"].fillna(0).astype(int)
    if incremental:
        assert since is not None
        kept = since[~since["id"].isin(df["id"])]
        df = pd.concat([kept, df] if len(df) else [kept], ignore_index=True)
        df = df.sort_values("number", kind="stable", ignore_index=True)
        count = select(func.count()).select_from(t).where(t.c.study_id == info.id)
        if reader.execute(count)[0][0] != len(df):  # deleted, or committed out of id order
            return trial_points(reader, study, metrics)
    return df


def trials_frame(
    reader: Reader,
    study: str,
    metrics: Sequence[str] = COST_METRICS,
    hover_limit: int = HOVER_GENOTYPE_LIMIT,
    max_points: int | None = None,
    points: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`trial_points` (or the given ``points``) with ``pareto_<metric>`` flags (objective vs.
    that cost, COMPLETE trials), ``drawn`` (why the scatter draws the row, see
    :func:`~dashboards.thin.drawn_reasons`; ``max_points`` None draws every trial with a value),
    and for drawn rows ``arch_hash`` and ``genotype`` hover text (for every drawn row up to
    ``hover_limit`` rows and no thinning, else for Pareto and top-100 rows only)."""
    info = reader.study(study)
    df = (trial_points(reader, study, metrics) if points is None else points).copy()
    complete = (df["state"] == "COMPLETE").to_numpy()
    for metric in metrics:
        df[f"pareto_{metric}"] = pareto_mask(
            df[metric].where(complete), df["value"].where(complete), info.direction
        )
    fronts = [f"pareto_{m}" for m in metrics]
    df["drawn"] = drawn_reasons(df, info.maximize, max_points, fronts)
    drawn = df.index[df["drawn"] != ""]
    hover = drawn
    if len(drawn) > hover_limit or (df["drawn"] == "sample").any():
        ranked = df["value"].rank(ascending=not info.maximize, method="first")
        hover = df.index[(df["drawn"] != "") & (df[fronts].any(axis=1) | (ranked <= 100))]
    df["arch_hash"] = ""
    df["genotype"] = ""
    arch_ids = sorted(set(df.loc[drawn.union(hover), "arch_id"].tolist()))
    if arch_ids:
        found = _architecture_json(reader, arch_ids)
        wanted = set(df.loc[hover, "arch_id"].tolist())
        texts = {k: compact_genotype(g) for k, _, g in found if k in wanted}
        df.loc[drawn, "arch_hash"] = df.loc[drawn, "arch_id"].map({k: h for k, h, _ in found})
        df.loc[hover, "genotype"] = df.loc[hover, "arch_id"].map(texts)
    return df


def _rows_by_id(reader: Reader, id_column: Any, columns: Sequence[Any], ids: Sequence[int]) -> list:
    """``(id, *columns)`` rows for the given ids, read in chunks (SQLite's bound-parameter
    limit)."""
    ids = list(ids)
    out: list = []
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        out += [
            tuple(r)
            for r in reader.execute(select(id_column, *columns).where(id_column.in_(chunk)))
        ]
    return out


def _architecture_json(reader: Reader, arch_ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """(id, hash, genotype JSON) of the given architectures."""
    a = models.architectures
    return _rows_by_id(reader, a.c.id, (a.c.hash, a.c.genotype), arch_ids)


# --- learning curves and rungs --------------------------------------------------------------------
def learning_curves(
    reader: Reader, study: str, key: str = "value", max_trials: int = 200
) -> pd.DataFrame:
    """Intermediate values of up to ``max_trials`` trials: the most recent half and the best half.

    Columns: trial_id, number, state, tag, step, value, stopped (True on the last reported
    step of a PRUNED trial: where the pruner stopped it).
    """
    info = reader.study(study)
    t, iv = models.trials, models.intermediate_values
    half = max(1, max_trials // 2)
    has_curve = select(iv.c.trial_id).where(iv.c.trial_id == t.c.id, iv.c.key == key).exists()
    recent = (
        select(t.c.id)
        .where(t.c.study_id == info.id, has_curve)
        .order_by(t.c.number.desc())
        .limit(half)
    )
    order = t.c.value.desc() if info.maximize else t.c.value.asc()
    best = (
        select(t.c.id)
        .where(t.c.study_id == info.id, t.c.value.is_not(None), has_curve)
        .order_by(order)
        .limit(half)
    )
    chosen = union(recent.subquery().select(), best.subquery().select()).subquery()
    query = (
        select(t.c.id, t.c.number, t.c.state, t.c.tag, iv.c.step, iv.c.value)
        .join(iv, iv.c.trial_id == t.c.id)
        .where(t.c.id.in_(select(chosen.c[0])), iv.c.key == key)
        .order_by(t.c.number, iv.c.step)
    )
    df = _frame(reader.execute(query), ["trial_id", "number", "state", "tag", "step", "value"])
    last = ~df.duplicated("trial_id", keep="last")
    df["stopped"] = last & (df["state"] == "PRUNED")
    return df


def rungs(reader: Reader, study: str) -> pd.DataFrame:
    """Trials of a fidelity ladder (tag ``rung-<k>``): one row per trial.

    Columns: number, arch_hash, rung (int), epochs, budget, state, value.
    """
    info = reader.study(study)
    t, a = models.trials, models.architectures
    query = (
        select(t.c.number, a.c.hash, t.c.tag, t.c.budget, t.c.state, t.c.value)
        .join(a, a.c.id == t.c.architecture_id)
        .where(t.c.study_id == info.id, t.c.tag.like("rung-%"))
        .order_by(t.c.number)
    )
    df = _frame(reader.execute(query), ["number", "arch_hash", "tag", "budget", "state", "value"])
    df["rung"] = pd.to_numeric(df["tag"].str.slice(5), errors="coerce").astype("Int64")
    df["epochs"] = pd.to_numeric(
        df["budget"].map(lambda b: (b or {}).get("epochs")), errors="coerce"
    )
    df["budget"] = df["budget"].map(lambda b: json.dumps(b or {}, sort_keys=True))
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df[["number", "arch_hash", "rung", "epochs", "budget", "state", "value"]]


# --- operator frequency ---------------------------------------------------------------------------
def op_slot(
    space: str, decision: str, space_options: Mapping[str, Any] | None = None
) -> str | None:
    """The edge or layer an operator decision belongs to; ``None`` for non-operator decisions.

    The space says (:meth:`~nasplat.space.SearchSpace.decision_slot`); for a space that is not
    registered here every decision whose name looks like an operator choice is its own slot.
    """
    instance = space_of(space, space_options)
    if instance is None:
        return op_decision_slot(decision)
    return instance.decision_slot(decision)


def _decision_counts(reader: Reader, arch_ids: Any) -> pd.DataFrame:
    """(decision, choice, count) over string-valued decisions of the given architectures,
    aggregated in SQL (SQLite ``json_each``, PostgreSQL ``jsonb_each``) where possible."""
    columns = ["decision", "choice", "count"]
    compiled = arch_ids.compile(reader.engine, compile_kwargs={"literal_binds": True})
    if reader.dialect == "sqlite":
        sql = text(
            "SELECT je.key, je.value, count(*) FROM architectures AS a, "
            "json_each(a.genotype, '$.decisions') AS je "
            f"WHERE a.id IN ({compiled}) AND je.type = 'text' GROUP BY je.key, je.value"
        )
        return _frame(reader.execute(sql), columns)
    if reader.dialect == "postgresql":
        sql = text(
            "SELECT je.key, je.value #>> '{}', count(*) FROM architectures AS a, "
            "jsonb_each(a.genotype::jsonb -> 'decisions') AS je "
            f"WHERE a.id IN ({compiled}) AND jsonb_typeof(je.value) = 'string' "
            "GROUP BY je.key, je.value #>> '{}'"
        )
        return _frame(reader.execute(sql), columns)
    counts: Counter[tuple[str, str]] = Counter()
    rows = reader.execute(
        select(models.architectures.c.genotype).where(models.architectures.c.id.in_(arch_ids))
    )
    for (genotype,) in rows:  # other databases: one pass over the distinct architectures
        for key, value in json.loads(genotype)["decisions"].items():
            if isinstance(value, str):
                counts[(key, value)] += 1
    return pd.DataFrame([(k, v, n) for (k, v), n in counts.items()], columns=columns)


def top_architectures(reader: Reader, info: StudyInfo, top_k: int) -> Any:
    """A SELECT of the ids of the ``top_k`` best distinct architectures (COMPLETE trials)."""
    t = models.trials
    best = (func.max if info.maximize else func.min)(t.c.value)
    return (
        select(t.c.architecture_id)
        .where(t.c.study_id == info.id, t.c.state == "COMPLETE", t.c.value.is_not(None))
        .group_by(t.c.architecture_id)
        .order_by(best.desc() if info.maximize else best.asc(), t.c.architecture_id)
        .limit(top_k)
    )


def op_frequency(reader: Reader, study: str, top_k: int = 20) -> pd.DataFrame:
    """How often each operator is chosen per edge/layer among the top-k architectures and
    among all architectures of the study.

    Columns: group ("top-k" or "all"), slot, op, count, fraction (of the slot's choices in the
    group). Counts are over distinct architectures.
    """
    info = reader.study(study)
    t = models.trials
    everything = select(t.c.architecture_id).where(t.c.study_id == info.id).distinct()
    top = select(top_architectures(reader, info, top_k).subquery().c[0])
    space = space_of(info.space, info.config.get("space_options"))
    slot_of = op_decision_slot if space is None else space.decision_slot
    frames = []
    for group, ids in ((f"top-{top_k}", top), ("all", everything)):
        counts = _decision_counts(reader, ids)
        counts["slot"] = counts["decision"].map(slot_of)
        counts = counts.dropna(subset=["slot"])
        counts = counts.groupby(["slot", "choice"], as_index=False)["count"].sum()
        counts["fraction"] = counts["count"] / counts.groupby("slot")["count"].transform("sum")
        counts.insert(0, "group", group)
        frames.append(counts.rename(columns={"choice": "op"}))
    df = pd.concat(frames, ignore_index=True)
    return df[["group", "slot", "op", "count", "fraction"]]


# --- decisions (parallel categories) --------------------------------------------------------------
def decisions_frame(
    reader: Reader, study: str, limit: int = 3000, max_dims: int = 8
) -> pd.DataFrame:
    """COMPLETE trials (an even sample of at most ``limit``) with one column per decision.

    Columns: number, value, then at most ``max_dims`` decision columns, the ones whose choices
    separate the objective most (spread of the per-choice mean objective), in space order.
    """
    info = reader.study(study)
    t, a = models.trials, models.architectures
    where = [t.c.study_id == info.id, t.c.state == "COMPLETE", t.c.value.is_not(None)]
    total = reader.execute(select(func.count()).select_from(t).where(*where))[0][0]
    step = max(1, -(-total // limit))
    query = (
        select(t.c.number, t.c.value, a.c.genotype)
        .join(a, a.c.id == t.c.architecture_id)
        .where(*where, (t.c.number % step) == 0 if step > 1 else literal(True))
        .order_by(t.c.number)
        .limit(limit)
    )
    rows = reader.execute(query)
    if not rows:
        return pd.DataFrame(columns=["number", "value"])
    decisions = pd.DataFrame([json.loads(g)["decisions"] for _, _, g in rows])
    df = pd.DataFrame({"number": [r[0] for r in rows], "value": [float(r[1]) for r in rows]})
    spread = {}
    for column in decisions.columns:
        choices = decisions[column].astype(str)
        if choices.nunique() < 2:
            continue
        means = df["value"].groupby(choices.to_numpy()).mean()
        spread[column] = float(means.max() - means.min())
    keep = sorted(spread, key=lambda c: -spread[c])[:max_dims]
    ordered = [c for c in decisions.columns if c in keep]
    return pd.concat([df, decisions[ordered].astype(str)], axis=1)


# --- one-shot (DARTS / ENAS) architecture weights ---------------------------------------------------
def arch_weights(reader: Reader, study: str, trial_number: int | None = None) -> pd.DataFrame:
    """Architecture weights per epoch from intermediate values keyed ``alpha.<edge>.<op>``.

    Reads the given trial, or the newest trial of the study that has such keys.
    Columns: number, edge, op, step, weight.
    """
    info = reader.study(study)
    t, iv = models.trials, models.intermediate_values
    is_alpha = iv.c.key.like(ALPHA_PREFIX + "%")
    if trial_number is None:
        found = reader.execute(
            select(t.c.id, t.c.number)
            .where(
                t.c.study_id == info.id,
                select(iv.c.id).where(iv.c.trial_id == t.c.id, is_alpha).exists(),
            )
            .order_by(t.c.number.desc())
            .limit(1)
        )
    else:
        found = reader.execute(
            select(t.c.id, t.c.number).where(t.c.study_id == info.id, t.c.number == trial_number)
        )
    columns = ["number", "edge", "op", "step", "weight"]
    if not found:
        return pd.DataFrame(columns=columns)
    trial_id, number = found[0]
    rows = reader.execute(
        select(iv.c.key, iv.c.step, iv.c.value)
        .where(iv.c.trial_id == trial_id, is_alpha)
        .order_by(iv.c.key, iv.c.step)
    )
    df = _frame(rows, ["key", "step", "weight"])
    parts = df["key"].str.slice(len(ALPHA_PREFIX)).str.rsplit(".", n=1, expand=True)
    df["edge"], df["op"] = (parts[0], parts[1]) if len(parts.columns) == 2 else ("", df["key"])
    df["number"] = number
    return df[columns]


def derived_genotypes(weights: pd.DataFrame, exclude: Sequence[str] = ("none",)) -> pd.DataFrame:
    """The genotype derived at every epoch: per edge, the op with the largest weight (ops in
    ``exclude`` never win, as in DARTS). Columns: step, edge, op, weight."""
    kept = weights[~weights["op"].isin(exclude)]
    if kept.empty:
        return pd.DataFrame(columns=["step", "edge", "op", "weight"])
    idx = kept.groupby(["step", "edge"])["weight"].idxmax()
    out = kept.loc[idx, ["step", "edge", "op", "weight"]]
    return out.sort_values(["step", "edge"]).reset_index(drop=True)


# --- timeline -------------------------------------------------------------------------------------
def timeline(reader: Reader, study: str, points: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trial: number, worker, state, retries, error (of retried trials), start_s and
    end_s in seconds since the study's first trial started (running trials end at the newest
    timestamp). Built from :func:`trial_points` (or the given ``points``)."""
    df = trial_points(reader, study, metrics=()) if points is None else points
    columns = ["number", "worker", "state", "retries", "error", "start_s", "end_s"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    df = df[["id", "number", "worker", "state", "retries", "start_s", "end_s"]].copy()
    origin = df["start_s"].min()
    now = np.nanmax([df["start_s"].max(), df["end_s"].max()])
    df["end_s"] = df["end_s"].fillna(now) - origin
    df["start_s"] = df["start_s"] - origin
    df["worker"] = df["worker"].fillna("local")
    retried = df.loc[df["retries"] > 0, "id"].tolist()
    t = models.trials
    errors = dict(_rows_by_id(reader, t.c.id, (t.c.error,), retried))
    df["error"] = df["id"].map(errors)
    return df[columns].reset_index(drop=True)


def concurrency(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials in flight over time from a :func:`timeline` table. Columns: time_s, running."""
    if frame.empty:
        return pd.DataFrame(columns=["time_s", "running"])
    events = pd.concat(
        [
            pd.DataFrame({"time_s": frame["start_s"], "delta": 1}),
            pd.DataFrame({"time_s": frame["end_s"], "delta": -1}),
        ]
    ).sort_values(["time_s", "delta"], kind="stable")
    events["running"] = events["delta"].cumsum()
    return events.drop_duplicates("time_s", keep="last")[["time_s", "running"]].reset_index(
        drop=True
    )


# --- single trials --------------------------------------------------------------------------------
def best_genotype(reader: Reader, study: str) -> tuple[int, float, Genotype] | None:
    """(number, value, genotype) of the best COMPLETE trial, or ``None``."""
    info = reader.study(study)
    t, a = models.trials, models.architectures
    order = t.c.value.desc() if info.maximize else t.c.value.asc()
    rows = reader.execute(
        select(t.c.number, t.c.value, a.c.genotype)
        .join(a, a.c.id == t.c.architecture_id)
        .where(t.c.study_id == info.id, t.c.state == "COMPLETE", t.c.value.is_not(None))
        .order_by(order, t.c.number)
        .limit(1)
    )
    if not rows:
        return None
    number, value, genotype = rows[0]
    return number, float(value), Genotype.from_json(genotype)


def trial_detail(reader: Reader, study: str, number: int) -> dict[str, Any] | None:
    """One trial: number, state, value, tag, worker, error, budget, genotype (a Genotype),
    metrics and every intermediate series by key (``{key: DataFrame[step, value]}``)."""
    info = reader.study(study)
    t, a = models.trials, models.architectures
    rows = reader.execute(
        select(
            t.c.id,
            t.c.number,
            t.c.state,
            t.c.value,
            t.c.tag,
            t.c.worker,
            t.c.error,
            t.c.budget,
            a.c.genotype,
        )
        .join(a, a.c.id == t.c.architecture_id)
        .where(t.c.study_id == info.id, t.c.number == number)
    )
    if not rows:
        return None
    trial_id, number, state, value, tag, worker, error, budget, genotype = rows[0]
    tv, iv = models.trial_values, models.intermediate_values
    metrics = dict(reader.execute(select(tv.c.key, tv.c.value).where(tv.c.trial_id == trial_id)))
    series = _frame(
        reader.execute(
            select(iv.c.key, iv.c.step, iv.c.value)
            .where(iv.c.trial_id == trial_id)
            .order_by(iv.c.key, iv.c.step)
        ),
        ["key", "step", "value"],
    )
    return {
        "number": number,
        "state": state,
        "value": value,
        "tag": tag,
        "worker": worker,
        "error": error,
        "budget": budget,
        "genotype": Genotype.from_json(genotype),
        "metrics": metrics,
        "series": {
            k: g[["step", "value"]].reset_index(drop=True) for k, g in series.groupby("key")
        },
    }


def study_span(reader: Reader, study: str) -> tuple[float | None, float | None]:
    """Epoch seconds of the study's first trial start and of its newest start or finish."""
    info = reader.study(study)
    t = models.trials
    ends = (func.min(t.c.started_at), func.max(t.c.started_at), func.max(t.c.finished_at))
    row = reader.execute(select(*[_epoch(reader, c) for c in ends]).where(t.c.study_id == info.id))
    first, *newest = _seconds(pd.Series(list(row[0]), dtype=object)).tolist()
    newest = [v for v in newest if not np.isnan(v)]
    return (None if np.isnan(first) else first), (max(newest) if newest else None)


def studies_frame(reader: Reader) -> pd.DataFrame:
    """One row per study: name, space, strategy, objective, direction, trials, complete, pruned,
    failed, running, best (all counted in SQL)."""
    t, s = models.trials, models.studies
    counts = {state: func.sum(case((t.c.state == state, 1), else_=0)) for state in STATE_ORDER}
    query = (
        select(
            s.c.id,
            s.c.name,
            s.c.space,
            s.c.strategy,
            s.c.objectives,
            func.count(t.c.id),
            *[c.label(k.lower()) for k, c in counts.items()],
            func.max(case((t.c.state == "COMPLETE", t.c.value))),
            func.min(case((t.c.state == "COMPLETE", t.c.value))),
        )
        .outerjoin(t, t.c.study_id == s.c.id)
        .group_by(s.c.id)
        .order_by(s.c.id)
    )
    rows = []
    for r in reader.execute(query):
        objective, direction = r[4][0]
        best = None if r[10] is None else Direction.parse(direction).best([r[10], r[11]])
        rows.append(
            {
                "name": r[1],
                "space": r[2],
                "strategy": r[3],
                "objective": objective,
                "direction": direction,
                "trials": int(r[5] or 0),
                **{k.lower(): int(r[6 + i] or 0) for i, k in enumerate(STATE_ORDER)},
                "best": best,
            }
        )
    columns = ["name", "space", "strategy", "objective", "direction", "trials"]
    return pd.DataFrame(rows, columns=[*columns, *(s.lower() for s in STATE_ORDER), "best"])
