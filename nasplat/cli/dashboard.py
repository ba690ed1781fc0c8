"""``nasplat dashboard``: a static HTML report of a study, or the live dashboard server."""

from __future__ import annotations

import math

import click

from dashboards.limits import MAX_POINTS
from nasplat.cli import cli, storage_option
from nasplat.cli.main import STOP_SIGNALS, stopped_line
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


def _stop_at_once() -> None:
    """SIGINT, SIGTERM and SIGHUP stop the server at once, with the one line and the exit
    status of any stopped command: its handler threads may hold a browser's connections open,
    and a graceful close would wait for them. The server only reads: nothing to clean up."""
    import os
    import signal
    import sys
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: object) -> None:
        line, code = stopped_line(signum)
        click.echo(line, err=True)
        sys.stderr.flush()
        os._exit(code)

    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, handler)


@cli.command()
@click.option(
    "--study",
    default=None,
    help="Study to report on (with --out; default: every study of the store, one section each).",
)
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
@click.option(
    "--max-points",
    type=click.IntRange(min=0),
    default=MAX_POINTS,
    show_default=True,
    help="Trials a scatter draws before it is thinned to the Pareto front, the top trials and "
    "an even sample (0: every trial, and the timeline a bar per trial however many).",
)
@click.option("--serve", is_flag=True, help="Run the live dashboard server.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (with --serve)."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8050,
    show_default=True,
    help="Port (with --serve).",
)
@click.option(
    "--refresh",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between refreshes (with --serve).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve a non-loopback --host without a token (anyone who reaches it can read the store).",
)
@storage_option
def dashboard(
    study: str | None,
    out: str | None,
    compare: tuple[str, ...],
    top_k: int,
    max_points: int,
    serve: bool,
    host: str,
    port: int,
    refresh: float,
    no_auth: bool,
    storage: str | None,
) -> None:
    """Write an HTML report (--out FILE: every study, or --study S) or serve the live
    dashboard (--serve)."""
    if serve == bool(out):
        raise click.UsageError(
            "give either --out FILE [--study S] (a report) or --serve (the live dashboard)"
        )
    if top_k < 1 or not math.isfinite(refresh) or refresh <= 0:
        raise click.UsageError("--top-k must be >= 1 and --refresh a number > 0")
    _need_plotly(serve)
    if serve:
        from dashboards.app import create_app
        from dashboards.auth import is_loopback, new_token

        token = None if is_loopback(host) or no_auth else new_token()
        app = create_app(
            storage, refresh_s=refresh, top_k=top_k, token=token, max_points=max_points or None
        )
        shown = f"[{host}]" if ":" in host else host
        address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
        if no_auth and not is_loopback(host):
            click.echo(
                f"nasplat: warning: --no-auth: the dashboard on {host} is open to anyone who "
                "can reach it, with everything in the store",
                err=True,
            )
        click.echo(f"nasplat dashboard on {address} (Ctrl+C stops it)", err=True)
        _stop_at_once()
        app.run(host=host, port=port, debug=False)
        return
    from dashboards.db import Reader
    from dashboards.report import write_report

    reader = Reader(storage)
    try:
        studies = [study] if study else reader.study_names()
        if not studies:
            raise NasplatError(f"no study in {reader.safe_url}: nothing to report")
        for name in (*studies, *compare):
            reader.study(name)
        path = write_report(
            reader, studies, out, compare=compare, top_k=top_k, max_points=max_points or None
        )
    finally:
        reader.close()
    click.echo(str(path))
