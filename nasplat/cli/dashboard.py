"""``nasplat dashboard``: a static HTML report of a study, or the live dashboard server."""

from __future__ import annotations

import click

from nasplat.cli import cli, storage_option
from nasplat.errors import NasplatError


def _need_plotly(serve: bool) -> None:
    modules = ("plotly", "dash") if serve else ("plotly",)
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            raise NasplatError(
                f"the dashboard needs {module}: pip install 'nasplat[dashboard]'"
            ) from None


@cli.command()
@click.option("--study", default=None, help="Study to report on (with --out).")
@click.option("--out", default=None, help="Write a self-contained HTML report to this file.")
@click.option(
    "--compare", multiple=True, help="Other studies on the best-so-far figure (repeatable)."
)
@click.option(
    "--top-k",
    type=int,
    default=20,
    show_default=True,
    help="Top architectures for the operator heatmap.",
)
@click.option("--serve", is_flag=True, help="Run the live dashboard server.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (with --serve)."
)
@click.option("--port", type=int, default=8050, show_default=True, help="Port (with --serve).")
@click.option(
    "--refresh",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between refreshes (with --serve).",
)
@storage_option
def dashboard(
    study: str | None,
    out: str | None,
    compare: tuple[str, ...],
    top_k: int,
    serve: bool,
    host: str,
    port: int,
    refresh: float,
    storage: str | None,
) -> None:
    """Write a study's HTML report (--study S --out FILE) or serve the live dashboard (--serve)."""
    if serve == bool(out):
        raise click.UsageError(
            "give either --study S --out FILE (a report) or --serve (the live dashboard)"
        )
    if top_k < 1 or refresh <= 0:
        raise click.UsageError("--top-k must be >= 1 and --refresh > 0")
    _need_plotly(serve)
    if serve:
        from dashboards.app import create_app

        app = create_app(storage, refresh_s=refresh, top_k=top_k)
        click.echo(f"nasplat dashboard on http://{host}:{port}/ (Ctrl+C stops it)", err=True)
        app.run(host=host, port=port, debug=False)
        return
    if not study:
        raise click.UsageError("--out needs --study")
    from dashboards.db import Reader
    from dashboards.report import write_report

    reader = Reader(storage)
    try:
        reader.study(study)
        for name in compare:
            reader.study(name)
        path = write_report(reader, study, out, compare=compare, top_k=top_k)
    finally:
        reader.close()
    click.echo(str(path))
