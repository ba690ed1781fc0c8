"""The live trial table's data: rows of a study's trials, sorted and filtered in SQL.

The table (AG Grid's infinite row model, paged) asks for rows ``start`` to ``end`` with its sort
and filter models; the database sorts, filters (with bound parameters) and counts, so the
browser only ever holds a page. Filter models are AG Grid's: per column a number filter
(``equals notEqual lessThan lessThanOrEqual greaterThan greaterThanOrEqual inRange blank
notBlank``) or a text filter (``contains notContains equals notEqual startsWith endsWith blank
notBlank``, case-insensitive), or two of them joined by ``operator`` AND/OR.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, func, literal_column, or_, select

from dashboards.db import Reader
from nasplat.errors import NasplatError
from nasplat.store import models

NUMERIC_COLUMNS = ("number", "value", "params", "flops", "latency_ms", "duration_s", "retries")
COLUMNS = (
    "number",
    "state",
    "value",
    "params",
    "flops",
    "latency_ms",
    "duration_s",
    "tag",
    "worker",
    "retries",
    "arch",
    "error",
)


class FilterError(NasplatError):
    """A filter the table cannot turn into SQL."""


def _columns(reader: Reader) -> tuple[Any, dict[str, ColumnElement[Any]]]:
    t, a = models.trials, models.architectures
    metrics = {m: models.trial_values.alias() for m in ("params", "flops", "latency_ms")}
    if reader.dialect == "sqlite":
        duration = (func.julianday(t.c.finished_at) - func.julianday(t.c.started_at)) * 86400.0
    elif reader.dialect == "postgresql":
        duration = func.extract("epoch", t.c.finished_at - t.c.started_at)
    else:
        duration = literal_column("NULL")
    columns: dict[str, ColumnElement[Any]] = {
        "number": t.c.number,
        "state": t.c.state,
        "value": t.c.value,
        **{m: alias.c.value for m, alias in metrics.items()},
        "duration_s": duration,
        "tag": t.c.tag,
        "worker": t.c.worker,
        "retries": t.c.retries,
        "arch": func.substr(a.c.hash, 1, 12),
        "error": t.c.error,
    }
    source = t.join(a, a.c.id == t.c.architecture_id)
    for m, alias in metrics.items():
        source = source.outerjoin(alias, and_(alias.c.trial_id == t.c.id, alias.c.key == m))
    return source, columns


NUMBER_FILTERS = {
    "equals": lambda c, v: c == v,
    "notEqual": lambda c, v: or_(c != v, c.is_(None)),
    "lessThan": lambda c, v: c < v,
    "lessThanOrEqual": lambda c, v: c <= v,
    "greaterThan": lambda c, v: c > v,
    "greaterThanOrEqual": lambda c, v: c >= v,
}
TEXT_FILTERS = {
    "contains": lambda c, v: func.lower(c).contains(v, autoescape=True),
    "notContains": lambda c, v: or_(~func.lower(c).contains(v, autoescape=True), c.is_(None)),
    "equals": lambda c, v: func.lower(c) == v,
    "notEqual": lambda c, v: or_(func.lower(c) != v, c.is_(None)),
    "startsWith": lambda c, v: func.lower(c).startswith(v, autoescape=True),
    "endsWith": lambda c, v: func.lower(c).endswith(v, autoescape=True),
}


def _number(value: Any, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FilterError(f"column {column!r} needs a number, got {value!r}") from None
    if number != number:
        raise FilterError(f"column {column!r} needs a number, got {value!r}")
    return number


def _one_condition(name: str, column: ColumnElement[Any], spec: dict[str, Any]) -> Any:
    kind = spec.get("type", "")
    if kind == "blank":
        return column.is_(None)
    if kind == "notBlank":
        return column.is_not(None)
    if name in NUMERIC_COLUMNS:
        if kind == "inRange":
            low, high = _number(spec.get("filter"), name), _number(spec.get("filterTo"), name)
            return column.between(min(low, high), max(low, high))
        if kind not in NUMBER_FILTERS:
            raise FilterError(f"unknown number filter {kind!r} on column {name!r}")
        return NUMBER_FILTERS[kind](column, _number(spec.get("filter"), name))
    if kind not in TEXT_FILTERS:
        raise FilterError(f"unknown text filter {kind!r} on column {name!r}")
    return TEXT_FILTERS[kind](column, str(spec.get("filter", "")).lower())


def filter_conditions(
    model: dict[str, Any] | None, columns: dict[str, ColumnElement[Any]]
) -> list[Any]:
    """SQL conditions (all to hold) for an AG Grid filter model over ``columns``; a
    FilterError names an unknown column or filter, or a number filter given no number."""
    out = []
    for name, spec in (model or {}).items():
        if name not in columns:
            raise FilterError(f"unknown column {name!r} in filter")
        if "conditions" in spec:
            parts = [_one_condition(name, columns[name], c) for c in spec["conditions"]]
            out.append((or_ if spec.get("operator") == "OR" else and_)(*parts))
        else:
            out.append(_one_condition(name, columns[name], spec))
    return out


def trial_rows(
    reader: Reader,
    study: str,
    start: int = 0,
    end: int = 25,
    sort_model: Sequence[dict[str, str]] = (),
    filter_model: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Rows ``start`` to ``end`` (excluded) of the study's trials (columns :data:`COLUMNS`) in
    the order of ``sort_model`` (``[{"colId": ..., "sort": "asc"|"desc"}]``, then by number)
    and filtered by ``filter_model``, and the number of matching rows."""
    info = reader.study(study)
    source, columns = _columns(reader)
    t = models.trials
    where = [t.c.study_id == info.id, *filter_conditions(filter_model, columns)]
    order = []
    for spec in sort_model or ():
        column = columns.get(spec.get("colId", ""))
        if column is not None:
            order.append(column.desc() if spec.get("sort") == "desc" else column.asc())
    order.append(t.c.number.asc())
    counted = source if filter_model else t  # the outer joins add no rows
    total = reader.execute(select(func.count()).select_from(counted).where(*where))[0][0]
    start = max(0, int(start))
    query = (
        select(*[c.label(name) for name, c in columns.items()])
        .select_from(source)
        .where(*where)
        .order_by(*order)
        .limit(max(0, int(end) - start))
        .offset(start)
    )
    frame = pd.DataFrame([tuple(r) for r in reader.execute(query)], columns=list(columns))
    return frame, int(total)
