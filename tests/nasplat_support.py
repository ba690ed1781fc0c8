"""Testing helpers: evaluators with known results, and throwaway servers for test suites.

Importing this module (it imports torch) registers the ``known-function`` evaluator (it is not a built-in, so
``nasplat list`` stays clean). Processes that must see it (Ray workers, a CLI subprocess) import
this module (``tests/`` is on ``PYTHONPATH``, see ``tests/conftest.py``): the Ray executor imports the modules that registered the evaluator and the space in
each worker; a CLI run uses ``python -c "import nasplat_support; from nasplat.cli import main;
main()" search ...`` (see :data:`CLI`).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasplat.budget import Budget, EvalResult
from nasplat.evaluator import Evaluator, Reporter
from nasplat.genotype import Genotype
from nasplat.registry import EVALUATORS
from nasplat.space import SearchSpace
from nasplat.store import Store

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SCRIPT = REPO_ROOT / "scripts" / "postgres.sh"
#: argv prefix of a ``nasplat`` command with the testing plugins registered.
CLI = [sys.executable, "-c", "import nasplat_support; from nasplat.cli import main; main()"]


def known_value(genotype: Genotype) -> float:
    """A value in [0, 1) that depends on the genotype only (its canonical hash)."""
    return int(genotype.sha[:12], 16) / 16**12


class KnownFunctionEvaluator(Evaluator):
    """``val_acc = known_value(genotype)`` after a (random) sleep; nothing is trained.

    Options: ``sleep`` seconds plus up to ``jitter`` random seconds per trial; ``epochs``
    intermediate values reported (step ``i`` reports ``val_acc * (i + 1) / epochs``);
    ``pid_dir``: a folder where each evaluation creates ``<sha[:12]>-<pid>`` when it starts, so
    a test can find and kill the process running a given architecture.
    """

    name = "known-function"

    def __init__(
        self,
        space: SearchSpace,
        *,
        sleep: float = 0.0,
        jitter: float = 0.0,
        epochs: int = 0,
        pid_dir: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        self.sleep = float(sleep)
        self.jitter = float(jitter)
        self.epochs = int(epochs)
        self.pid_dir = pid_dir
        self._rng = random.Random(f"{os.getpid()}-{time.time_ns()}")

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        start = time.perf_counter()
        if self.pid_dir:
            Path(self.pid_dir, f"{genotype.sha[:12]}-{os.getpid()}").touch()
        value = known_value(genotype)
        pause = self.sleep + self._rng.uniform(0.0, self.jitter)
        steps = max(self.epochs, 1)
        for step in range(steps):
            time.sleep(pause / steps)
            if self.epochs:
                reporter.report(step, value * (step + 1) / steps)
        return EvalResult(
            {"val_acc": value, "seconds": time.perf_counter() - start, "pid": float(os.getpid())}
        )

    def metric_names(self) -> list[str]:
        return ["val_acc", "seconds", "pid"]


if KnownFunctionEvaluator.name not in EVALUATORS:
    EVALUATORS.add(
        KnownFunctionEvaluator.name,
        KnownFunctionEvaluator,
        description="testing: val_acc is a known function of the genotype, after a sleep",
    )


def run_cli(
    *args: str,
    cwd: str | os.PathLike[str],
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``nasplat ARGS`` in a subprocess with the testing plugins registered (without
    ``$NASPLAT_STORAGE``, with ``env`` added) and capture its output."""
    base = {k: v for k, v in os.environ.items() if k != "NASPLAT_STORAGE"}
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env={**base, "PYTHONUNBUFFERED": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class TinySupernet(nn.Module):
    """Two candidate ops mixed by ``softmax(alpha)``: a supernet in miniature, with the
    ``arch_parameters``/``weight_parameters`` split of the real ones (4 inputs, 3 classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = nn.ModuleList(
            [nn.Linear(4, 3), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))]
        )
        self.alpha = nn.Parameter(torch.zeros(2))

    def forward(self, x: Any) -> Any:
        weights = torch.softmax(self.alpha, 0)
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))

    def arch_parameters(self) -> list[Any]:
        return [self.alpha]

    def weight_parameters(self) -> list[Any]:
        return list(self.ops.parameters())

    def derive(self) -> str:
        return ("linear", "mlp")[int(self.alpha.argmax())]


# --- throwaway servers ----------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed and cannot be installed here (no root, no apt-get)."""


def start_postgres(data_dir: str | os.PathLike[str], port: int | None = None) -> str:
    """Start a private PostgreSQL server in ``data_dir`` on 127.0.0.1 (installing PostgreSQL
    from Debian when absent) through ``scripts/postgres.sh``; returns its SQLAlchemy URL.

    Raises :class:`PostgresUnavailable` when PostgreSQL cannot be installed, RuntimeError
    with the script's output when the server does not start.
    """
    env = {
        **os.environ,
        "NASPLAT_PG_DIR": str(data_dir),
        "NASPLAT_PG_PORT": str(port or free_port()),
    }
    done = subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), "start"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 3:
        raise PostgresUnavailable(done.stderr.strip().splitlines()[-1])
    if done.returncode != 0:
        raise RuntimeError(f"scripts/postgres.sh start failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for a test session: ``$NASPLAT_TEST_POSTGRES_URL`` when
    set, else a private server started (and finally deleted) by :func:`start_postgres`."""
    given = os.environ.get("NASPLAT_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    data_dir = tempfile.mkdtemp(prefix="nasplat-pg-")  # under /tmp: the postgres user can enter it
    try:
        yield start_postgres(data_dir)
    finally:
        stop_postgres(data_dir)


def stop_postgres(data_dir: str | os.PathLike[str]) -> None:
    """Stop the server that :func:`start_postgres` started in ``data_dir`` and delete it."""
    env = {**os.environ, "NASPLAT_PG_DIR": str(data_dir)}
    subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), "purge"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def fresh_postgres_database(server_url: str, name: str) -> str:
    """Create an empty database ``name`` on the server of ``server_url``; returns its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, name: str) -> None:
    """Drop database ``name`` (closing its other connections first)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def make_study(store: Store, name: str = "s", direction: str = "maximize") -> Any:
    """A chain-space study optimising ``val_acc`` (no search runs)."""
    return store.create_study(
        name,
        space="chain",
        strategy="random",
        evaluator="train",
        objectives=[("val_acc", direction)],
        config={"seed": 1},
    )


def small_store(path: Path) -> None:
    """A nasplat store with one study and one COMPLETE trial (no training)."""
    store = Store(f"sqlite:///{path}")
    study = make_study(store)
    genotype = Genotype("chain", {"op": "conv"})
    trial = store.create_trial(study.id, genotype, Budget(epochs=1))
    store.finish_trial(trial.id, state="COMPLETE", value=0.5, metrics={"val_acc": 0.5})
    store.close()
