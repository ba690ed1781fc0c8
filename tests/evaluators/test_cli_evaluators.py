"""The evaluators through the CLI: proxy-check, tabular search, pareto, and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluator_helpers import NB201, run_main

from nasplat.store import Store

TINY_ARGS = [
    "--space-opt",
    "layers=2",
    "--space-opt",
    "widths=[8]",
    "--space-opt",
    "ops=conv_3x3,max_pool_3x3",
]


def main(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    return run_main(*args, cwd=tmp_path)


def test_proxy_check_prints_and_stores_correlations(tmp_path: Path) -> None:
    code, out, err = main(
        tmp_path,
        "proxy-check",
        "--space",
        "chain",
        *TINY_ARGS,
        "--samples",
        "4",
        "--epochs",
        "1",
        "--proxies",
        "params,synflow",
        "--train-samples",
        "200",
        "--format",
        "json",
    )
    assert code == 0, err
    rows = json.loads(out)
    assert [r["proxy"] for r in rows] == ["params", "synflow"] and all(r["n"] == 4 for r in rows)
    assert all(
        -1 <= r["spearman"] <= 1 and -1 <= r["kendall"] <= 1
        for r in rows
        if r["spearman"] == r["spearman"]
    )
    store = Store(f"sqlite:///{tmp_path / 'nasplat.db'}")
    study = store.get_study("proxy-check-chain-digits")
    trials = store.trials(study.name)
    assert len(trials) == 4 and all("proxy_synflow" in t.metrics for t in trials)
    saved = store.load_checkpoint(study.id)["proxy_correlations"]
    assert [r["proxy"] for r in saved] == ["params", "synflow"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--evaluator", "proxy", "--proxy", "zen"], "unknown proxy 'zen'"),
        (["--evaluator", "early-stop", "--pruner", "mean"], "unknown pruner 'mean'"),
        (
            ["--evaluator", "tabular", "--table", "missing.csv", "--metric", "x"],
            "benchmark table not found",
        ),
        (["--constraint", "params<<3"], "bad constraint"),
        (["--constraint", "accuracy>=3"], "unknown metric 'accuracy'"),
        (["--objective", "val_acc,flops", "--direction", "maximize,sideways"], "direction must be"),
        (["--evaluator-opt", "tta=rotate"], "tta must be one of none, flip, got 'rotate'"),
        (["--evaluator-opt", "augment=crop+spin"], "augment must be none or a '+' list"),
        (["--evaluator-opt", "optimizer=lbfgs"], "unknown optimizer 'lbfgs'"),
        (["--evaluator-opt", "lr=-1"], "lr must be > 0"),
        (["--evaluator-opt", "lr=fast"], "a value of the wrong type"),
        (["--evaluator", "low-fidelity", "--evaluator-opt", "tta=rotate"], "tta must be one of"),
    ],
)
def test_bad_evaluator_input_is_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = main(tmp_path, "search", "--space", "chain", *TINY_ARGS, "--budget", "1", *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    if (tmp_path / "nasplat.db").exists():  # refused before a study or trial is written
        assert Store(f"sqlite:///{tmp_path / 'nasplat.db'}").list_studies() == []


def test_tabular_cli_search_and_missing_arch(tmp_path: Path) -> None:
    import search_spaces.nb201  # noqa: F401 - until the package registers it

    code, out, err = main(
        tmp_path,
        "search",
        "--space",
        "nb201",
        "--strategy",
        "evolution",
        "--evaluator",
        "tabular",
        "--table",
        NB201,
        "--metric",
        "cifar10_valid_acc",
        "--budget",
        "30",
        "--no-progress",
    )
    assert code == 0, err
    assert "best trial" in out and "cifar10_valid_acc=" in out and "notation: |" in out


def test_a_proxy_search_stores_and_prints_the_score_under_the_proxys_name(tmp_path: Path) -> None:
    code, out, err = main(
        tmp_path, "search", "--space", "chain", *TINY_ARGS, "--strategy", "random",
        "--evaluator", "proxy", "--proxy", "synflow", "--budget", "3", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "study chain-random-proxy: synflow=" in out and "val_acc" not in out + err
    store = Store(f"sqlite:///{tmp_path / 'nasplat.db'}")
    try:
        study = store.get_study("chain-random-proxy")
        assert study.objective == "synflow" and study.direction == "maximize"
        trials = store.trials(study.name)
        assert len(trials) == 3 and all(t.value == t.metrics["synflow"] for t in trials)
        assert not any("val_acc" in t.metrics for t in trials)
    finally:
        store.close()
