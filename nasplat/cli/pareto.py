"""``nasplat pareto``: the Pareto front of a (multi-objective) study, from the store."""

from __future__ import annotations

from nasplat.cli import cli, emit, format_option, open_store, storage_option
from nasplat.cli.main import study_option


@cli.command("pareto")
@study_option
@storage_option
@format_option
def pareto(study: str, storage: str | None, fmt: str) -> None:
    """List the non-dominated trials of a study over all its objectives."""
    from nasplat.pareto import study_pareto_front

    store = open_store(storage, create=False)
    record = store.get_study(study)
    names = [metric for metric, _ in record.objectives]
    rows = [
        {
            "number": t.number,
            **{name: t.metrics.get(name) for name in names},
            "genotype": t.genotype.to_json() if fmt != "table" else t.genotype.sha[:10],
        }
        for t in study_pareto_front(store, study)
    ]
    emit(rows, fmt, ["number", *names, "genotype"])
