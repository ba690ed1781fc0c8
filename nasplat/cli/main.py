"""The ``nasplat`` command line.

Data goes to stdout, logs and progress bars to stderr. Bad input (unknown names, missing
files, malformed genotypes or configs, bad storage URLs) prints one line and exits with 2.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from nasplat.cli.output import emit
from nasplat.cli.search_flags import search_flags, search_settings, shown
from nasplat.config import SearchConfig, parse_option_pairs
from nasplat.errors import NasplatError

log = logging.getLogger("nasplat")
EXIT_BAD_INPUT = 2

storage_option = shown(
    "--storage",
    show_default="$NASPLAT_STORAGE, else sqlite:///nasplat.db",
    help="Where studies are stored: any SQLAlchemy URL.",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="A table that fits the terminal, a JSON array or CSV (every column).",
)
study_option = click.option("--study", required=True, help="The study (see nasplat studies).")
data_dir_option = shown(
    "--data-dir", show_default="the dataset's own", help="Folder with the dataset's files."
)
device_option = click.option(
    "--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."
)


LOG_FILE_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"


def setup_logging(verbosity: int, log_file: str | None = None) -> None:
    """Log records on stderr (data goes to stdout): Rich's handler on a terminal, plain
    ``LEVEL    message`` lines otherwise (pipes and files get whole lines, and a search's
    per-trial lines cost microseconds, not milliseconds). ``log_file``: every record, DEBUG
    included and whatever ``verbosity`` says, also appended there with its timestamp."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=Console(stderr=True),
            show_path=False,
            show_time=False,
            markup=False,
            rich_tracebacks=False,
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
    handler.setLevel(level)
    handlers = [handler, *([open_log_file(log_file)] if log_file else [])]
    root = logging.getLogger("nasplat")
    for old in root.handlers:
        old.close()
    root.handlers[:] = handlers
    root.setLevel(min(h.level for h in handlers))
    root.propagate = False


def open_log_file(path: str) -> logging.Handler:
    """A handler appending every record to ``path`` with its time (one line when it cannot)."""
    try:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError as exc:
        raise NasplatError(f"cannot write log file {path}: {exc.strerror or exc}") from None
    handler.setFormatter(logging.Formatter(LOG_FILE_FORMAT))
    handler.setLevel(logging.DEBUG)
    return handler


def open_store(url: str | None, *, create: bool = True) -> Any:
    """The store at ``url``, closed when the command ends (also when it fails). Commands that
    only read pass ``create=False``: they never create a store, nor change one."""
    from nasplat.store import open_store as open_any

    store = open_any(url, create=create)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(store.close)
    return store


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@shown(
    "--log-file",
    metavar="PATH",
    show_default="none",
    help="Also append every log record (DEBUG too) with its timestamp to PATH.",
)
@click.version_option(package_name="nasplat")
def cli(verbose: int, quiet: bool, log_file: str | None) -> None:
    """nasplat: neural architecture search with a SQL trial store."""
    setup_logging(-1 if quiet else verbose, log_file)


# --- search ---------------------------------------------------------------------------------
@cli.command()
@search_flags
@storage_option
def search(**kw: Any) -> None:
    """Run (or resume) a search and print the best architecture."""
    from nasplat.run import OpenLater, run_search
    from nasplat.store import resolve_storage_url

    settings = search_settings(kw)
    config = SearchConfig.from_dict(settings)
    if config.budget < 1:
        raise NasplatError(f"budget must be >= 1 trial, got {config.budget}")
    # a budget given on resume (flag or config file) is the study's new total; else it keeps its own
    override = ("budget",) if "budget" in settings else ()
    url = kw["storage"]
    if kw["resume"]:
        open_store(url, create=False)  # a study to resume needs a store: none is created
    # opened once the config has passed every check
    later = OpenLater(resolve_storage_url(url), lambda: open_store(url))
    result = run_search(
        config, later, resume=kw["resume"], override=override, progress=not kw["no_progress"]
    )
    log.info("study %s: %d trial(s) run in this session", result.study.name, result.trials_run)
    if result.best is None and result.derived is not None:
        print_derived(result.derived, result.study)
        return
    if result.best is None:
        raise NasplatError(f"study {result.study.name!r} has no completed trial")
    print_best(result.best, result.study)


def study_space(study: Any) -> Any:
    """The search space of a study record, built with its stored options."""
    from nasplat.registry import SPACES, load_spaces

    load_spaces()
    return SPACES.get(study.space)(**study.config.get("space_options", {}))


def print_derived(genotype: Any, study: Any) -> None:
    """A one-shot search's genotype that was not retrained (``--retrain-epochs 0``)."""
    space = study_space(study)
    click.echo(f"derived genotype of study {study.name} (not retrained):")
    click.echo(f"genotype: {genotype.to_json()}")
    click.echo(f"notation: {space.to_notation(genotype)}")


def print_best(best: Any, study: Any) -> None:
    space = study_space(study)
    click.echo(
        f"best trial {best.number} of study {study.name}: {study.objective}={best.value:.4f}"
    )
    click.echo(f"genotype: {best.genotype.to_json()}")
    notation = space.to_notation(best.genotype)
    if notation != best.genotype.to_json():
        click.echo(f"notation: {notation}")
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(best.metrics.items()))
    click.echo(f"metrics: {metrics}")


# --- listings -------------------------------------------------------------------------------
@cli.command()
@storage_option
@format_option
def studies(storage: str | None, fmt: str) -> None:
    """List the studies in the store."""
    emit(open_store(storage, create=False).list_studies(), fmt)


@cli.command()
@study_option
@shown(
    "--state",
    type=click.Choice(["RUNNING", "COMPLETE", "PRUNED", "FAILED", "INTERRUPTED"]),
    show_default="every state",
    help="Only the trials in this state.",
)
@storage_option
@format_option
def trials(study: str, state: str | None, storage: str | None, fmt: str) -> None:
    """List a study's trials. The table shows each architecture's hash and a short readable
    form (the space's notation, shortened to fit the terminal); JSON and CSV the genotype JSON,
    metrics and budget."""
    store = open_store(storage, create=False)
    record = store.get_study(study)
    table = fmt == "table"
    summary = architecture_summary(record) if table else None
    rows = []
    for t in store.trials(study, states=[state] if state else None):
        rows.append(
            {
                "number": t.number,
                "state": t.state,
                record.objective: t.value,
                **({"params": t.metrics["params"]} if "params" in t.metrics else {}),
                "seconds": t.duration,
                "tag": t.tag,
                "worker": t.worker,
                "error": t.error,
                "genotype": t.genotype.sha[:10] if table else t.genotype.to_json(),
                "architecture": summary(t.genotype) if summary else None,
                "metrics": None if table else t.metrics,
                "budget": None if table else t.budget,
            }
        )
    columns = ["number", "state", record.objective, "params", "seconds", "tag", "worker", "error"]
    columns += ["genotype", "architecture"] if table else ["genotype", "metrics", "budget"]
    emit(rows, fmt, columns, squeeze=("architecture",))


def architecture_summary(record: Any) -> Any:
    """The study space's ``summary`` of a genotype, or None when the space cannot be built in
    this process (a plugin that is not installed here): the table then shows hashes only."""
    try:
        return study_space(record).summary
    except NasplatError as exc:
        log.warning("architectures shown by hash only: %s", exc)
        return None


@cli.command()
@study_option
@storage_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Lines of text, or one JSON object.",
)
def best(study: str, storage: str | None, fmt: str) -> None:
    """Print the best architecture of a study (genotype JSON and metrics)."""
    store = open_store(storage, create=False)
    record = store.get_study(study)
    trial = store.best_trial(study)
    if fmt == "json":
        space = study_space(record)
        click.echo(
            json.dumps(
                {
                    "study": record.name,
                    "trial": trial.number,
                    "objective": record.objective,
                    "direction": record.direction,
                    "value": trial.value,
                    "genotype": trial.genotype.to_dict(),
                    "space_options": record.config.get("space_options", {}),
                    "notation": space.to_notation(trial.genotype),
                    "metrics": trial.metrics,
                    "budget": trial.budget,
                },
                indent=2,
            )
        )
    else:
        print_best(trial, record)


class ExportFormat(click.Choice):
    """``all``, ``json``, ``torchscript``, ``onnx`` or a space's notation format, asked of the
    registered spaces (loaded only when the option is parsed or its help shown)."""

    def __init__(self) -> None:
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        from nasplat.run.export import export_formats

        return export_formats()

    @choices.setter
    def choices(self, value: Any) -> None:
        pass


@cli.command()
@study_option
@click.option("--out", "out_dir", required=True, help="Folder to write the files to.")
@click.option(
    "--format",
    "fmt",
    type=ExportFormat(),
    default="all",
    show_default=True,
    help="all (genotype, notation, metrics, weights, TorchScript), json, torchscript, onnx "
    "(needs the onnx extra), or the study's space's notation format (e.g. darts for cell).",
)
@click.option("--force", is_flag=True, help="Overwrite existing files in --out.")
@storage_option
def export(study: str, out_dir: str, fmt: str, force: bool, storage: str | None) -> None:
    """Export the best architecture: genotype JSON, notation, weights, TorchScript or ONNX.
    Exported models are checked against PyTorch on random inputs before anything is written;
    existing files are kept unless --force."""
    from nasplat.run.export import export_best

    store = open_store(storage, create=False)
    for path in export_best(store, study, out_dir, fmt, force=force):
        click.echo(path)


@cli.command()
@click.option(
    "--genotype", "genotype_text", required=True, help="Genotype JSON, a file, or a space notation."
)
@click.option("--space", default=None, help="Space of a notation string (cell, nb201, ...).")
@click.option("--dataset", default="digits", show_default=True, help="Dataset to train on.")
@data_dir_option
@click.option("--epochs", type=int, default=10, show_default=True, help="Training epochs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--study", default=None, help="Study to store the trial in (default: train-SPACE).")
@click.option("--evaluator-opt", multiple=True, help="Evaluator option key=value (repeatable).")
@click.option("--space-opt", multiple=True, help="Space option key=value (repeatable).")
@device_option
@storage_option
def train(**kw: Any) -> None:
    """Train one architecture from scratch and store it as a trial."""
    from nasplat.cli.train import train_one

    store = open_store(kw["storage"])
    trial, study = train_one(
        store,
        genotype_text=kw["genotype_text"],
        space=kw["space"],
        dataset=kw["dataset"],
        data_dir=kw["data_dir"],
        epochs=kw["epochs"],
        seed=kw["seed"],
        study=kw["study"],
        device=kw["device"],
        evaluator_options=parse_option_pairs(kw["evaluator_opt"], "--evaluator-opt"),
        space_options=parse_option_pairs(kw["space_opt"], "--space-opt"),
    )
    if trial.state != "COMPLETE":
        raise NasplatError(f"training failed: {trial.error}")
    print_best(trial, study)


@cli.command(name="list")
@click.argument(
    "kind",
    type=click.Choice(
        ["ops", "spaces", "strategies", "evaluators", "datasets", "executors", "options"]
    ),
)
@click.argument("name", required=False)
@format_option
def list_cmd(kind: str, name: str | None, fmt: str) -> None:
    """List what a registry holds, or (`list options NAME`) the options of a space, strategy,
    evaluator or executor: type, default and description."""
    from nasplat.cli.listing import option_rows, registry_rows

    if kind != "options":
        if name is not None:
            raise NasplatError(f"only `list options` takes a NAME, not `list {kind}`")
        emit(registry_rows(kind), fmt)
        return
    if name is None:
        raise NasplatError("list options NAME: a space, strategy, evaluator or executor")
    rows, caption = option_rows(name, table=fmt == "table")
    emit(rows, fmt, ["option", "type", "default", "description"], caption=caption)


COMMAND_MODULES = ("bench", "dashboard", "pareto", "proxy_check")


def load_commands() -> None:
    """Import the command modules of ``nasplat.cli``; each adds its sub-command to ``cli``."""
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(f"nasplat.cli.{module}")


class Terminated(BaseException):
    """Raised in the main thread by SIGINT, SIGTERM or SIGHUP while a command runs: it unwinds
    the command (the trials in flight are marked interrupted, executors shut down), then the
    command exits with 128 + the signal. A BaseException, as KeyboardInterrupt, so that no
    ``except Exception`` takes it for a failing trial."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextmanager
def stop_signals_unwind() -> Iterator[None]:
    """While the command runs, the first SIGINT, SIGTERM or SIGHUP raises :class:`Terminated`;
    another one while the command unwinds is ignored so the clean-up finishes (a second Ctrl+C
    still stops at once). A signal ignored when nasplat starts (``nohup``) stays ignored. The
    previous handlers come back afterwards. Main thread only."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if caught:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        caught.append(signum)
        raise Terminated(signum)

    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:  # nohup
            previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def stopped_line(signum: int) -> tuple[str, int]:
    """The one line and the exit status of a command stopped by a signal."""
    import signal

    if signum == signal.SIGINT:
        return "nasplat: interrupted", 128 + signum
    return f"nasplat: terminated by {signal.Signals(signum).name}", 128 + signum


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line and exit status 2 for bad input, never a traceback. SIGINT,
    SIGTERM and SIGHUP stop a command gracefully: one line, exit 130, 143 or 129."""
    load_commands()
    try:
        with stop_signals_unwind():
            cli.main(args=argv, prog_name="nasplat", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("nasplat: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"nasplat: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except NasplatError as exc:
        click.echo(f"nasplat: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Terminated as exc:
        line, code = stopped_line(exc.signum)
        click.echo(line, err=True)
        sys.exit(code)
    except KeyboardInterrupt:
        click.echo("nasplat: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


def run() -> None:
    """The ``nasplat`` command (console script and ``python -m nasplat``): :func:`main`, then
    exit without the interpreter's teardown of every module, which took 0.1 s of a 0.7 s
    table search here. The exit handlers still run (log files, Ray, child processes) and
    the output is flushed; a command that leaves other non-daemon threads running exits the
    ordinary way, which waits for them."""
    try:
        main()
    except SystemExit as exc:
        status = exc.code
    else:
        status = 0
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(status)
    if not isinstance(status, int):  # None, or a message as sys.exit prints it
        if status is not None:
            print(status, file=sys.stderr)
        status = 0 if status is None else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to write
            pass
    os._exit(status)
