"""``nasplat proxy-check``: rank correlation of every zero-cost proxy with brief training."""

from __future__ import annotations

from typing import Any

import click

from nasplat.cli import cli, emit, format_option, open_store, storage_option
from nasplat.cli.main import data_dir_option, device_option
from nasplat.cli.search_flags import shown
from nasplat.config import parse_option_pairs


@cli.command("proxy-check")
@click.option("--space", required=True, help="Search space to sample from.")
@click.option("--dataset", default="digits", show_default=True, help="Dataset to train on.")
@data_dir_option
@click.option("--samples", type=int, default=20, show_default=True, help="Architectures to train.")
@click.option("--epochs", type=int, default=2, show_default=True, help="Training epochs each.")
@click.option(
    "--train-samples", type=int, default=None, help="Cap the training split (stratified)."
)
@click.option("--data-fraction", type=float, default=None, help="Fraction of the training split.")
@click.option(
    "--width-mult", type=float, default=1.0, show_default=True, help="Channel multiplier."
)
@shown("--resolution", type=int, show_default="native", help="Input resolution.")
@click.option("--proxies", default=None, help="Comma list of proxies. [all]")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--study", default=None, help="Study name. [proxy-check-SPACE-DATASET[-N]]")
@click.option("--space-opt", multiple=True, help="Space option key=value (repeatable).")
@click.option("--evaluator-opt", multiple=True, help="low-fidelity option key=value (repeatable).")
@device_option
@storage_option
@format_option
def proxy_check_command(**kw: Any) -> None:
    """Train N sampled architectures briefly, score them with every zero-cost proxy, and print
    (and store) Spearman and Kendall rank correlations with the trained accuracy."""
    from evaluators.proxy_check import proxy_check
    from nasplat.budget import Budget

    training = parse_option_pairs(kw["evaluator_opt"], "--evaluator-opt")
    if kw["train_samples"] is not None:
        training["samples"] = kw["train_samples"]
    training.setdefault("data_fraction", kw["data_fraction"] or 1.0)
    store = open_store(kw["storage"])
    record, results = proxy_check(
        store,
        space=kw["space"],
        dataset=kw["dataset"],
        data_dir=kw["data_dir"],
        samples=kw["samples"],
        epochs=kw["epochs"],
        seed=kw["seed"],
        proxies=kw["proxies"].split(",") if kw["proxies"] else None,
        space_options=parse_option_pairs(kw["space_opt"], "--space-opt"),
        training=training,
        budget=Budget(
            epochs=kw["epochs"], width_mult=kw["width_mult"], resolution=kw["resolution"]
        ),
        study=kw["study"],
        device=kw["device"],
    )
    click.echo(
        f"study {record.name}: correlation with val_acc after {kw['epochs']} epoch(s)", err=True
    )
    rows = [
        {
            "proxy": r.proxy,
            "spearman": r.spearman,
            "kendall": r.kendall,
            "n": r.n,
            "seconds": r.seconds,
        }
        for r in results
    ]
    emit(rows, kw["fmt"])
