"""A progress bar on stderr (rich): done/total, time elapsed and remaining; or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any


class _Bar:
    def __init__(self, progress: object | None, task: object | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, text: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, status=text)  # type: ignore[attr-defined]

    def set_total(self, total: int) -> None:
        """A new total (a time limit re-planned the steps), so the time left counts those."""
        if self._progress is not None:
            self._progress.update(self._task, total=total)  # type: ignore[attr-defined]


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
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class TimeRemaining(ProgressColumn):
        """Time left at the mean pace of the steps done since the bar started. (rich's own
        column estimates from the steps of the last 30 s, so epochs of minutes never show
        one.)"""

        def render(self, task: Any) -> Text:
            done = task.completed - task.fields["first"]
            if done <= 0 or not task.elapsed or task.total is None:
                return Text("-:--:--", style="progress.remaining")
            left = task.elapsed / done * max(task.total - task.completed, 0)
            return Text(str(timedelta(seconds=round(left))), style="progress.remaining")

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("elapsed"),
        TimeRemaining(),
        TextColumn("left"),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        task = progress.add_task(
            label, total=total, completed=completed, status="", first=completed
        )
        yield _Bar(progress, task)
