"""A progress bar on stderr (rich): done/total, time elapsed and remaining; or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class _Bar:
    def __init__(self, progress: object | None, task: object | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, text: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, status=text)  # type: ignore[attr-defined]


@contextmanager
def progress_bar(
    enabled: bool, *, total: int, completed: int = 0, label: str = ""
) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("elapsed"),
        TimeRemainingColumn(),
        TextColumn("left"),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        task = progress.add_task(label, total=total, completed=completed, status="")
        yield _Bar(progress, task)
