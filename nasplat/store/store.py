"""The Store: every study, architecture and trial in one SQL database.

Thread and process safety: every public method runs in its own transaction. On SQLite, a
method that writes starts with ``BEGIN IMMEDIATE`` (one writer at a time) and "database is
locked" is retried; a method that only reads starts a deferred transaction, which in WAL mode
never takes the write lock, so readers do not stall a running search. Trial numbers are unique
per study in the schema, so concurrent writers never hand out the same number.

Every method runs SQLAlchemy Core statements on the tables of :mod:`nasplat.store.models` (no
ORM: importing the store never imports ``sqlalchemy.orm``). The trial loop's calls
(``create_trial``, ``finish_trial``, ``find_evaluated``) run on one connection, one short
transaction each, and every per-trial query is an index seek (cost independent of the study's
size). Those statements are built once per process with bound parameters (:func:`_hot`):
SQLAlchemy memoizes a statement object's cache key, so a trial pays for executing them, not for
building and hashing them (which cost more than SQLite's own work). On SQLite they are compiled
once per store and run on the driver's connection inside SQLAlchemy's transaction, with the
bind conversions of their column types (:class:`_Prepared`): SQLAlchemy's per-execution
machinery was still most of a trial's store time.

The store follows :class:`nasplat.store.protocol.TrialStore`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import (
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from nasplat.budget import Budget
from nasplat.direction import Direction
from nasplat.errors import StorageError, StudyExistsError
from nasplat.genotype import Genotype
from nasplat.store import models
from nasplat.store.models import SCHEMA_VERSION
from nasplat.store.owners import alive as owners_alive
from nasplat.store.owners import current_owner
from nasplat.store.records import (
    ANY_TAG,
    EVALUATED,
    FINISHED,
    FULL,
    INTERRUPTED,
    INTERRUPTED_ERROR,
    NEW,
    RUNNING_ELSEWHERE,
    STATES,
    Claim,
    StudyRecord,
    TrialRecord,
    checked_objectives,
)
from nasplat.store.wal import WAL_BOUND_PAGES, WalCheckpointer

DEFAULT_STORAGE = "sqlite:///nasplat.db"
SCHEMA_LOCK = 0x6E617370  # PostgreSQL advisory lock held while the schema is created
READ_ONLY = "nasplat_read_only"  # execution option: a deferred (reading) transaction
T = TypeVar("T")


def resolve_storage_url(url: str | None) -> str:
    """``url``, else ``$NASPLAT_STORAGE``, else the SQLite file in the working folder; a
    relative SQLite path is made absolute, so worker processes in other folders (Ray) open
    the same file."""
    url = url or os.environ.get("NASPLAT_STORAGE") or DEFAULT_STORAGE
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # reported by _make_engine
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        if not database.startswith("file:") and not os.path.isabs(database):
            return parsed.set(database=os.path.abspath(database)).render_as_string(
                hide_password=False
            )
    return url


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _make_engine(url: str, create: bool = True) -> tuple[Engine, WalCheckpointer | None]:
    """The engine, and for a SQLite file opened for writing the thread that checkpoints its
    WAL (its commits checkpoint only past :data:`WAL_BOUND_PAGES`; :mod:`nasplat.store.wal`)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            f"bad storage URL {url!r} (expected e.g. sqlite:///nasplat.db)"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        try:
            return create_engine(url, pool_pre_ping=True, future=True), None
        except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
            raise StorageError(f"cannot use storage URL {url!r}: {exc}") from None
    database = parsed.database or ""
    memory = database in ("", ":memory:")
    read_only_uri = None
    if not memory and not database.startswith("file:"):
        folder = os.path.dirname(os.path.abspath(database))
        if not os.path.isdir(folder):
            raise StorageError(f"cannot open storage {url!r}: folder {folder} does not exist")
        read_only_uri = check_sqlite_file(database, create=create)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    reading_only = not create and read_only_uri is not None
    if reading_only:
        import sqlite3

        def connect() -> Any:
            return sqlite3.connect(read_only_uri, uri=True, timeout=60, check_same_thread=False)

        kwargs = {"creator": connect}
    engine = create_engine(url, **kwargs)
    checkpointer = (
        WalCheckpointer(database) if read_only_uri is not None and not reading_only else None
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        if reading_only:
            cursor.execute("PRAGMA query_only=ON")
        elif not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if checkpointer is not None:
                cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_BOUND_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        reading = reading_only or conn.get_execution_options().get(READ_ONLY, False)
        conn.connection.driver_connection.execute("BEGIN" if reading else "BEGIN IMMEDIATE")

    if checkpointer is not None:

        @event.listens_for(engine, "commit")
        def _on_commit(conn: Any) -> None:
            if not conn.get_execution_options().get(READ_ONLY, False):
                checkpointer.committed()

    return engine, checkpointer


TRIAL_PAGE = 2000
"""Trials :meth:`Store.trials` reads per read transaction."""


# --- opening: a store refuses a file that is not its own, before writing a byte -------------
SQLITE_HEADER = b"SQLite format 3\x00"
QUICK_CHECK_MAX_BYTES = 256 * 2**20
"""Files up to this size get ``PRAGMA quick_check`` (a full read) when opened; larger ones only
the header and schema checks (a damaged page there is reported when it is read)."""


def check_sqlite_file(path: str, *, create: bool) -> str:
    """Check that the SQLite file at ``path`` is a nasplat store (or, ``create``, absent or
    empty), reading it only; returns the read-only URI to open it with. A StorageError names
    what is wrong: no store there (``create=False``), not a SQLite file, a damaged one, or
    another application's database. Nothing is written in any case."""
    from urllib.parse import quote

    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise StorageError(f"{path} is a folder, not a nasplat store")
    if not os.path.exists(path):
        if create:
            return ""
        raise StorageError(f"no store at {path} (run `nasplat search` to create one)")
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not header:
        if create:
            return ""
        raise StorageError(f"no store at {path} (the file is empty)")
    if not header.startswith(SQLITE_HEADER):
        raise StorageError(f"{path} is not a SQLite database, so not a nasplat store; left as is")
    folder = os.path.dirname(path)
    writable = os.access(path, os.W_OK) and os.access(folder, os.W_OK)
    # read-only media: immutable, or SQLite would try to create the WAL index next to the file
    uri = f"file:{quote(path)}?mode=ro" + ("" if writable else "&immutable=1")
    # with no WAL file there is nothing but the file to read: immutable, so that the check
    # leaves no WAL or index file behind next to a file it then refuses
    quiet = writable and not os.path.exists(path + "-wal")
    tables = _sqlite_tables(path, uri + ("&immutable=1" if quiet else ""))
    if not tables:
        if create:
            return uri
        raise StorageError(f"no store at {path} (an empty database)")
    if _SCHEMA.name not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StorageError(
            f"{path} is another application's database (tables: {shown}), not a nasplat "
            "store; left as is"
        )
    return uri


def _sqlite_tables(path: str, uri: str) -> set[str]:
    """The table names of a SQLite file opened read-only (StorageError when it is damaged)."""
    import sqlite3

    try:
        connection = sqlite3.connect(uri, uri=True, timeout=60)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {path}: {exc}") from None
    try:
        names = {
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith("sqlite_")
        }
        if os.path.getsize(path) <= QUICK_CHECK_MAX_BYTES:
            problems = [row[0] for row in connection.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError(problems[0])
        return names
    except sqlite3.OperationalError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path} is damaged ({exc}); left as is") from None
    finally:
        connection.close()


class Store:
    """Studies, architectures, trials, values, intermediate values, checkpoints, weights."""

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        """The store at ``url``. ``create=False`` (the commands that only read): never create
        or change anything; no store there is a StorageError, and a SQLite file is opened
        read-only (so a store on read-only media can be read)."""
        self.url = resolve_storage_url(url)
        self.create = create
        self.engine, self._checkpointer = _make_engine(self.url, create)
        if self._checkpointer is not None:  # an unclosed store's thread stops when it goes
            weakref.finalize(self, self._checkpointer.close)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self._arch_ids: dict[tuple[str, str], int] = {}  # committed rows only (never deleted)
        self._driver = self.engine.dialect.name == "sqlite"  # hot statements on the driver
        self._prepared: dict[tuple[Any, tuple[str, ...] | None], _Prepared] = {}
        # SQLite: the loop's writes reuse one connection (no pool checkout per transaction)
        self._writer: Connection | None = None
        self._writer_lock = threading.Lock()
        try:
            if create:
                self._prepare_schema()
            else:
                self._check_schema()
        except DatabaseError as exc:
            self.engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StorageError(f"cannot open storage {self.safe_url}: {reason}") from None
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()

    # --- plumbing ---------------------------------------------------------------------------
    def _check_schema(self) -> None:
        """Without writing: a store must be here, of this version or an older one (read as
        it is; only a writing open upgrades it)."""
        with self._reading() as connection:
            found = None
            if self.engine.dialect.has_table(connection, _SCHEMA.name):
                found = connection.scalar(select(_SCHEMA.c.version))
        if found is None:
            raise StorageError(f"no store at {self.safe_url}")
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"store {self.safe_url} has schema version {found}; this nasplat uses "
                f"version {SCHEMA_VERSION} (use a matching nasplat)"
            )

    def _prepare_schema(self) -> None:
        """Create the schema, or check and upgrade the one there, in one writing transaction
        (processes opening a new store together: one creates it, the others find it)."""
        with self._writing() as connection:
            if connection.dialect.name == "postgresql":  # DDL does not lock like SQLite's BEGIN
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            found = None
            if self.engine.dialect.has_table(connection, _SCHEMA.name):
                found = connection.scalar(select(_SCHEMA.c.version))
            else:
                self._check_foreign(connection)
            if found is not None and found < SCHEMA_VERSION:
                self._upgrade_schema(connection, found)
                found = SCHEMA_VERSION
            if found is not None and found != SCHEMA_VERSION:
                raise StorageError(
                    f"store {self.safe_url} has schema version {found}; this nasplat uses "
                    f"version {SCHEMA_VERSION} (use a new storage URL or a matching nasplat)"
                )
            if found is None:
                models.metadata.create_all(connection)
                connection.execute(insert(_SCHEMA).values(version=SCHEMA_VERSION))

    def _check_foreign(self, connection: Connection) -> None:
        """A database without nasplat's schema table must not hold tables of nasplat's names
        (another application's ``studies``): refused before anything is created."""
        from sqlalchemy import inspect

        taken = set(inspect(connection).get_table_names()) & set(models.metadata.tables)
        if taken:
            raise StorageError(
                f"{self.safe_url} holds another application's tables "
                f"({', '.join(sorted(taken))}), not a nasplat store; left as is"
            )

    def _upgrade_schema(self, connection: Connection, found: int) -> None:
        """Bring an older store up to this version (inside the caller's writing transaction)."""
        if found < 2:  # the loop's indexes
            for index in _TRIALS.indexes:
                index.create(connection, checkfirst=True)
        if found < 3:  # the search processes' heartbeats
            _DRIVERS.create(connection, checkfirst=True)
        if found < 4:  # redundant indexes
            for name in models.DROPPED_INDEXES:
                connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        connection.execute(update(_SCHEMA).values(version=SCHEMA_VERSION))

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A writing transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A reading transaction: deferred on SQLite, so it never waits for the write lock."""
        with self._reader.begin() as connection:
            yield connection

    def _retry(self, fn: Callable[[Connection], T], attempts: int = 20) -> T:
        """Run ``fn`` in a writing transaction, retrying when the database is briefly locked."""
        return _retrying(lambda: self._in_transaction(fn), attempts)

    def _in_transaction(self, fn: Callable[[Connection], T]) -> T:
        with self._writing() as connection:
            return fn(connection)

    def _run(
        self,
        connection: Connection,
        statement: Any,
        params: Any,
        *,
        many: bool = False,
        new_id: bool = False,
    ) -> tuple[int, Any]:
        """Execute one of the hot statements (:func:`_hot`): ``(rowcount, first row or None)``;
        ``new_id``: the row is the new row's ``(id,)`` of an INSERT (see the module doc)."""
        if not self._driver:
            result = connection.execute(statement, params)
            if new_id:
                return result.rowcount, tuple(result.inserted_primary_key)
            return result.rowcount, result.first() if result.returns_rows else None
        keys = tuple(params[0] if many else params) if isinstance(statement, Insert) else None
        prepared = self._prepared.get((statement, keys))
        if prepared is None:
            prepared = _Prepared(statement, connection.dialect, keys)
            self._prepared[(statement, keys)] = prepared
        driver = connection.connection.driver_connection
        if many:
            cursor = driver.executemany(prepared.sql, [prepared.args(p) for p in params])
            return cursor.rowcount, None
        cursor = driver.execute(prepared.sql, prepared.args(params))
        if new_id:
            return cursor.rowcount, (cursor.lastrowid,)
        return cursor.rowcount, cursor.fetchone() if cursor.description is not None else None

    def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a connection in one writing transaction (Core statements, no ORM),
        retrying when the database is briefly locked."""

        def attempt() -> T:
            if not self._driver:
                with self.engine.begin() as connection:
                    return fn(connection)
            with self._writer_lock:
                if self._writer is None or self._writer.invalidated:
                    self._writer = self.engine.connect()
                with self._writer.begin():
                    return fn(self._writer)

        return _retrying(attempt)

    # --- studies ----------------------------------------------------------------------------
    def create_study(
        self,
        name: str,
        *,
        space: str,
        strategy: str,
        evaluator: str,
        objectives: Sequence[tuple[str, str]],
        config: dict[str, Any],
    ) -> StudyRecord:
        objectives = checked_objectives(objectives)

        def create(connection: Connection) -> StudyRecord:
            taken = select(_STUDIES.c.id).where(_STUDIES.c.name == name)
            if connection.scalar(taken) is not None:
                raise StudyExistsError(
                    f"study {name!r} already exists in {self.safe_url}; use --resume to continue "
                    "it or --study to pick another name"
                )
            values = {
                "name": name,
                "space": space,
                "strategy": strategy,
                "evaluator": evaluator,
                "objectives": [[metric, str(direction)] for metric, direction in objectives],
                "config": config,
                "created_at": utcnow(),
            }
            result = connection.execute(insert(_STUDIES).values(values))
            return self._study_record(SimpleNamespace(id=result.inserted_primary_key[0], **values))

        try:
            return self._retry(create)
        except IntegrityError:  # PostgreSQL: another process created it since the check
            raise StudyExistsError(f"study {name!r} already exists in {self.safe_url}") from None

    def get_study(self, name: str) -> StudyRecord:
        with self._reading() as connection:
            row = connection.execute(select(_STUDIES).where(_STUDIES.c.name == name)).first()
            if row is None:
                known = (
                    ", ".join(connection.scalars(select(_STUDIES.c.name).order_by(_STUDIES.c.id)))
                    or "none"
                )
                raise StorageError(f"no study {name!r} in {self.safe_url} (studies: {known})")
            return self._study_record(row)

    def study_names(self) -> list[str]:
        """Every study's name, oldest first."""
        with self._reading() as connection:
            return list(connection.scalars(select(_STUDIES.c.name).order_by(_STUDIES.c.id)))

    def has_study(self, name: str) -> bool:
        with self._reading() as connection:
            found = connection.scalar(select(_STUDIES.c.id).where(_STUDIES.c.name == name))
            return found is not None

    def list_studies(self) -> list[dict[str, Any]]:
        """One summary per study: counts by state and the best objective value."""
        with self._reading() as connection:
            rows = connection.execute(select(_STUDIES).order_by(_STUDIES.c.id)).all()
            counts = connection.execute(
                select(_TRIALS.c.study_id, _TRIALS.c.state, func.count()).group_by(
                    _TRIALS.c.study_id, _TRIALS.c.state
                )
            ).all()
            best_max = dict(
                connection.execute(
                    select(_TRIALS.c.study_id, func.max(_TRIALS.c.value))
                    .where(_TRIALS.c.state == "COMPLETE")
                    .group_by(_TRIALS.c.study_id)
                ).all()
            )
            best_min = dict(
                connection.execute(
                    select(_TRIALS.c.study_id, func.min(_TRIALS.c.value))
                    .where(_TRIALS.c.state == "COMPLETE")
                    .group_by(_TRIALS.c.study_id)
                ).all()
            )
        by_study: dict[int, dict[str, int]] = {}
        for study_id, state, count in counts:
            by_study.setdefault(study_id, {})[state] = count
        out = []
        for row in rows:
            c = by_study.get(row.id, {})
            objective, direction = row.objectives[0]
            best = (best_max if Direction.parse(direction).sign > 0 else best_min).get(row.id)
            out.append(
                {
                    "name": row.name,
                    "space": row.space,
                    "strategy": row.strategy,
                    "evaluator": row.evaluator,
                    "objective": objective,
                    "direction": direction,
                    "trials": sum(c.values()),
                    **{state.lower(): c.get(state, 0) for state in STATES},
                    "best_value": best,
                    "created_at": _as_utc(row.created_at).isoformat(timespec="seconds"),
                }
            )
        return out

    def delete_study(self, name: str) -> None:
        study = self.get_study(name)

        def remove(connection: Connection) -> None:
            trial_ids = select(_TRIALS.c.id).where(_TRIALS.c.study_id == study.id)
            for table in (_VALUES, _INTERMEDIATE, _ARTIFACTS):
                connection.execute(delete(table).where(table.c.trial_id.in_(trial_ids)))
            connection.execute(delete(_TRIALS).where(_TRIALS.c.study_id == study.id))
            connection.execute(delete(_CHECKPOINTS).where(_CHECKPOINTS.c.study_id == study.id))
            connection.execute(delete(_STUDIES).where(_STUDIES.c.id == study.id))

        self._retry(remove)

    def setdefault_study_config(self, study_id: int, key: str, value: Any) -> Any:
        def settle(connection: Connection) -> Any:
            query = select(_STUDIES.c.config).where(_STUDIES.c.id == study_id)
            if connection.dialect.name == "postgresql":
                query = query.with_for_update()
            row = connection.execute(query).first()
            if row is None:
                raise StorageError(f"no study with id {study_id}")
            config = dict(row.config or {})
            if config.get(key) is None:
                config[key] = value
                connection.execute(
                    update(_STUDIES).where(_STUDIES.c.id == study_id).values(config=config)
                )
            return config[key]

        return self._retry(settle)

    # --- trials -----------------------------------------------------------------------------
    def create_trial(
        self,
        study_id: int,
        genotype: Genotype,
        budget: Budget,
        *,
        worker: str | None = None,
        tag: str | None = None,
    ) -> TrialRecord:
        """A new RUNNING trial with the next number in its study (``genotype`` canonical)."""

        def create(connection: Connection) -> tuple[Claim, int]:
            arch_id, _ = self._upsert_architecture(connection, genotype)
            trial = self._insert_trial(
                connection, study_id, arch_id, genotype, budget, worker=worker, tag=tag
            )
            return Claim(NEW, trial), arch_id

        return self._claiming(create, genotype).trial

    def claim_trial(
        self,
        study_id: int,
        genotype: Genotype,
        budget: Budget,
        *,
        tag: str | None = None,
        limit: int | None = None,
        owner: str | None = None,
    ) -> Claim:
        """Claim the evaluation of ``genotype`` (canonical) at ``budget`` for ``owner``, in one
        transaction that no other process interleaves with (the study row is locked on
        PostgreSQL; SQLite has one writer at a time): the trial that evaluated it already, the
        one evaluating it now in another process, ``full`` when the study already has
        ``limit`` counted trials with ``tag`` (RUNNING ones included; orphans are interrupted
        first), or a new RUNNING trial owned by ``owner``."""
        key = budget.key()

        def claim(connection: Connection) -> tuple[Claim, int]:
            hot = _hot()
            if connection.dialect.name == "postgresql":
                connection.execute(hot.lock_study, {"study_id": study_id})
            arch_id, new = self._upsert_architecture(connection, genotype)
            if not new:  # a new architecture has no trial yet
                # one statement (one snapshot, also in PostgreSQL's READ COMMITTED): an evaluated
                # trial first, else a running one
                found = self._evaluated(connection, study_id, arch_id, key, genotype, hot.claimed)
                if found is not None and found.state != "RUNNING":
                    return Claim(EVALUATED, found), arch_id
                if found is not None and found.worker != owner:
                    if not self._orphans(connection, study_id, [found.id], spare=owner):
                        return Claim(RUNNING_ELSEWHERE, found), arch_id
            number = self._run(connection, hot.next_number, {"study_id": study_id})[1][0]
            # numbers bound the count from above: it is only taken near the limit
            if limit is not None and number >= limit:
                if self._full(connection, study_id, tag, limit, owner):
                    return Claim(FULL), arch_id
            trial = self._insert_trial(
                connection,
                study_id,
                arch_id,
                genotype,
                budget,
                worker=owner,
                tag=tag,
                number=number,
            )
            return Claim(NEW, trial), arch_id

        return self._claiming(claim, genotype)

    def _claiming(self, fn: Callable[[Connection], tuple[Claim, int]], genotype: Genotype) -> Claim:
        for _ in range(50):
            try:
                claim, arch_id = self._write(fn)
            except (IntegrityError, sqlite3.IntegrityError):  # another process took the number
                time.sleep(0.01)
                continue
            self._arch_ids[(genotype.space, genotype.sha)] = arch_id  # committed now
            return claim
        raise StorageError("could not allocate a trial number after 50 attempts")

    def _full(
        self, connection: Connection, study_id: int, tag: str | None, limit: int, owner: str | None
    ) -> bool:
        """Whether the study has ``limit`` trials with ``tag`` RUNNING or finished (after
        interrupting orphans, when it has)."""
        hot = _hot()
        count = hot.count_untagged if tag is None else hot.count_tagged
        params = {"study_id": study_id, "tag": tag}
        if self._run(connection, count, params)[1][0] < limit:
            return False
        if not self._orphans(connection, study_id, None, spare=owner):
            return True
        return self._run(connection, count, params)[1][0] >= limit

    def _orphans(
        self,
        connection: Connection,
        study_id: int,
        trial_ids: list[int] | None,
        *,
        spare: str | None,
    ) -> int:
        """Mark the study's RUNNING trials (``trial_ids``: only those) whose owner process is
        dead INTERRUPTED; ``spare``: an owner taken as alive whatever its state. Returns how
        many."""
        running = self._running(connection, study_id, trial_ids)
        if not running:
            return 0
        owners = {worker for _, worker in running if worker and worker != spare}
        beats = {}
        if owners:
            heartbeats = select(_DRIVERS.c.owner, _DRIVERS.c.heartbeat_at)
            beats = dict(connection.execute(heartbeats.where(_DRIVERS.c.owner.in_(owners))).all())
        now = utcnow()
        dead = [
            trial_id
            for trial_id, worker in running
            if not (spare is not None and worker == spare)
            and not owners_alive(worker, _as_utc(beats.get(worker)), now)
        ]
        return self._mark_interrupted(connection, dead)

    @staticmethod
    def _running(
        connection: Connection, study_id: int, trial_ids: list[int] | None
    ) -> list[tuple[int, str | None]]:
        """``(id, owner)`` of the study's RUNNING trials (``trial_ids``: only those)."""
        query = select(_TRIALS.c.id, _TRIALS.c.worker).where(
            _TRIALS.c.study_id == study_id, _TRIALS.c.state == "RUNNING"
        )
        if trial_ids is not None:
            query = query.where(_TRIALS.c.id.in_(trial_ids))
        return [(trial_id, worker) for trial_id, worker in connection.execute(query)]

    @staticmethod
    def _mark_interrupted(connection: Connection, trial_ids: list[int]) -> int:
        """Mark these trials INTERRUPTED, now; returns how many."""
        if trial_ids:
            connection.execute(
                update(_TRIALS)
                .where(_TRIALS.c.id.in_(trial_ids))
                .values(state=INTERRUPTED, error=INTERRUPTED_ERROR, finished_at=utcnow())
            )
        return len(trial_ids)

    def interrupt_orphans(
        self, study_id: int, trial_ids: Iterable[int] | None = None, *, mine: bool = False
    ) -> int:
        """Mark the study's RUNNING trials (``trial_ids``: only those) whose owner process is
        dead INTERRUPTED (``mine``: also this process's own). Returns how many."""
        wanted = None if trial_ids is None else list(trial_ids)
        spare = None if mine else current_owner()
        return self._write(lambda c: self._orphans(c, study_id, wanted, spare=spare))

    def beat(self, owner: str) -> None:
        """Say that search process ``owner`` is alive now."""

        def write(connection: Connection) -> None:
            values = {"owner": owner, "heartbeat_at": utcnow()}
            done = connection.execute(
                update(_DRIVERS).where(_DRIVERS.c.owner == owner).values(values)
            ).rowcount
            if not done:
                connection.execute(insert(_DRIVERS).values(values))

        self._write(write)

    def end_beat(self, owner: str) -> None:
        """Search process ``owner`` has stopped."""
        self._write(lambda c: c.execute(delete(_DRIVERS).where(_DRIVERS.c.owner == owner)))

    def _insert_trial(
        self,
        connection: Connection,
        study_id: int,
        arch_id: int,
        genotype: Genotype,
        budget: Budget,
        *,
        worker: str | None,
        tag: str | None,
        number: int | None = None,
    ) -> TrialRecord:
        hot = _hot()
        if number is None:
            number = self._run(connection, hot.next_number, {"study_id": study_id})[1][0]
        values = {
            "study_id": study_id,
            "number": number,
            "architecture_id": arch_id,
            "state": "RUNNING",
            "budget": budget.to_dict(),
            "budget_key": budget.key(),
            "value": None,
            "started_at": utcnow(),
            "finished_at": None,
            "worker": worker,
            "error": None,
            "tag": tag,
            "retries": 0,
        }
        row = SimpleNamespace(
            id=self._run(connection, hot.insert_trial, values, new_id=True)[1][0], **values
        )
        return self._trial_record(row, genotype.sha, genotype, {}, ())

    def _upsert_architecture(self, connection: Connection, genotype: Genotype) -> tuple[int, bool]:
        """The architecture's id and whether this call inserted its row: ``INSERT ... ON
        CONFLICT DO NOTHING`` where the dialect has it (SQLite, PostgreSQL), else a savepoint."""
        known = self._arch_ids.get((genotype.space, genotype.sha))
        if known is not None:
            return known, False
        values = {"space": genotype.space, "hash": genotype.sha, "genotype": genotype.to_json()}
        key = {"space": genotype.space, "hash": genotype.sha}
        hot = _hot()
        dialect = connection.dialect
        upsert = _upsert_statement(dialect.name, bool(dialect.insert_returning))
        if upsert is not None:
            _, inserted = self._run(connection, upsert, values)  # RETURNING id; None: it was there
            if dialect.insert_returning and inserted is not None:
                return inserted[0], True
            return self._run(connection, hot.architecture_id, key)[1][0], False
        arch_id = connection.scalar(hot.architecture_id, key)
        if arch_id is not None:
            return arch_id, False
        with connection.begin_nested():
            return connection.execute(hot.insert_architecture, values).inserted_primary_key[0], True

    def finish_trial(
        self,
        trial_id: int,
        *,
        state: str,
        value: float | None = None,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
        weights: bytes | None = None,
        keep_weights: str = "best",
        checkpoint: dict[str, Any] | None = None,
        worker: str | None = None,
    ) -> None:
        """Record a trial's end, its values and (optionally) weights and a strategy checkpoint,
        all in one transaction, so a crash never leaves a result without its checkpoint."""
        if state not in FINISHED:
            raise ValueError(f"finish state must be one of {FINISHED}, got {state!r}")

        def finish(connection: Connection) -> None:
            hot = _hot()
            changes: dict[str, Any] = {
                "state": state,
                "value": value,
                "error": error,
                "finished_at": utcnow(),
            }
            if worker is not None:
                changes["worker"] = worker
            statement = hot.finish_with_worker if worker is not None else hot.finish
            if self._run(connection, statement, {"trial_id_": trial_id, **changes})[0] != 1:
                raise StorageError(f"no trial with id {trial_id}")
            self._run(connection, hot.delete_values, {"trial_id_": trial_id})
            if metrics:
                rows = [
                    {"trial_id": trial_id, "key": k, "value": float(v)} for k, v in metrics.items()
                ]
                self._run(connection, hot.insert_values, rows, many=True)
            needs_row = (weights is not None and keep_weights != "none") or checkpoint is not None
            if needs_row:
                study_of, number = self._run(connection, hot.trial_place, {"trial_id_": trial_id})[
                    1
                ]
            if weights is not None and keep_weights != "none":
                finished = SimpleNamespace(id=trial_id, study_id=study_of, number=number, **changes)
                self._keep_weights(connection, finished, weights, keep_weights)
            if checkpoint is not None:
                self._run(
                    connection,
                    hot.insert_checkpoint,
                    {"study_id": study_of, "created_at": utcnow(), "state": checkpoint},
                )

        self._write(finish)

    def _keep_weights(
        self, connection: Connection, row: SimpleNamespace, weights: bytes, policy: str
    ) -> None:
        if policy == "best":
            if row.state != "COMPLETE" or row.value is None:
                return
            objectives = connection.scalar(
                select(_STUDIES.c.objectives).where(_STUDIES.c.id == row.study_id)
            )
            direction = Direction.parse(objectives[0][1])
            holders = connection.execute(
                select(_TRIALS.c.id, _TRIALS.c.value, _TRIALS.c.number)
                .join(_ARTIFACTS, _ARTIFACTS.c.trial_id == _TRIALS.c.id)
                .where(_TRIALS.c.study_id == row.study_id, _ARTIFACTS.c.kind == "weights")
            ).all()
            for _, value, number in holders:
                if value is None:
                    continue
                if direction.better(value, row.value) or (
                    value == row.value and number < row.number
                ):
                    return  # the best trial (earliest on ties, as best_trial) keeps its weights
            ids = [h for h, _, _ in holders]
            if ids:
                connection.execute(delete(_ARTIFACTS).where(_ARTIFACTS.c.trial_id.in_(ids)))
        connection.execute(insert(_ARTIFACTS).values(trial_id=row.id, kind="weights", data=weights))

    def set_trial_architecture(self, trial_id: int, genotype: Genotype) -> None:
        """Link a trial to another (canonical) architecture: a one-shot search's supernet trial
        follows the genotype it currently derives."""

        def relink(connection: Connection) -> None:
            if connection.scalar(select(_TRIALS.c.id).where(_TRIALS.c.id == trial_id)) is None:
                raise StorageError(f"no trial with id {trial_id}")
            arch_id = self._upsert_architecture(connection, genotype)[0]
            connection.execute(
                update(_TRIALS).where(_TRIALS.c.id == trial_id).values(architecture_id=arch_id)
            )

        self._retry(relink)

    def mark_retry(self, trial_id: int, error: str) -> None:
        """Count one retry of a trial whose worker died; it stays RUNNING."""

        def bump(connection: Connection) -> None:
            row = connection.execute(
                select(_TRIALS.c.retries).where(_TRIALS.c.id == trial_id)
            ).first()
            connection.execute(
                update(_TRIALS)
                .where(_TRIALS.c.id == trial_id)
                .values(retries=(row.retries or 0) + 1, error=error)
            )

        self._retry(bump)

    def interrupt_running(self, study_id: int, trial_ids: Iterable[int] | None = None) -> int:
        """Mark a study's RUNNING trials (``trial_ids``: only those) INTERRUPTED: their search
        stopped before they finished. They stay on record and do not count towards the
        budget. Returns how many."""
        wanted = None if trial_ids is None else list(trial_ids)
        if wanted == []:
            return 0

        def interrupt(connection: Connection) -> int:
            running = self._running(connection, study_id, wanted)
            return self._mark_interrupted(connection, [trial_id for trial_id, _ in running])

        return self._write(interrupt)

    def report_intermediate(
        self, trial_id: int, step: int, value: float, key: str = "value"
    ) -> None:
        def report(connection: Connection) -> None:
            existing = connection.scalar(
                select(_INTERMEDIATE.c.id).where(
                    _INTERMEDIATE.c.trial_id == trial_id,
                    _INTERMEDIATE.c.key == key,
                    _INTERMEDIATE.c.step == step,
                )
            )
            if existing is None:
                connection.execute(
                    insert(_INTERMEDIATE).values(trial_id=trial_id, key=key, step=step, value=value)
                )
            else:
                connection.execute(
                    update(_INTERMEDIATE).where(_INTERMEDIATE.c.id == existing).values(value=value)
                )

        self._retry(report)

    def intermediate_values(
        self, trial_id: int, key: str | None = "value"
    ) -> list[tuple[int, float]]:
        with self._reading() as connection:
            query = select(_INTERMEDIATE.c.step, _INTERMEDIATE.c.value).where(
                _INTERMEDIATE.c.trial_id == trial_id
            )
            if key is not None:
                query = query.where(_INTERMEDIATE.c.key == key)
            return [(s, v) for s, v in connection.execute(query.order_by(_INTERMEDIATE.c.step))]

    def intermediate_series(self, trial_id: int) -> dict[str, list[tuple[int, float]]]:
        """Every intermediate series of a trial, by key."""
        with self._reading() as connection:
            rows = connection.execute(
                select(_INTERMEDIATE.c.key, _INTERMEDIATE.c.step, _INTERMEDIATE.c.value)
                .where(_INTERMEDIATE.c.trial_id == trial_id)
                .order_by(_INTERMEDIATE.c.key, _INTERMEDIATE.c.step)
            ).all()
        out: dict[str, list[tuple[int, float]]] = {}
        for key, step, value in rows:
            out.setdefault(key, []).append((step, value))
        return out

    def find_evaluated(
        self, study_id: int, genotype: Genotype, budget: Budget
    ) -> TrialRecord | None:
        """A COMPLETE or PRUNED trial of the same canonical architecture and budget (an index
        seek on (study, architecture, budget))."""
        with self._reader.begin() as connection:
            arch_id = self._arch_ids.get((genotype.space, genotype.sha))
            if arch_id is None:
                arch_id = connection.scalar(
                    _hot().architecture_id, {"space": genotype.space, "hash": genotype.sha}
                )
            if arch_id is None:
                return None
            return self._evaluated(connection, study_id, arch_id, budget.key(), genotype)

    def _evaluated(
        self,
        connection: Connection,
        study_id: int,
        arch_id: int,
        key: str,
        genotype: Genotype,
        statement: Any = None,
    ) -> TrialRecord | None:
        """The study's COMPLETE or PRUNED trial of this architecture at this budget
        (``statement``: another query of the same shape, e.g. ``_hot().claimed``)."""
        hot = _hot()
        row = connection.execute(
            statement if statement is not None else hot.evaluated,
            {"study_id": study_id, "architecture_id": arch_id, "budget_key": key},
        ).first()
        if row is None:
            return None
        metrics = dict(connection.execute(hot.values_of, {"trial_id_": row.id}).all())
        return self._trial_record(row, genotype.sha, genotype, metrics, ())

    def trial_index(self, study_id: int, budget: Budget) -> list[tuple[int, str, str]]:
        """``(number, architecture hash, state)`` of every trial of a study at ``budget``, in
        number order (what the loop needs to know which architectures the study has seen)."""
        with self._reader.begin() as connection:
            rows = connection.execute(
                select(_TRIALS.c.number, _ARCHS.c.hash, _TRIALS.c.state)
                .join(_ARCHS, _ARCHS.c.id == _TRIALS.c.architecture_id)
                .where(_TRIALS.c.study_id == study_id, _TRIALS.c.budget_key == budget.key())
                .order_by(_TRIALS.c.number)
            ).all()
        return [(number, arch_hash, state) for number, arch_hash, state in rows]

    def get_trial(self, trial_id: int) -> TrialRecord:
        with self._reading() as connection:
            row = connection.execute(select(_TRIALS).where(_TRIALS.c.id == trial_id)).first()
            if row is None:
                raise StorageError(f"no trial with id {trial_id}")
            return self._load_trials(connection, [row])[0]

    def trials(
        self,
        study: str | int,
        *,
        states: Iterable[str] | None = None,
        with_intermediate: bool = False,
        since: int = 0,
    ) -> list[TrialRecord]:
        """A study's trials in number order (``since``: those numbered ``since`` or more).

        Read in pages of :data:`TRIAL_PAGE` trials, each in its own short read transaction, so
        a large study's listing never holds one snapshot for seconds: a search writing to the
        same SQLite file meanwhile would pile its commits up in the WAL and pay for copying them
        all back at its next checkpoint. A trial added during the read shows up when its
        number is past the pages already read."""
        study_id = study if isinstance(study, int) else self.get_study(study).id
        out: list[TrialRecord] = []
        after = since - 1
        while True:
            with self._reading() as connection:
                query = select(_TRIALS).where(
                    _TRIALS.c.study_id == study_id, _TRIALS.c.number > after
                )
                if states is not None:
                    query = query.where(_TRIALS.c.state.in_(tuple(states)))
                page = connection.execute(query.order_by(_TRIALS.c.number).limit(TRIAL_PAGE)).all()
                out += self._load_trials(connection, page, with_intermediate)
            if len(page) < TRIAL_PAGE:
                return out
            after = page[-1].number

    def count_trials(
        self, study_id: int, states: Iterable[str] = FINISHED, tag: str | None = ANY_TAG
    ) -> int:
        """Trials in ``states`` with ``tag`` (``None``: untagged only; ANY_TAG: all)."""
        with self._reading() as connection:
            query = select(func.count()).where(
                _TRIALS.c.study_id == study_id, _TRIALS.c.state.in_(tuple(states))
            )
            return connection.scalar(_with_tag(query, tag)) or 0

    def best_trial(self, study: str | int, tag: str | None = ANY_TAG) -> TrialRecord:
        """The COMPLETE trial with the best primary objective (earliest on ties); ``tag`` as
        in :meth:`count_trials`."""
        record = self.get_study(study) if isinstance(study, str) else self._study_by_id(study)
        maximize = record.direction is Direction.MAXIMIZE
        order = _TRIALS.c.value.desc() if maximize else _TRIALS.c.value.asc()
        with self._reading() as connection:
            query = select(_TRIALS).where(
                _TRIALS.c.study_id == record.id,
                _TRIALS.c.state == "COMPLETE",
                _TRIALS.c.value.is_not(None),
            )
            query = _with_tag(query, tag).order_by(order, _TRIALS.c.number).limit(1)
            row = connection.execute(query).first()
            if row is None:
                raise StorageError(f"study {record.name!r} has no completed trial yet")
            return self._load_trials(connection, [row])[0]

    def trial_weights(self, trial_id: int) -> bytes | None:
        with self._reading() as connection:
            return connection.scalar(
                select(_ARTIFACTS.c.data).where(
                    _ARTIFACTS.c.trial_id == trial_id, _ARTIFACTS.c.kind == "weights"
                )
            )

    # --- strategy checkpoints ---------------------------------------------------------------
    def save_checkpoint(self, study_id: int, state: dict[str, Any]) -> None:
        def save(connection: Connection) -> None:
            connection.execute(
                insert(_CHECKPOINTS).values(study_id=study_id, created_at=utcnow(), state=state)
            )

        self._retry(save)

    def load_checkpoint(self, study_id: int) -> dict[str, Any] | None:
        with self._reading() as connection:
            return connection.scalar(
                select(_CHECKPOINTS.c.state)
                .where(_CHECKPOINTS.c.study_id == study_id)
                .order_by(_CHECKPOINTS.c.id.desc())
                .limit(1)
            )

    def prune_checkpoints(self, study_id: int, keep: int = 3) -> None:
        """Delete all but the newest ``keep`` checkpoints of a study."""

        def prune(connection: Connection) -> None:
            ids = connection.scalars(
                select(_CHECKPOINTS.c.id)
                .where(_CHECKPOINTS.c.study_id == study_id)
                .order_by(_CHECKPOINTS.c.id.desc())
                .offset(keep)
            ).all()
            if ids:
                connection.execute(delete(_CHECKPOINTS).where(_CHECKPOINTS.c.id.in_(ids)))

        self._retry(prune)

    # --- tables -----------------------------------------------------------------------------
    def trials_dataframe(self, study: str | int) -> Any:
        """A pandas DataFrame with one row per trial (see :func:`nasplat.store.frames.trials_frame`)."""
        from nasplat.store.frames import trials_frame

        return trials_frame(self.trials(study))

    # --- record building --------------------------------------------------------------------
    @staticmethod
    def _study_record(row: Any) -> StudyRecord:
        return StudyRecord(
            id=row.id,
            name=row.name,
            space=row.space,
            strategy=row.strategy,
            evaluator=row.evaluator,
            objectives=tuple((str(o[0]), str(o[1])) for o in row.objectives),
            config=dict(row.config or {}),
            created_at=_as_utc(row.created_at),
        )

    def _study_by_id(self, study_id: int) -> StudyRecord:
        with self._reading() as connection:
            row = connection.execute(select(_STUDIES).where(_STUDIES.c.id == study_id)).first()
            if row is None:
                raise StorageError(f"no study with id {study_id}")
            return self._study_record(row)

    @staticmethod
    def _trial_record(
        row: Any,
        arch_hash: str,
        genotype: Genotype,
        metrics: dict[str, float],
        intermediate: tuple[tuple[int, float], ...],
    ) -> TrialRecord:
        return TrialRecord(
            id=row.id,
            study_id=row.study_id,
            number=row.number,
            state=row.state,
            genotype=genotype,
            arch_hash=arch_hash,
            budget=dict(row.budget or {}),
            value=row.value,
            metrics=metrics,
            started_at=_as_utc(row.started_at),
            finished_at=_as_utc(row.finished_at),
            worker=row.worker,
            error=row.error,
            tag=row.tag,
            retries=row.retries or 0,
            intermediate=intermediate,
        )

    def _load_trials(
        self, connection: Connection, rows: Sequence[Any], with_intermediate: bool = False
    ) -> list[TrialRecord]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        archs = {
            a.id: a
            for a in connection.execute(
                select(_ARCHS).where(_ARCHS.c.id.in_({r.architecture_id for r in rows}))
            )
        }
        metrics: dict[int, dict[str, float]] = {}
        for trial_id, key, value in connection.execute(
            select(_VALUES.c.trial_id, _VALUES.c.key, _VALUES.c.value).where(
                _VALUES.c.trial_id.in_(ids)
            )
        ):
            metrics.setdefault(trial_id, {})[key] = value
        inter: dict[int, list[tuple[int, float]]] = {}
        if with_intermediate:
            for trial_id, step, value in connection.execute(
                select(_INTERMEDIATE.c.trial_id, _INTERMEDIATE.c.step, _INTERMEDIATE.c.value)
                .where(_INTERMEDIATE.c.trial_id.in_(ids), _INTERMEDIATE.c.key == "value")
                .order_by(_INTERMEDIATE.c.step)
            ):
                inter.setdefault(trial_id, []).append((step, value))
        genotypes: dict[int, Genotype] = {}
        out = []
        for row in rows:
            arch = archs[row.architecture_id]
            if arch.id not in genotypes:
                genotypes[arch.id] = Genotype.from_json(arch.genotype)
            out.append(
                self._trial_record(
                    row,
                    arch.hash,
                    genotypes[arch.id],
                    metrics.get(row.id, {}),
                    tuple(inter.get(row.id, ())),
                )
            )
        return out


def _with_tag(query: Any, tag: str | None) -> Any:
    """``query`` limited to trials with ``tag`` (``None``: untagged; ANY_TAG: no limit)."""
    if tag == ANY_TAG:
        return query
    return query.where(_TRIALS.c.tag.is_(None) if tag is None else _TRIALS.c.tag == tag)


_TRIALS = models.trials
_ARCHS = models.architectures
_VALUES = models.trial_values
_INTERMEDIATE = models.intermediate_values
_STUDIES = models.studies
_DRIVERS = models.drivers
_CHECKPOINTS = models.strategy_checkpoints
_ARTIFACTS = models.trial_artifacts
_SCHEMA = models.nasplat_schema


class _HotStatements:
    """The trial loop's statements, built once with bound parameters (see the module doc)."""

    def __init__(self) -> None:
        trial = bindparam("trial_id_")
        self.architecture_id = select(_ARCHS.c.id).where(
            _ARCHS.c.space == bindparam("space"), _ARCHS.c.hash == bindparam("hash")
        )
        self.insert_architecture = insert(_ARCHS)
        self.next_number = select(func.coalesce(func.max(_TRIALS.c.number) + 1, 0)).where(
            _TRIALS.c.study_id == bindparam("study_id")
        )
        self.insert_trial = insert(_TRIALS)
        self.evaluated = (
            select(_TRIALS)
            .where(
                _TRIALS.c.study_id == bindparam("study_id"),
                _TRIALS.c.architecture_id == bindparam("architecture_id"),
                _TRIALS.c.budget_key == bindparam("budget_key"),
                # not IN (...): an expanding parameter costs more to compile than the query
                or_(_TRIALS.c.state == "COMPLETE", _TRIALS.c.state == "PRUNED"),
            )
            .order_by(_TRIALS.c.number)
            .limit(1)
        )
        running = _TRIALS.c.state == "RUNNING"
        self.claimed = (
            select(_TRIALS)
            .where(
                _TRIALS.c.study_id == bindparam("study_id"),
                _TRIALS.c.architecture_id == bindparam("architecture_id"),
                _TRIALS.c.budget_key == bindparam("budget_key"),
                or_(_TRIALS.c.state == "COMPLETE", _TRIALS.c.state == "PRUNED", running),
            )
            .order_by(case((running, 1), else_=0), _TRIALS.c.number)
            .limit(1)
        )
        counted = (
            select(func.count())
            .select_from(_TRIALS)
            .where(
                _TRIALS.c.study_id == bindparam("study_id"),
                or_(*(_TRIALS.c.state == state for state in ("RUNNING", *FINISHED))),
            )
        )
        self.count_untagged = counted.where(_TRIALS.c.tag.is_(None))
        self.count_tagged = counted.where(_TRIALS.c.tag == bindparam("tag"))
        self.lock_study = (
            select(_STUDIES.c.id).where(_STUDIES.c.id == bindparam("study_id")).with_for_update()
        )
        self.values_of = select(_VALUES.c.key, _VALUES.c.value).where(_VALUES.c.trial_id == trial)
        finish = {c: bindparam(c) for c in ("state", "value", "error", "finished_at")}
        self.finish = update(_TRIALS).where(_TRIALS.c.id == trial).values(finish)
        self.finish_with_worker = (
            update(_TRIALS)
            .where(_TRIALS.c.id == trial)
            .values(finish | {"worker": bindparam("worker")})
        )
        self.delete_values = delete(_VALUES).where(_VALUES.c.trial_id == trial)
        self.insert_values = insert(_VALUES)
        self.trial_place = select(_TRIALS.c.study_id, _TRIALS.c.number).where(_TRIALS.c.id == trial)
        self.insert_checkpoint = insert(_CHECKPOINTS)


class _Prepared:
    """A hot statement compiled once for a dialect (SQLite), with each positional parameter's
    default (a literal such as ``'COMPLETE'``) and its column type's bind conversion (JSON,
    datetime): run on the driver, it stores exactly what SQLAlchemy would."""

    def __init__(self, statement: Any, dialect: Any, keys: tuple[str, ...] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        if not compiled.positional:
            raise ValueError(f"{dialect.name} does not use positional parameters")
        self.sql = str(compiled)
        self.plan = [
            (name, compiled.binds[name].value, compiled.binds[name].type.bind_processor(dialect))
            for name in compiled.positiontup or ()
        ]

    def args(self, params: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            (convert(params.get(name, default)) if convert else params.get(name, default))
            for name, default, convert in self.plan
        )


@cache
def _hot() -> _HotStatements:
    return _HotStatements()


@cache
def _upsert_statement(dialect: str, returning: bool) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING [RETURNING id]`` of an architecture (None: the
    dialect has none)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        return None
    upsert = dialect_insert(_ARCHS).on_conflict_do_nothing(index_elements=["space", "hash"])
    return upsert.returning(_ARCHS.c.id) if returning else upsert


def _retrying(fn: Callable[[], T], attempts: int = 20) -> T:
    """``fn()``, retried when the database is briefly locked."""
    for attempt in range(attempts):
        try:
            return fn()
        except (OperationalError, sqlite3.OperationalError) as exc:
            if "locked" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")
