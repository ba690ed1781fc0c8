"""Loop overhead against Optuna, and how it holds as a study grows (issue #16).

Every figure is a ratio of alternated runs (the machine is shared): the median of the ratios
of runs made next to each other, so that a drift of the machine's speed over minutes does not
move it; written as a markdown table to stdout:

- the same loop (3,000 trials) with its store's WAL checkpoint thread against SQLite's
  default checkpoints (inside the commit that passes 1,000 log pages), alternated (``wal``);
- loop overhead per trial: nasplat's trial loop (random strategy, SQLite file store, the
  nb201 space's 6 decisions, an evaluator that returns a number) against Optuna
  (``study.optimize``, random sampler, in-memory storage, 6 categorical parameters of 5);
- whole process: ``nasplat search`` of the 200-trial random NB201 table search against a
  Python script doing the same with Optuna in memory;
- per-trial cost of the loop (progress bar on) in a study pre-filled with 100,000 trials
  against one with 100;
- proposals per trial of evolution, rl and tpe over a 1,000-trial NB201 table search, and
  TPE's loop time against Optuna's own ``optimize`` with the same sampler settings (medians
  of ``--repeats`` alternated runs of each);
- how long ``nasplat trials`` on the 100k study delays a concurrent writer's trial;
- ``nasplat best`` wall time, next to the time Python takes to start and import click and
  SQLAlchemy (its floor; it tells a slow spell of the machine from a slow command).

Usage: python benchmarks/overhead.py [--repeats 3] [--big 100000] [--parts loop,process,...]

The timed processes run with bytecode caching on (``PYTHONPYCACHEPREFIX`` in a temporary
folder, one untimed warm-up run each), as an installed package would: a checkout run with
``PYTHONDONTWRITEBYTECODE=1`` compiles every nasplat module on each start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
METRIC = "cifar10_valid_acc"

import optuna  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from evaluators.tabular import table_file  # noqa: E402
from nasplat.budget import Budget, EvalResult  # noqa: E402
from nasplat.evaluator import Evaluator  # noqa: E402
from nasplat.registry import SPACES, STRATEGIES, load_builtins  # noqa: E402
from nasplat.run.local import LocalExecutor  # noqa: E402
from nasplat.run.loop import LoopContext, TrialLoop  # noqa: E402
from nasplat.run.progress import progress_bar  # noqa: E402
from nasplat.store import Store, models  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
TABLE = os.environ.get("NASPLAT_NB201_TABLE") or table_file("nb201")  # default: the embedded one
BULK_GENOTYPE = '{"space": "bulk", "decisions": {}}'
CHOICES = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class Trivial(Evaluator):
    name = "trivial"

    def evaluate(self, genotype: Any, budget: Budget, reporter: Any) -> EvalResult:
        return EvalResult({"val_acc": int(genotype.sha[:8], 16) / 2**32})


def nasplat_loop(url: str, trials: int, study: str, progress: bool = False) -> list[float]:
    """Seconds per trial of the loop (one entry per finished trial)."""
    load_builtins()
    store = Store(url)
    space = SPACES.create("nb201")
    if store.has_study(study):
        record = store.get_study(study)
    else:
        record = store.create_study(
            study,
            space="nb201",
            strategy="random",
            evaluator="trivial",
            objectives=[("val_acc", "maximize")],
            config={},
        )
    strategy = STRATEGIES.create("random", space, seed=len(store.study_names()))
    executor = LocalExecutor()
    executor.attach(Trivial(space), store, record.id, record.objective)
    already = store.count_trials(record.id, tag=None)
    stamps: list[float] = []

    class Bar:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def advance(self, text: str = "") -> None:
            self.inner.advance(text)
            stamps.append(time.perf_counter())

    context = LoopContext(
        store, record, space, strategy, executor, Budget(), target=already + trials,
        already=already, limit=already + trials,  # claimed under the budget, as a search does
    )  # fmt: skip
    with open(os.devnull, "w") as sink:
        saved, sys.stderr = sys.stderr, sink
        try:
            with progress_bar(progress, total=already + trials, completed=already) as bar:
                start = time.perf_counter()
                TrialLoop(context).run(Bar(bar))
        finally:
            sys.stderr = saved
    store.close()
    times = [b - a for a, b in zip([start, *stamps], stamps, strict=False)]
    return times


def optuna_loop(trials: int, sampler: Any = None) -> float:
    study = optuna.create_study(
        direction="maximize", sampler=sampler or optuna.samplers.RandomSampler(seed=0)
    )

    def objective(trial: optuna.Trial) -> float:
        picks = [trial.suggest_categorical(f"e{i}", CHOICES) for i in range(6)]
        return (hash("|".join(picks)) % 1000) / 1000

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - start


OPTUNA_SCRIPT = f"""
import csv, gzip, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
path = {TABLE!r}
rows = csv.DictReader((gzip.open if path.endswith(".gz") else open)(path, "rt"))
table = {{r["arch"]: float(r["{METRIC}"]) for r in rows}}
ops = {CHOICES!r}
def objective(t):
    e = [t.suggest_categorical(f"e{{i}}", ops) for i in range(6)]
    arch = f"|{{e[0]}}~0|+|{{e[1]}}~0|{{e[2]}}~1|+|{{e[3]}}~0|{{e[4]}}~1|{{e[5]}}~2|"
    return table[arch]
s = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
s.optimize(objective, n_trials=200)
print(s.best_value)
"""


PYCACHE = tempfile.mkdtemp(prefix="nasplat-pycache-")


def timed_process(cmd: list[str], cwd: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": PYCACHE}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def prefill(url: str, study: str, n: int) -> None:
    """A study of ``n`` COMPLETE trials written in bulk (distinct architectures)."""
    store = Store(url)
    record = store.create_study(
        study,
        space="nb201",
        strategy="random",
        evaluator="trivial",
        objectives=[("val_acc", "maximize")],
        config={},
    )
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        first = conn.execute(
            insert(models.architectures).values(
                space="bulk", hash=f"{study}-0", genotype=BULK_GENOTYPE
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(models.architectures),
            [
                {"space": "bulk", "hash": f"{study}-{i}", "genotype": BULK_GENOTYPE}
                for i in range(1, n)
            ],
        )
        key = Budget().key()
        conn.execute(
            insert(models.trials),
            [
                {
                    "study_id": record.id, "number": i, "architecture_id": first + i,
                    "state": "COMPLETE", "budget": Budget().to_dict(), "budget_key": key,
                    "value": (i * 7919 % 10007) / 10007, "started_at": now, "finished_at": now,
                    "worker": "bulk", "error": None, "tag": None, "retries": 0,
                }
                for i in range(n)
            ],
        )  # fmt: skip
    store.close()


def proposals_per_trial(strategy: str, trials: int) -> tuple[float, float]:
    from nasplat.cli.benchmark import BenchSpec, run_one

    spec = BenchSpec(space="nb201", table=TABLE, metric=METRIC, queries=trials)
    row = run_one(spec, strategy, seed=0)
    return row["proposals"] / row["queries"], row["seconds"]


def writer_delay(url: str, study: str, folder: str) -> tuple[float, float]:
    """Max seconds of a writer's trial (create + finish) while ``nasplat trials`` reads the
    big study, and without a reader."""
    store = Store(url)
    record = store.get_study(study)
    from nasplat.genotype import Genotype

    def trial_times(stop: threading.Event | None, count: int = 0) -> list[float]:
        out = []
        i = 0
        while (stop is not None and not stop.is_set()) or (stop is None and i < count):
            g = Genotype("bulk", {"w": f"{time.perf_counter_ns()}-{i}"})
            start = time.perf_counter()
            trial = store.create_trial(record.id, g, Budget())
            store.finish_trial(trial.id, state="COMPLETE", value=0.1)
            out.append(time.perf_counter() - start)
            i += 1
            time.sleep(0.005)
        return out

    alone = trial_times(None, 100)
    stop = threading.Event()
    during: list[float] = []
    worker = threading.Thread(target=lambda: during.extend(trial_times(stop)))
    worker.start()
    timed_process(
        [sys.executable, "-m", "nasplat", "trials", "--study", study, "--storage", url,
         "--format", "csv"], folder,
    )  # fmt: skip
    stop.set()
    worker.join()
    store.close()
    return max(alone), max(during)


@contextmanager
def sqlite_default_checkpoints() -> Iterator[None]:
    """Stores opened inside checkpoint as SQLite does by default (inside the commit that takes
    the log past 1,000 pages, no checkpoint thread): the code before the seventh pass."""
    from sqlalchemy import event

    from nasplat.store import store as store_module

    shipped = store_module._make_engine

    def default_checkpoints(url: str, create: bool = True) -> Any:
        engine, checkpointer = shipped(url, create)
        if checkpointer is not None:
            checkpointer.every = 10**18
            event.listen(engine, "connect", lambda dbapi, _: dbapi.execute(
                "PRAGMA wal_autocheckpoint=1000"))  # fmt: skip
        return engine, checkpointer

    store_module._make_engine = default_checkpoints
    try:
        yield
    finally:
        store_module._make_engine = shipped


def paired(ours: list[float], theirs: list[float]) -> tuple[float, float, float]:
    """Medians of both sides, and the median of the ratios of the runs made next to each other
    (each pair saw the same machine speed, which drifts over minutes here)."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return statistics.median(ours), statistics.median(theirs), statistics.median(ratios)


class Rows:
    """The table, printed row by row as the figures come in."""

    def __init__(self) -> None:
        print("| measure | nasplat | Optuna / reference | ratio |")
        print("|---|---:|---:|---:|", flush=True)

    def append(self, row: tuple[str, ...]) -> None:
        print("| " + " | ".join(row) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument(
        "--parts",
        default="loop,wal,process,big,reader,best,proposals",
        help="comma list of: loop, wal, process, big, reader (needs big), best (needs process), "
        "proposals",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    rows = Rows()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/loop.db"
        if "loop" in parts:  # 1. loop overhead per trial
            ours, theirs = [], []
            for r in range(args.repeats):
                ours.append(sum(nasplat_loop(url, args.trials, f"loop{r}")) / args.trials)
                theirs.append(optuna_loop(args.trials) / args.trials)
            a, b, ratio = paired(ours, theirs)
            rows.append(("loop overhead per trial (ms)", f"{a * 1e3:.3f}", f"{b * 1e3:.3f}",
                         f"{ratio:.2f}"))  # fmt: skip
        if "wal" in parts:  # 1b. the loop with SQLite's default checkpoints against as shipped
            shipped_t, default_t = [], []
            for r in range(2 * args.repeats):
                for default in (False, True) if r % 2 == 0 else (True, False):
                    with sqlite_default_checkpoints() if default else nullcontext():
                        times = nasplat_loop(f"sqlite:///{folder}/wal{r}{default}.db", 3000, "w")
                    (default_t if default else shipped_t).append(sum(times) / len(times))
            a, b, ratio = paired(shipped_t, default_t)
            rows.append(("loop per trial, checkpoint thread vs SQLite's default checkpoints (ms)",
                         f"{a * 1e3:.3f}", f"{b * 1e3:.3f}", f"{ratio:.2f}"))  # fmt: skip
        if "process" in parts:  # 2. whole process, 200-trial random NB201 table search
            script = Path(folder) / "optuna_nb201.py"
            script.write_text(OPTUNA_SCRIPT)
            ours, theirs = [], []
            for r in range(-1, args.repeats):  # run -1: untimed warm-up (bytecode cache)
                ours.append(timed_process(
                    [sys.executable, "-m", "nasplat", "search", "--space", "nb201", "--evaluator",
                     "tabular", "--table", TABLE, "--metric", METRIC, "--strategy", "random",
                     "--budget", "200", "--no-progress", "--storage",
                     f"sqlite:///{folder}/p{r % args.repeats if r >= 0 else 'w'}.db"],
                    folder,
                ))  # fmt: skip
                theirs.append(timed_process([sys.executable, str(script)], folder))
            a, b, ratio = paired(ours[1:], theirs[1:])
            rows.append(("whole process, 200-trial NB201 table search (s)", f"{a:.2f}", f"{b:.2f}",
                         f"{ratio:.2f}"))  # fmt: skip
        if "best" in parts and "process" in parts:  # 6. nasplat best
            best, floor = [], []
            for _ in range(args.repeats):  # the floor: starting Python and importing its libraries
                best.append(timed_process(
                    [sys.executable, "-m", "nasplat", "best", "--study", "nb201-random-tabular",
                     "--storage", f"sqlite:///{folder}/p0.db"], folder))  # fmt: skip
                floor.append(
                    timed_process([sys.executable, "-c", "import click, sqlalchemy"], folder)
                )
            rows.append(("`nasplat best` (s; reference: `python -c 'import click, sqlalchemy'`)",
                         f"{statistics.median(best):.2f}", f"{statistics.median(floor):.2f}",
                         f"{statistics.median(best) - statistics.median(floor):+.2f} s"))  # fmt: skip
        if "big" in parts:  # 3. per-trial cost at 100k vs 100 (progress bar on)
            big = f"sqlite:///{folder}/big.db"
            start = time.perf_counter()
            prefill(big, "small", 100)
            prefill(big, "big", args.big)
            fill = time.perf_counter() - start
            small_t, big_t = [], []
            for r in range(args.repeats):  # alternate which study goes first
                for name in ("small", "big") if r % 2 == 0 else ("big", "small"):
                    times = statistics.median(nasplat_loop(big, 200, name, progress=True))
                    (small_t if name == "small" else big_t).append(times)
            a, b, ratio = paired(big_t, small_t)
            rows.append((f"per-trial at trial {args.big:,} vs trial 100 (ms, median; bulk fill {fill:.0f} s)",
                         f"{a * 1e3:.3f}", f"{b * 1e3:.3f}", f"{ratio:.2f}"))  # fmt: skip
            if "reader" in parts:  # 5. a reader of the big study against a writer
                alone, during = writer_delay(big, "big", folder)
                rows.append((f"writer's slowest trial while `nasplat trials` reads {args.big:,} (ms)",
                             f"{during * 1e3:.1f}", f"{alone * 1e3:.1f} (no reader)",
                             f"{(during - alone) * 1e3:+.1f} ms"))  # fmt: skip
    if "proposals" not in parts:
        return
    # 4. proposals per trial, and TPE against Optuna's optimize
    for strategy in ("evolution", "rl", "tpe"):
        ratio, seconds = proposals_per_trial(strategy, args.trials)
        rows.append((f"{strategy}: proposals per trial, {args.trials:,} NB201 trials",
                     f"{ratio:.3f}", "", f"{seconds:.1f} s"))  # fmt: skip
    # TPE against Optuna's optimize, alternated (the proposals run above was the warm-up)
    ours, theirs = [], []
    for r in range(args.repeats):
        for side in ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours"):
            if side == "ours":
                ours.append(proposals_per_trial("tpe", args.trials)[1])
            else:
                sampler = optuna.samplers.TPESampler(n_startup_trials=10, multivariate=True, constant_liar=True, seed=0)  # fmt: skip
                theirs.append(optuna_loop(args.trials, sampler))
    a, b, ratio = paired(ours, theirs)
    rows.append((f"tpe {args.trials:,} trials vs Optuna optimize (s, median of {args.repeats} "
                 "alternated)", f"{a:.1f}", f"{b:.1f}", f"{ratio:.2f}"))  # fmt: skip


if __name__ == "__main__":
    main()
