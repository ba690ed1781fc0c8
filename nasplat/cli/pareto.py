"""``nasplat pareto``: the Pareto front of a (multi-objective) study, from the store."""

from __future__ import annotations

import click

from nasplat.cli import cli, emit, format_option, open_store, storage_option
from nasplat.cli.main import study_option
from nasplat.cli.search_flags import shown


@cli.command("pareto")
@study_option
@shown(
    "--reference-point",
    show_default="the study's",
    help="Measure the hypervolume against this point (one value per objective, comma list).",
)
@storage_option
@format_option
def pareto(study: str, reference_point: str | None, storage: str | None, fmt: str) -> None:
    """List the non-dominated trials of a study over all its objectives; the front's
    hypervolume and its reference point go to stderr."""
    from nasplat.config import parse_reference_point
    from nasplat.pareto import (
        HYPERVOLUME,
        hypervolume,
        orient,
        oriented_point,
        study_pareto_front,
        study_reference,
    )

    store = open_store(storage, create=False)
    record = store.get_study(study)
    names = [metric for metric, _ in record.objectives]
    reference = (
        study_reference(record.config)
        if reference_point is None
        else parse_reference_point(reference_point, names)
    )
    front = study_pareto_front(store, study)
    rows = [
        {
            "number": t.number,
            **{name: t.metrics.get(name) for name in names},
            HYPERVOLUME: t.metrics.get(HYPERVOLUME),
            "genotype": t.genotype.to_json() if fmt != "table" else t.genotype.sha[:10],
        }
        for t in front
    ]
    shown = [HYPERVOLUME] if len(names) > 1 else []
    emit(rows, fmt, ["number", *names, *shown, "genotype"])
    if len(names) > 1 and reference is not None:
        points = [oriented_point(t.metrics, record.objectives) for t in front]
        volume = hypervolume([p for p in points if p], orient(reference, record.objectives))
        where = ", ".join(f"{n}={v:g}" for n, v in zip(names, reference, strict=True))
        click.echo(
            f"hypervolume {volume:.6g} of {len(front)} non-dominated trial(s); "
            f"reference point {where}",
            err=True,
        )
