"""The run layer: study set-up, the one trial loop, its drivers (black-box, one-shot, fidelity
ladder) and the executors (``local``, ``ray``).

A search runs as: :func:`prepare` (validate, then create or open the study) ->
:func:`drive` (pick the driver) -> :class:`TrialLoop` over an explicit :class:`LoopContext`.
"""

from nasplat.run.loop import FixedProposals, LoopContext, TrialLoop
from nasplat.run.search import SearchResult, drive, run_search
from nasplat.run.study import OpenLater, StudyRun, allocate_name, prepare

__all__ = [
    "FixedProposals",
    "LoopContext",
    "OpenLater",
    "SearchResult",
    "StudyRun",
    "TrialLoop",
    "allocate_name",
    "drive",
    "prepare",
    "run_search",
]
