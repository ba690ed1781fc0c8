"""The live trial table's data: one page of a study's trials, sorted and filtered in SQL.

The Dash ``DataTable`` runs with custom paging, sorting and filtering, so the browser only ever
holds one page, and the database does the sorting and filtering with bound parameters. Filter
strings follow the DataTable's syntax: ``{column} op value`` terms joined by ``&&``, with op one
of ``= != < <= > >= eq ne lt le gt ge contains datestartswith`` (``i``/``s`` prefixes for case
(in)sensitivity are accepted); a value alone (``{state} COMPLETE``) means equality for numbers
and ``contains`` for text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, func, literal_column, select
from sqlalchemy.orm import aliased

from dashboards.db import Reader
from nasplat.errors import NasplatError
from nasplat.store.models import ArchitectureRow, TrialRow, TrialValueRow

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
_TERM = re.compile(
    r"^\s*\{(?P<col>[^}]+)\}\s*"
    r"(?P<op>(?:[is])?(?:contains|datestartswith|eq|ne|lt|le|gt|ge)\b|[is]?(?:<=|>=|!=|=|<|>))?"
    r"\s*(?P<value>.*?)\s*$"
)
_OPS = {"=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


class FilterError(NasplatError):
    """A filter the table cannot turn into SQL."""


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1]
    return text


def parse_filter(query: str | None) -> list[tuple[str, str, str | float]]:
    """``{col} op value && ...`` as (column, op, value) terms; op one of eq ne lt le gt ge
    contains startswith. Unknown columns or operators raise FilterError."""
    terms: list[tuple[str, str, str | float]] = []
    for part in (query or "").split("&&"):
        if not part.strip():
            continue
        match = _TERM.match(part)
        if match is None:
            raise FilterError(f"cannot read filter term {part.strip()!r}")
        column, op, raw = match.group("col").strip(), match.group("op") or "", match.group("value")
        if column not in COLUMNS:
            raise FilterError(f"unknown column {column!r} in filter")
        op = (
            op[1:]
            if op[:1] in "is" and op[1:] in (*_OPS, *_OPS.values(), "contains", "datestartswith")
            else op
        )
        op = _OPS.get(op, op) or ("eq" if column in NUMERIC_COLUMNS else "contains")
        if op == "datestartswith":
            op = "startswith"
        raw = _unquote(raw)
        value: str | float = raw
        if column in NUMERIC_COLUMNS:
            try:
                value = float(raw)
            except ValueError:
                raise FilterError(f"column {column!r} needs a number, got {raw!r}") from None
        terms.append((column, op, value))
    return terms


def _columns(reader: Reader) -> tuple[Any, dict[str, ColumnElement[Any]]]:
    t, a = TrialRow, ArchitectureRow
    metrics = {m: aliased(TrialValueRow) for m in ("params", "flops", "latency_ms")}
    if reader.dialect == "sqlite":
        duration = (func.julianday(t.finished_at) - func.julianday(t.started_at)) * 86400.0
    elif reader.dialect == "postgresql":
        duration = func.extract("epoch", t.finished_at - t.started_at)
    else:
        duration = literal_column("NULL")
    columns: dict[str, ColumnElement[Any]] = {
        "number": t.number,
        "state": t.state,
        "value": t.value,
        **{m: alias.value for m, alias in metrics.items()},
        "duration_s": duration,
        "tag": t.tag,
        "worker": t.worker,
        "retries": t.retries,
        "arch": func.substr(a.hash, 1, 12),
        "error": t.error,
    }
    source = t.__table__.join(a, a.id == t.architecture_id)
    for m, alias in metrics.items():
        source = source.outerjoin(alias, and_(alias.trial_id == t.id, alias.key == m))
    return source, columns


def _condition(column: ColumnElement[Any], op: str, value: str | float) -> ColumnElement[Any]:
    if op == "contains":
        return func.lower(column).contains(str(value).lower(), autoescape=True)
    if op == "startswith":
        return func.lower(column).startswith(str(value).lower(), autoescape=True)
    return {
        "eq": column == value,
        "ne": column != value,
        "lt": column < value,
        "le": column <= value,
        "gt": column > value,
        "ge": column >= value,
    }[op]


def trial_page(
    reader: Reader,
    study: str,
    page: int = 0,
    page_size: int = 25,
    sort_by: Sequence[dict[str, str]] = (),
    filter_query: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """One page of the study's trials (columns :data:`COLUMNS`) and the number of matching rows."""
    info = reader.study(study)
    source, columns = _columns(reader)
    where = [TrialRow.study_id == info.id]
    for column, op, value in parse_filter(filter_query):
        where.append(_condition(columns[column], op, value))
    order = []
    for spec in sort_by or ():
        column = columns.get(spec.get("column_id", ""))
        if column is not None:
            order.append(column.desc() if spec.get("direction") == "desc" else column.asc())
    order.append(TrialRow.number.asc())
    total = reader.execute(select(func.count()).select_from(source).where(*where))[0][0]
    query = (
        select(*[c.label(name) for name, c in columns.items()])
        .select_from(source)
        .where(*where)
        .order_by(*order)
        .limit(page_size)
        .offset(max(0, page) * page_size)
    )
    frame = pd.DataFrame([tuple(r) for r in reader.execute(query)], columns=list(columns))
    return frame, int(total)
