"""Listings on stdout: a table that fits the terminal, a JSON array, or CSV."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

import click

PIPE_WIDTH = 200
"""Table width when stdout is no terminal and ``COLUMNS`` is unset (a pager, a file)."""
MIN_SQUEEZED = 12
"""A shortened column keeps at least this many characters."""


def emit(
    rows: list[dict[str, Any]],
    fmt: str,
    columns: list[str] | None = None,
    *,
    squeeze: tuple[str, ...] = (),
    caption: str = "",
) -> None:
    """Print rows as a table (``squeeze``: long columns shortened with "…" to fit the
    terminal; columns empty in every row left out; ``caption`` below it), a JSON array, or CSV
    with every column."""
    columns = columns or (list(rows[0]) if rows else [])
    if fmt == "json":
        click.echo(
            json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=2, default=str)
        )
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(
            sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c)) for c in columns})
    else:
        cells = [[_cell(row.get(c)) for c in columns] for row in rows]
        print_table(cells, columns, squeeze, caption)


def terminal_width() -> int:
    """``COLUMNS``, else the terminal's width, else :data:`PIPE_WIDTH`."""
    return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns


def print_table(
    cells: list[list[str]], columns: list[str], squeeze: tuple[str, ...], caption: str = ""
) -> None:
    from rich.console import Console
    from rich.table import Table

    keep = [i for i, c in enumerate(columns) if not cells or any(row[i] for row in cells)]
    width = terminal_width()
    natural = {i: max([len(columns[i]), *(len(row[i]) for row in cells)]) for i in keep}
    squeezed = [i for i in keep if columns[i] in squeeze]
    frame = 3 * len(keep) + 1  # borders and padding
    spare = width - frame - sum(natural[i] for i in keep if i not in squeezed)
    share = max(MIN_SQUEEZED, spare // len(squeezed)) if squeezed else 0
    table = Table(caption=caption or None, caption_justify="left")
    for i in keep:
        if i in squeezed:
            table.add_column(columns[i], no_wrap=True, overflow="ellipsis", max_width=share)
        else:
            table.add_column(columns[i], overflow="fold")
    for row in cells:
        table.add_row(*(row[i] for i in keep))
    Console(width=width, markup=False).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)
