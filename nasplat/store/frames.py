"""Trials as a pandas DataFrame (pandas is imported when asked for)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasplat.store.records import TrialRecord


def trials_frame(trials: Sequence[TrialRecord]) -> Any:
    """One row per trial: number, state, value, genotype, budget, timestamps, worker, error,
    one ``params_<decision>`` column per decision (as Optuna's) and one ``metric_<name>``
    column per metric."""
    import pandas as pd

    rows = []
    for t in trials:
        row = {
            "number": t.number,
            "state": t.state,
            "value": t.value,
            "arch_hash": t.arch_hash,
            "genotype": t.genotype.to_json(),
            "budget": t.budget,
            "tag": t.tag,
            "started_at": t.started_at,
            "finished_at": t.finished_at,
            "duration_s": t.duration,
            "worker": t.worker,
            "retries": t.retries,
            "error": t.error,
        }
        row.update({f"params_{k}": v for k, v in t.genotype.items()})
        row.update({f"metric_{k}": v for k, v in sorted(t.metrics.items())})
        rows.append(row)
    return pd.DataFrame(rows)
