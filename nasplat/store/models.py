"""SQLAlchemy Core tables of the store (in the spirit of Optuna's schema).

Plain :class:`~sqlalchemy.Table` objects on one :data:`metadata`, no ORM: importing the store
never imports ``sqlalchemy.orm`` (a good part of a short command's start-up). Columns are read
as ``trials.c.value``; rows come back as Core rows, with attribute access by column name."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 4
"""1: the tables; 2: the loop's indexes; 3: the search processes' heartbeats (``drivers``);
4: four single-column indexes dropped (:data:`DROPPED_INDEXES`). An older store is upgraded
when a writing command opens it."""

DROPPED_INDEXES = (
    "ix_trials_study_id",
    "ix_trials_state",
    "ix_trials_architecture_id",
    "ix_trial_values_trial_id",
)
"""Indexes of versions 1-3 dropped by version 4: a wider index answers their queries (its
leading columns), or nothing queries by them alone (trials are only looked up by architecture
within a study, and architectures are never deleted), yet every trial's two commits wrote
their pages (18 WAL pages per trial of the trivial-objective loop with them, 13 without)."""

metadata = MetaData()

nasplat_schema = Table(
    "nasplat_schema",
    metadata,
    Column("version", Integer, primary_key=True),
)

studies = Table(
    "studies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True, index=True),
    Column("space", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("evaluator", String(64), nullable=False),
    Column("objectives", JSON, nullable=False),  # [[metric, "maximize"|"minimize"], ...]
    Column("config", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

architectures = Table(
    "architectures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("space", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("genotype", Text, nullable=False),  # canonical genotype JSON
    UniqueConstraint("space", "hash", name="uq_arch_space_hash"),
)

trials = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "study_id",
        Integer,
        ForeignKey("studies.id", ondelete="CASCADE"),
        nullable=False,  # indexed by uq_trial_study_number's leading column
    ),
    Column("number", Integer, nullable=False),
    Column(
        "architecture_id",
        Integer,
        ForeignKey("architectures.id"),
        nullable=False,  # looked up with its study: ix_trials_study_arch_budget
    ),
    Column("state", String(16), nullable=False),  # see ix_trials_study_state_value
    Column("budget", JSON, nullable=False),
    Column("budget_key", String(512), nullable=False),
    Column("value", Float, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("worker", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("tag", String(64), nullable=True),  # e.g. "retrain", "rung-1"
    Column("retries", Integer, nullable=False, default=0),
    UniqueConstraint("study_id", "number", name="uq_trial_study_number"),
    # the loop's "already evaluated?" and the best trial: one index seek each
    Index("ix_trials_study_arch_budget", "study_id", "architecture_id", "budget_key", "number"),
    Index("ix_trials_study_state_value", "study_id", "state", "value"),
)

trial_values = Table(
    "trial_values",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "trial_id",
        Integer,
        ForeignKey("trials.id", ondelete="CASCADE"),
        nullable=False,  # indexed by uq_trial_value_key's leading column
    ),
    Column("key", String(128), nullable=False),
    Column("value", Float, nullable=False),
    UniqueConstraint("trial_id", "key", name="uq_trial_value_key"),
)

intermediate_values = Table(
    "intermediate_values",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "trial_id",
        Integer,
        ForeignKey("trials.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("key", String(128), nullable=False, default="value"),
    Column("step", Integer, nullable=False),
    Column("value", Float, nullable=False),
    UniqueConstraint("trial_id", "key", "step", name="uq_intermediate_step"),
)

strategy_checkpoints = Table(
    "strategy_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "study_id",
        Integer,
        ForeignKey("studies.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("state", JSON, nullable=False),
)

trial_artifacts = Table(
    "trial_artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "trial_id",
        Integer,
        ForeignKey("trials.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("kind", String(64), nullable=False),  # "weights": torch.save'd state dict
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("trial_id", "kind", name="uq_artifact_kind"),
)

drivers = Table(
    "drivers",
    metadata,
    Column("owner", String(255), primary_key=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)
"""A search process working on the store, and when it last said it was alive (see
:mod:`nasplat.store.owners`)."""
