"""A read-only view of a nasplat store for the dashboards.

The store's own sessions start write transactions on SQLite (``BEGIN IMMEDIATE``), which would
make a dashboard that refreshes every few seconds compete with a running search for the write
lock. The :class:`Reader` opens its own engine instead: on SQLite in autocommit mode with
``PRAGMA query_only`` (WAL readers never block the writer); on other databases plain reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, create_engine, event, func, select
from sqlalchemy.engine import Engine, make_url

from nasplat.direction import Direction
from nasplat.errors import StorageError
from nasplat.store import models
from nasplat.store.store import Store, resolve_storage_url


@dataclass(frozen=True)
class StudyInfo:
    """What the figures need to know about a study."""

    id: int
    name: str
    space: str
    strategy: str
    evaluator: str
    objective: str
    direction: Direction
    config: dict[str, Any]
    objectives: tuple[str, ...] = ()  # every objective's name, the first being ``objective``

    @property
    def maximize(self) -> bool:
        """Whether larger values are better (picks SQL's MAX or MIN, DESC or ASC)."""
        return self.direction is Direction.MAXIMIZE


def _read_engine(url: str) -> Engine | None:
    """A lock-free read engine for a SQLite file; ``None`` for in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if (parsed.database or ":memory:") == ":memory:":
        return None
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit: every SELECT is its own snapshot
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine


class Reader:
    """Read-only SQL access to the studies of one store (thread safe; one pool per reader)."""

    def __init__(self, source: Store | str | None = None) -> None:
        if isinstance(source, Store):
            self.url = source.url
            engine = _read_engine(self.url)
            self._own_engine = engine is not None
            self.engine: Engine = engine if engine is not None else source.engine
            return
        self.url = resolve_storage_url(source)
        # a store must be there; opened to read only (a SQLite file read-only, so a store on
        # read-only media can be shown), nothing is ever written
        store = Store(self.url, create=False)
        self._own_engine = True
        self.engine = store.engine

    @property
    def safe_url(self) -> str:
        """The store's URL with any password hidden (for pages and messages)."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def epoch(self, column: Any) -> Any:
        """A timestamp column as float seconds since the epoch, computed by the database (so
        100k timestamps are not parsed in Python); ``None`` on databases without a way."""
        if self.dialect == "sqlite":  # stored as naive UTC text
            return (func.julianday(column) - 2440587.5) * 86400.0
        if self.dialect == "postgresql":
            return func.extract("epoch", column)
        return None

    def close(self) -> None:
        if self._own_engine:
            self.engine.dispose()

    def execute(self, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
        """All rows of one statement."""
        with self.engine.connect() as conn:
            return list(conn.execute(statement, params or {}))

    def raw(self, statement: Any) -> list[tuple[Any, ...]]:
        """All rows of one statement as the driver returns them, without SQLAlchemy's
        per-row processing: for big reads of plain numbers and text (no JSON or timestamps)."""
        with self.engine.connect() as conn:
            result = conn.execute(statement)
            try:
                return list(result.cursor.fetchall()) if result.cursor is not None else []
            finally:
                result.close()

    def study(self, name: str) -> StudyInfo:
        """A study by name; a StorageError listing the known names if there is none."""
        studies = models.studies
        rows = self.execute(select(studies).where(studies.c.name == name))
        if not rows:
            known = ", ".join(self.study_names()) or "none"
            raise StorageError(f"no study {name!r} in this store (studies: {known})")
        row = rows[0]._mapping
        objective, direction = row["objectives"][0]
        return StudyInfo(
            id=row["id"],
            name=row["name"],
            space=row["space"],
            strategy=row["strategy"],
            evaluator=row["evaluator"],
            objective=str(objective),
            direction=Direction.parse(direction),
            config=dict(row["config"] or {}),
            objectives=tuple(str(o[0]) for o in row["objectives"]),
        )

    def study_names(self) -> list[str]:
        studies = models.studies
        return [r[0] for r in self.execute(select(studies.c.name).order_by(studies.c.id))]

    def version(self, study_id: int | None = None) -> tuple[Any, ...]:
        """A cheap token that changes whenever trials or intermediate values are written."""
        t = models.trials
        trials = select(
            func.count(t.c.id),
            func.count(t.c.finished_at),
            func.max(t.c.id),
            func.coalesce(func.sum(t.c.retries), 0),
            func.sum(case((t.c.state == "PRUNED", 1), else_=0)),
        )
        if study_id is not None:
            trials = trials.where(t.c.study_id == study_id)
        inter = select(func.max(models.intermediate_values.c.id))
        studies = select(func.count(models.studies.c.id))
        with self.engine.connect() as conn:
            return (
                tuple(conn.execute(trials).one()),
                conn.execute(inter).scalar(),
                conn.execute(studies).scalar(),
            )
