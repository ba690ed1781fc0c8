"""The ``tabular`` evaluator: look an architecture up in a benchmark table instead of training.

A table is a CSV (optionally gzipped) or Parquet file with an ``arch`` column holding each
architecture in its space's notation (NAS-Bench-201 strings for ``nb201``) and numeric columns
of results, or the name of a table shipped in ``evaluators/data`` (``nb201``: NAS-Bench-201 at 12
epochs; see its README.md). The values returned under the table's column names are the table's
numbers exactly (NAS-Bench-201 holds percentages); ``val_acc`` is always a fraction, as a
trained network's.
"""

from __future__ import annotations

import math
import os
import threading
import time
from array import array
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from evaluators.constraints import (
    Constraint,
    ConstraintViolation,
    metrics_of,
    parse_constraints,
    violation,
)
from evaluators.network_costs import NetworkCosts
from nasplat.budget import Budget, EvalResult
from nasplat.direction import Direction
from nasplat.diskcache import cached_marshal
from nasplat.errors import ConfigError, InvalidGenotypeError, NasplatError
from nasplat.evaluator import Evaluator, Reporter, pop_common_options, reject_unknown_options
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import EVALUATORS
from nasplat.shape import NetShape
from nasplat.space import SearchSpace

if TYPE_CHECKING:  # numpy is imported with the table (not when the evaluator registers)
    pass

ARCH_COLUMN = "arch"
COST_WORDS = ("params", "flops", "latency", "size")
"""Columns whose name contains one of these are cost metrics, returned with every lookup."""
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
EMBEDDED_TABLES = {"nb201": "nb201_12epoch.csv.gz"}
EMBEDDED_METRICS = {"nb201": "cifar10_valid_acc"}
"""An embedded table's default metric: the search signal of its paper (NAS-Bench-201: the
CIFAR-10 validation accuracy)."""
"""Tables shipped in ``DATA_DIR``, given by name instead of a path."""


def table_file(table: str) -> str:
    """The file of ``table``: an embedded table's packaged file for its name, else the path."""
    embedded = EMBEDDED_TABLES.get(str(table))
    return os.path.join(DATA_DIR, embedded) if embedded else os.path.expanduser(str(table))


def default_metric(table: BenchmarkTable) -> str | None:
    """The column a table is searched on when no metric is named: ``val_acc`` when it has one,
    else an embedded table's paper signal (None: the user must name one)."""
    return "val_acc" if "val_acc" in table.columns else EMBEDDED_METRICS.get(table.name)


def table_name(path: str) -> str:
    """A table's identity in messages and trial budgets: an embedded table's name (however it
    was given), else the file's name."""
    full = os.path.abspath(path)
    names = {os.path.join(DATA_DIR, file): name for name, file in EMBEDDED_TABLES.items()}
    return names.get(full, os.path.basename(full))


BUILT = ("params", "flops")
"""Costs measured by building the network when the table has no such column."""
CIFAR10_NETWORK = {"in_channels": 3, "input_size": 32, "num_classes": 10}
"""The network shape built costs are measured at by default: NAS-Bench-201's CIFAR-10 one."""


class ArchitectureNotInTable(NasplatError):
    """An architecture the benchmark table has no row for."""


class BenchmarkTable:
    """A benchmark table held as one float64 array per numeric column and an arch -> row dict.

    Immutable once loaded; ``load`` caches instances per process by absolute path and mtime,
    so lookups from many evaluators share one copy. Thread safe for reading. ``name`` is the
    table's identity (:func:`table_name`).
    """

    _cache: dict[tuple[str, float], BenchmarkTable] = {}
    _lock = threading.Lock()

    def __init__(self, path: str, archs: Sequence[str], columns: dict[str, array]) -> None:
        self.path = path
        self.name = table_name(path)
        self.archs = list(archs)
        self._row = {arch: i for i, arch in enumerate(self.archs)}
        if len(self._row) != len(self.archs):
            raise ConfigError(f"benchmark table {path} lists some architectures twice")
        self._columns = columns

    # --- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, table: str) -> BenchmarkTable:
        """Read a ``.csv``, ``.csv.gz`` or ``.parquet`` table, or an embedded one by name (cached
        by path and modification time)."""
        full = os.path.abspath(table_file(table))
        if not os.path.isfile(full):
            raise ConfigError(
                f"benchmark table not found: {table} (a CSV/Parquet path, or an embedded table: "
                f"{', '.join(EMBEDDED_TABLES)})"
            )
        key = (full, os.path.getmtime(full))
        with cls._lock:
            table = cls._cache.get(key)
            if table is None:
                table = cls._read(full)
                cls._cache = {k: v for k, v in cls._cache.items() if k[0] != full}
                cls._cache[key] = table
            return table

    @classmethod
    def _read(cls, path: str) -> BenchmarkTable:
        if path.endswith((".csv", ".csv.gz")):
            plain = _cached_plain_csv(path)
            if plain is not None:
                archs, numeric = plain
                return cls(path, archs, numeric)
        import numpy as np
        import pandas as pd

        try:
            if path.endswith((".parquet", ".pq")):
                frame = pd.read_parquet(path)
            elif path.endswith((".csv", ".csv.gz")):
                frame = pd.read_csv(path)
            else:
                raise ConfigError(
                    f"benchmark table {path} must be a .csv, .csv.gz or .parquet file"
                )
        except (ValueError, OSError, EOFError, ImportError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"cannot read benchmark table {path}: {first}") from None
        if ARCH_COLUMN not in frame.columns:
            raise ConfigError(
                f"benchmark table {path} has no {ARCH_COLUMN!r} column "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
        numeric = {
            str(name): array("d", frame[name].to_numpy(dtype=np.float64).tobytes())
            for name in frame.columns
            if name != ARCH_COLUMN and pd.api.types.is_numeric_dtype(frame[name])
        }
        return cls(path, frame[ARCH_COLUMN].astype(str).tolist(), numeric)

    # --- queries ------------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """The numeric columns, in file order."""
        return list(self._columns)

    def __len__(self) -> int:
        return len(self.archs)

    def __contains__(self, arch: object) -> bool:
        return arch in self._row

    def column(self, name: str) -> memoryview:
        """One column as a read-only sequence of floats, usable as a NumPy buffer
        (ConfigError naming the columns when unknown)."""
        try:
            values = self._columns[name]
        except KeyError:
            raise ConfigError(
                f"benchmark table {self.name} has no numeric column {name!r}; "
                f"columns: {', '.join(self.columns)}"
            ) from None
        return memoryview(values).toreadonly()

    def row(self, arch: str) -> int:
        """The row index of ``arch`` (ArchitectureNotInTable, naming it, when absent)."""
        try:
            return self._row[arch]
        except KeyError:
            raise ArchitectureNotInTable(
                f"architecture {arch!r} is not in benchmark table {self.name}"
            ) from None

    def lookup(self, arch: str, column: str) -> float:
        """The table's value for ``arch`` in ``column``, exactly as stored."""
        values = self.column(column)
        return float(values[self.row(arch)])

    def lookup_many(self, archs: Iterable[str], column: str) -> list[float]:
        values = self.column(column)
        return [float(values[self.row(arch)]) for arch in archs]

    def accuracy_divisor(self, column: str) -> float | None:
        """What ``column`` is divided by to be an accuracy fraction: 100 for an accuracy in
        percent, 1 for one in fractions, None for a column that is no accuracy. An accuracy
        column's name contains ``acc`` and is maximised; it is in percent when a value
        exceeds 1."""
        if "acc" not in column or Direction.default_for(column) is not Direction.MAXIMIZE:
            return None
        top = max((v for v in self.column(column) if not math.isnan(v)), default=0.0)
        return 1.0 if top <= 1.0 else 100.0 if top <= 100.0 else None

    def best(self, column: str, maximize: bool = True) -> tuple[str, float]:
        """``(arch, value)`` of the best row in ``column`` (first on ties; NaN rows skipped)."""
        import numpy as np

        values = np.asarray(self.column(column))
        if np.isnan(values).all():
            raise ConfigError(f"column {column!r} of table {self.name} has no values")
        index = int(np.nanargmax(values) if maximize else np.nanargmin(values))
        return self.archs[index], float(values[index])


_NA_TEXT = frozenset(
    ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
)  # fmt: skip
"""What pandas reads as a missing value by default."""


def _read_plain_csv(path: str) -> tuple[list[str], dict[str, list[float]]] | None:
    """A CSV table read with the ``csv`` module (no pandas import, which costs more than the
    rest of a table search's start-up) when it is plain: a unique header with ``arch``, rows of
    the header's length, arch strings that are not numbers or missing values, and every other
    column plain numbers or empty. Anything else (text or boolean columns, missing-value words,
    odd spacing): None, and pandas reads the file. The numbers are Python's correctly rounded
    reading of the text."""
    import csv
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error):
        return None
    if not rows:
        return None
    header, body = rows[0], rows[1:]
    if ARCH_COLUMN not in header or len(set(header)) != len(header) or "" in header:
        return None
    if any(len(row) != len(header) for row in body):
        return None
    at = header.index(ARCH_COLUMN)
    archs = [row[at] for row in body]
    if any(arch in _NA_TEXT or arch != arch.strip() for arch in archs) or all(
        map(_is_number, archs)
    ):
        return None
    numeric: dict[str, list[float]] = {}
    for i, name in enumerate(header):
        if i == at:
            continue
        column = [row[i] for row in body]
        if any(text != text.strip() or "_" in text for text in column):
            return None
        try:  # one parse per value: float() refuses what is not a plain number
            numeric[name] = [float(text) if text else math.nan for text in column]
        except ValueError:
            return None
    return archs, numeric


def _cached_plain_csv(path: str) -> tuple[list[str], dict[str, array]] | None:
    """:func:`_read_plain_csv` with its columns as arrays of doubles, kept in nasplat's disk
    cache by path, size and modification time: parsing the embedded NB201 table is most of a
    short table search's own start-up (about 60 ms), reading it back about 1 ms."""
    stat = os.stat(path)

    def parse() -> list[Any] | None:
        plain = _read_plain_csv(path)
        if plain is None:
            return None
        archs, numeric = plain
        return [archs, {name: array("d", column).tobytes() for name, column in numeric.items()}]

    cached = cached_marshal(
        "table", (TABLE_CACHE_VERSION, path, stat.st_size, stat.st_mtime_ns), parse
    )
    if cached is None:
        return None
    archs, columns = cached
    numeric = {}
    for name, raw in columns.items():
        numeric[name] = array("d")
        numeric[name].frombytes(raw)
    return archs, numeric


TABLE_CACHE_VERSION = 1
"""Bump when :func:`_read_plain_csv` changes what it returns."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def notations(space: SearchSpace, genotype: Genotype) -> list[str]:
    """The strings to try for a genotype: its own notation, then its canonical form's."""
    first = space.to_notation(genotype)
    canonical_form = space.canonicalize(genotype)
    if canonical_form == genotype:
        return [first]
    canonical = space.to_notation(canonical_form)
    return [first] if canonical == first else [first, canonical]


@EVALUATORS.register("tabular", description="look results up in a benchmark table (CSV/Parquet)")
class TabularEvaluator(Evaluator):
    """Answers from a benchmark table: no training, microseconds per query.

    Options: ``table`` (a path, or an embedded table's name such as ``nb201``; required),
    ``metric`` (column, default ``val_acc`` if the table has it), ``constraints`` (on any
    numeric column or built cost; checked by :meth:`precheck` before a trial exists),
    ``network`` (the shape built costs are measured at, NetShape fields; default CIFAR-10's).
    Metrics: the metric under its column name, as in the table (what a study without
    ``--objective`` ranks by); for an accuracy column (:meth:`BenchmarkTable.accuracy_divisor`)
    also ``val_acc`` as a fraction (the column / 100 for a table in percent), comparable with
    trained studies; every cost column (name containing params, flops, latency or size),
    ``lookup_us``, and the built costs ``params`` and ``flops`` when the table has no such
    column: measured by building the space's network (cached per architecture), only when an
    objective (``objectives``, passed by the study set-up) or a constraint uses them. The
    architecture is looked up by its notation as given, else by its canonical form's notation.
    The budget records the table's name (:func:`table_name`) and the metric.
    """

    name = "tabular"
    takes_objectives = True
    OPTIONS = (
        Option("table", "str", None, "required: a CSV/Parquet path, or an embedded table (nb201)"),
        Option("metric", "str", None, "column to read (default: val_acc, if the table has it)"),
        Option("constraints", "list[str]", None, 'on a column or params/flops: "params<=1e6"'),
        Option("network", "dict", None, "NetShape fields built costs are measured at (CIFAR-10's)"),
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        table: str | None = None,
        metric: str | None = None,
        constraints: Any = None,
        objectives: Any = None,
        network: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        common = pop_common_options(options)
        options.pop("epochs", None)  # the search passes --epochs to every evaluator; unused here
        reject_unknown_options(self, options)
        if not table:
            raise ConfigError(
                "the tabular evaluator needs --table (a CSV or Parquet file, or an embedded "
                f"table: {', '.join(EMBEDDED_TABLES)})"
            )
        loaded = BenchmarkTable.load(table)
        metric = metric or default_metric(loaded)
        if metric is None:
            raise ConfigError(
                f"pass --metric COLUMN for table {table}; columns: {', '.join(loaded.columns)}"
            )
        loaded.column(metric)
        self.table_path = str(table)
        self.metric = metric
        self.divisor = loaded.accuracy_divisor(metric)
        self.built = [cost for cost in BUILT if cost not in loaded.columns]
        self.constraints: tuple[Constraint, ...] = parse_constraints(
            constraints, [*loaded.columns, *self.built]
        )
        wanted = set(_names(objectives)) | metrics_of(self.constraints)
        self.measured = [cost for cost in self.built if cost in wanted]
        """The built costs every lookup reports (an objective or a constraint uses them)."""
        super().__init__(space, **common, table=self.table_path, metric=metric)
        if self.constraints:
            self.options["constraints"] = [str(c) for c in self.constraints]
        if not isinstance(network, dict | None):
            raise ConfigError(
                f"tabular: network must be a mapping of NetShape fields, got {network!r}"
            )
        self.costs = NetworkCosts(space, NetShape.from_dict(network or CIFAR10_NETWORK))
        self._check_covers_space()

    def _check_covers_space(self, tries: int = 8) -> None:
        """Refuse a table of another space before any trial: the first rows' architectures
        must read as genotypes of this space."""
        problem = "the table is empty"
        for arch in self.table.archs[:tries]:
            try:
                self.space.validate(self.space.from_notation(arch))
                return
            except (InvalidGenotypeError, ValueError, KeyError, TypeError) as exc:
                problem = f"{arch[:60]!r}: {exc}"
        raise ConfigError(
            f"benchmark table {self.table.name} does not hold architectures "
            f"of space {self.space.name!r} ({problem})"
        )

    @property
    def table(self) -> BenchmarkTable:
        return BenchmarkTable.load(self.table_path)

    def cost_columns(self, table: BenchmarkTable | None = None) -> list[str]:
        table = self.table if table is None else table
        return [c for c in table.columns if any(word in c for word in COST_WORDS)]

    def metric_names(self) -> list[str]:
        alias = ["val_acc"] if self.divisor is not None else []
        names = [self.metric, *alias, *self.cost_columns(), *self.built, "lookup_us"]
        return list(dict.fromkeys(names))

    def default_objective(self) -> tuple[str, Direction]:
        return self.metric, Direction.default_for(self.metric)

    def resolve_budget(self, budget: Budget | None) -> Budget:
        budget = budget or Budget()
        source = {"table": self.table.name, "metric": self.metric}
        return budget.replace(extra={**budget.extra, **source})

    def arch_string(self, genotype: Genotype, table: BenchmarkTable | None = None) -> str:
        """The table key of a genotype: its notation if present, else its canonical notation."""
        try:
            candidates = notations(self.space, genotype)
        except InvalidGenotypeError as exc:
            raise ArchitectureNotInTable(f"genotype is not in this space: {exc}") from None
        table = self.table if table is None else table
        for arch in candidates:
            if arch in table:
                return arch
        raise ArchitectureNotInTable(
            f"architecture {candidates[0]!r} is not in benchmark table {table.name}"
        )

    def _constrained(self, genotype: Genotype, row: int) -> dict[str, float]:
        """Every table column of ``row`` and the built costs a constraint reads."""
        table = self.table
        every = {c: float(table.column(c)[row]) for c in table.columns}
        needed = [cost for cost in self.built if cost in metrics_of(self.constraints)]
        return {**every, **self.costs.measure(genotype, needed)}

    def precheck(self, genotype: Genotype, budget: Budget) -> str | None:
        """The first constraint the architecture's row (and built costs) break, if any."""
        if not self.constraints:
            return None
        row = self.table.row(self.arch_string(genotype))
        return violation(self.constraints, self._constrained(genotype, row))

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        start = time.perf_counter()
        table = self.table  # one look at the file per trial
        arch = self.arch_string(genotype, table)
        row = table.row(arch)
        columns = list(dict.fromkeys([self.metric, *self.cost_columns(table)]))
        metrics = {c: float(table.column(c)[row]) for c in columns}
        if self.constraints:
            reason = violation(self.constraints, self._constrained(genotype, row))
            if reason is not None:
                raise ConstraintViolation(reason)
        if self.divisor is not None:
            metrics["val_acc"] = metrics[self.metric] / self.divisor
        metrics["lookup_us"] = (time.perf_counter() - start) * 1e6
        metrics.update(self.costs.measure(genotype, self.measured))
        return EvalResult(metrics, epochs_run=0)


def _names(objectives: Any) -> list[str]:
    """Metric names from ``objectives``: None, a comma list or a list of names."""
    if objectives is None:
        return []
    if isinstance(objectives, str):
        return [name.strip() for name in objectives.split(",")]
    return [str(name) for name in objectives]
