"""Dashboard speed at 1k, 10k and 100k trials, against the code before the thinning as baseline.

Builds a synthetic chain-space study per size with bulk inserts (SQLAlchemy core on the store's
tables: architectures, trials on 8 workers, 4 metrics and 3 intermediate values per trial, some
PRUNED and FAILED trials), then measures

- server side (this code): the Overview panels on a first read and after 5 new trials (the
  incremental read), a trial-table page, the version poll;
- the static report (this code): build time and file size;
- in headless Chromium (when /usr/bin/chromium exists), for this code and, with ``--baseline
  REV``, for the code of git revision REV (extracted with ``git archive`` and served from
  there): page load (navigation until the Overview figures and the first table rows are in the
  DOM) and refresh (5 trials written to the store until the table count and the trials scatter
  show them; the page polls every 0.5 s, so up to 0.5 s of it is waiting). Best of ``--repeat``
  runs; each run writes 5 more trials.

Usage: python benchmarks/dashboard.py [--sizes 1000,10000,100000] [--baseline REV] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from nasplat.budget import Budget
from nasplat.genotype import Genotype
from nasplat.store import Store, models
from search_spaces.chain import DEFAULT_OPS as OPS

ROOT = Path(__file__).resolve().parent.parent
NASPLAT = [sys.executable, "-m", "nasplat"]
TABLE_READY = (
    "Array.from(document.querySelectorAll("
    "'#trials .ag-cell[col-id=number], #trials td[data-dash-column=number]'))"
    ".some(e => e.textContent.trim() !== '')"
)
PAGE_READY = (
    "document.querySelector('#fig-trials .gtitle') && document.querySelector('#fig-timeline .gtitle')"
    " && document.querySelector('#fig-best-so-far .gtitle') && " + TABLE_READY
)
TRIALS_SHOWN = (
    "(() => { const g = document.querySelector('#fig-trials .js-plotly-plot') || {};"
    " const n = (g._fullData || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0);"
    " const sub = document.querySelector('#fig-trials .gtitle-subtitle');"
    " return n + '|' + (sub ? sub.textContent : ''); })()"
)


def build_store(path: Path, trials: int, seed: int = 0) -> str:
    """A store with one study of ``trials`` synthetic trials, written in bulk."""
    url = f"sqlite:///{path}"
    store = Store(url)
    study = store.create_study(
        "bench",
        space="chain",
        strategy="random",
        evaluator="train",
        objectives=[("val_acc", "maximize")],
        config={},
    )
    rng = random.Random(seed)
    budget = Budget(epochs=3)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    archs, rows, values, inter = [], [], [], []
    seen: set[str] = set()
    clock = [start] * 8  # eight workers
    for number in range(trials):
        decisions: dict[str, Any] = {}
        for i in range(4):
            decisions[f"layer{i}.op"] = rng.choice(OPS)
            decisions[f"layer{i}.width"] = rng.choice((16, 32, 64))
            decisions[f"layer{i}.skip"] = rng.random() < 0.5
        genotype = Genotype("chain", decisions)
        if genotype.sha not in seen:
            seen.add(genotype.sha)
            archs.append(
                {
                    "id": len(archs) + 1,
                    "space": "chain",
                    "hash": genotype.sha,
                    "genotype": genotype.to_json(),
                }
            )
        arch_id = len(archs)  # duplicates (rare) reuse the newest id: fine for a benchmark
        worker = number % 8
        began = clock[worker]
        seconds = rng.uniform(5, 60)
        clock[worker] = began + timedelta(seconds=seconds)
        acc = min(0.99, 0.5 + 0.4 * rng.random() + 0.05 * number / trials)
        state = "FAILED" if number % 97 == 5 else "PRUNED" if number % 9 == 4 else "COMPLETE"
        trial_id = number + 1
        rows.append(
            {
                "id": trial_id,
                "study_id": study.id,
                "number": number,
                "architecture_id": arch_id,
                "state": state,
                "budget": budget.to_dict(),
                "budget_key": budget.key(),
                "value": None if state == "FAILED" else acc * (0.66 if state == "PRUNED" else 1.0),
                "started_at": began,
                "finished_at": clock[worker],
                "worker": f"w{worker}",
                "error": "RuntimeError: boom" if state == "FAILED" else None,
                "tag": None,
                "retries": 1 if state == "FAILED" else 0,
            }
        )
        if state == "COMPLETE":
            params = sum(decisions[f"layer{i}.width"] for i in range(4)) * 1000.0
            for key, value in (
                ("val_acc", acc),
                ("params", params),
                ("flops", params * 64),
                ("latency_ms", params / 1e4 + rng.random()),
            ):
                values.append({"trial_id": trial_id, "key": key, "value": value})
        for step in range(2 if state == "PRUNED" else 3):
            inter.append(
                {"trial_id": trial_id, "key": "value", "step": step, "value": acc * (step + 1) / 3}
            )
    with store.engine.begin() as conn:
        for table, data in (
            (models.architectures, archs),
            (models.trials, rows),
            (models.trial_values, values),
            (models.intermediate_values, inter),
        ):
            for i in range(0, len(data), 20_000):
                conn.execute(insert(table), data[i : i + 20_000])
    store.close()
    return url


def add_trials(url: str, count: int = 5) -> None:
    """``count`` finished trials, as a running search writes them."""
    store = Store(url)
    study = store.get_study("bench")
    for k in range(count):
        genotype = Genotype("chain", {"layer0.op": "conv_3x3", "layer0.n": random.random() + k})
        trial = store.create_trial(study.id, genotype, Budget(epochs=3))
        store.finish_trial(
            trial.id,
            state="COMPLETE",
            value=0.5,
            metrics={"params": 1e4, "flops": 1e6, "latency_ms": 1.0},
        )
    store.close()


def timed(fn: Any, repeat: int = 3) -> float:
    """Best of ``repeat`` wall-clock seconds."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def server_side(url: str) -> dict[str, float]:
    from dashboards.db import Reader
    from dashboards.page import TABS
    from dashboards.panels import StudySource, panel
    from dashboards.table import trial_rows

    reader = Reader(url)
    out: dict[str, float] = {}
    first = StudySource(reader, "bench")
    began = time.perf_counter()
    for key in TABS["overview"]:
        panel(first, key)
    out["Overview panels, first read (s)"] = time.perf_counter() - began
    add_trials(url)
    again = StudySource(reader, "bench", previous=first)
    began = time.perf_counter()
    for key in TABS["overview"]:
        panel(again, key)
    out["Overview panels after 5 new trials (s)"] = time.perf_counter() - began
    for tab in ("architectures", "curves"):
        began = time.perf_counter()
        for key in TABS[tab]:
            panel(again, key)
        out[f"{tab.capitalize()} panels (s)"] = time.perf_counter() - began
    out["table page, sorted by value and filtered (s)"] = timed(
        lambda: trial_rows(
            reader,
            "bench",
            75,
            100,
            [{"colId": "value", "sort": "desc"}],
            {"state": {"filterType": "text", "type": "contains", "filter": "COMPLETE"}},
        )
    )
    out["version poll (s)"] = timed(reader.version, 5)
    reader.close()
    return out


def report(url: str, folder: Path) -> dict[str, float]:
    out_file = folder / "report.html"
    began = time.perf_counter()
    done = subprocess.run(
        [*NASPLAT, "dashboard", "--study", "bench", "--out", str(out_file), "--storage", url],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    return {
        "static report build, CLI process (s)": time.perf_counter() - began,
        "static report size (MB)": out_file.stat().st_size / 1e6,
    }


def extract(revision: str, folder: Path) -> Path:
    """The code of git ``revision``, unpacked into ``folder``."""
    target = folder / f"code-{revision}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def in_browser(url: str, code: Path, repeat: int) -> dict[str, float]:
    """Page load and refresh in Chromium against the dashboard served from ``code``."""
    from dashboards.browser import CHROMIUM, Browser

    if not os.path.exists(CHROMIUM):
        return {}
    loads, refreshes, errors = [], [], 0
    for _ in range(repeat):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen(
            [*NASPLAT, "dashboard", "--serve", "--port", str(port)]
            + ["--storage", url, "--refresh", "0.5"],
            cwd=code,
            env={**os.environ, "PYTHONPATH": str(code)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        page = f"http://127.0.0.1:{port}/"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(page, timeout=2).close()
                    break
                except OSError:
                    time.sleep(0.2)
            with Browser() as browser:
                began = time.perf_counter()
                browser.navigate(page, timeout=300)
                browser.wait_for(PAGE_READY, timeout=300)
                loads.append(time.perf_counter() - began)
                browser.wait_for("document.querySelector('#table-status').textContent", 300)
                shown = browser.evaluate(TRIALS_SHOWN)
                status = browser.evaluate("document.querySelector('#table-status').textContent")
                total = int(status.split()[0]) + 5
                began = time.perf_counter()
                add_trials(url)
                browser.wait_for(
                    f"document.querySelector('#table-status').textContent === '{total} trial(s) match'"
                    f" && {TRIALS_SHOWN} !== {json.dumps(shown)}",
                    timeout=300,
                )
                refreshes.append(time.perf_counter() - began)
                errors += len(browser.js_errors())
        finally:
            server.terminate()
            server.wait(timeout=20)
    return {"page load (s)": min(loads), "refresh (s)": min(refreshes), "JS errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--baseline", default=None, help="git revision to compare with")
    parser.add_argument("--repeat", type=int, default=2, help="browser runs per size and code")
    parser.add_argument(
        "--out", default=None, help="Folder for the stores and reports (default: a temp folder)."
    )
    args = parser.parse_args()
    folder = Path(args.out or tempfile.mkdtemp(prefix="nasplat-dash-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    codes = {"": ROOT}
    if args.baseline:
        codes = {f"before ({args.baseline}), ": extract(args.baseline, folder), "": ROOT}
    results: dict[int, dict[str, float]] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        path = folder / f"bench-{size}.db"
        path.unlink(missing_ok=True)
        began = time.perf_counter()
        url = build_store(path, size)
        row = {"build store (bulk insert, s)": time.perf_counter() - began}
        for label, code in codes.items():
            for key, value in in_browser(url, code, args.repeat).items():
                row[f"{label}{key}"] = value
        row.update(server_side(url))
        row.update(report(url, folder / f"r{size}"))
        results[size] = row
        print(json.dumps({size: row}, indent=1), file=sys.stderr, flush=True)
    keys = list(next(iter(results.values())))
    print("| measure | " + " | ".join(f"{s:,} trials" for s in results) + " |")
    print("|---|" + "---:|" * len(results))
    for key in keys:
        print(
            f"| {key} | "
            + " | ".join(f"{results[s].get(key, float('nan')):.3g}" for s in results)
            + " |"
        )


if __name__ == "__main__":
    main()
