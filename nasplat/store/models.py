"""SQLAlchemy 2.x tables of the store (in the spirit of Optuna's schema)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 3
"""1: the tables; 2: the loop's indexes; 3: the search processes' heartbeats (``drivers``).
An older store is upgraded when a writing command opens it."""


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "nasplat_schema"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class StudyRow(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    space: Mapped[str] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(64))
    evaluator: Mapped[str] = mapped_column(String(64))
    objectives: Mapped[list] = mapped_column(JSON)  # [[metric, "maximize"|"minimize"], ...]
    config: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ArchitectureRow(Base):
    __tablename__ = "architectures"
    __table_args__ = (UniqueConstraint("space", "hash", name="uq_arch_space_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    genotype: Mapped[str] = mapped_column(Text)  # canonical genotype JSON


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number", name="uq_trial_study_number"),
        # the loop's "already evaluated?" and the best trial: one index seek each
        Index("ix_trials_study_arch_budget", "study_id", "architecture_id", "budget_key", "number"),
        Index("ix_trials_study_state_value", "study_id", "state", "value"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    budget: Mapped[dict] = mapped_column(JSON)
    budget_key: Mapped[str] = mapped_column(String(512))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    tag: Mapped[str | None] = mapped_column(String(64), nullable=True)  # e.g. "retrain", "rung-1"
    retries: Mapped[int] = mapped_column(Integer, default=0)


class TrialValueRow(Base):
    __tablename__ = "trial_values"
    __table_args__ = (UniqueConstraint("trial_id", "key", name="uq_trial_value_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)


class IntermediateValueRow(Base):
    __tablename__ = "intermediate_values"
    __table_args__ = (UniqueConstraint("trial_id", "key", "step", name="uq_intermediate_step"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(128), default="value")
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)


class StrategyCheckpointRow(Base):
    __tablename__ = "strategy_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[dict] = mapped_column(JSON)


class TrialArtifactRow(Base):
    __tablename__ = "trial_artifacts"
    __table_args__ = (UniqueConstraint("trial_id", "kind", name="uq_artifact_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))  # "weights": torch.save'd state dict
    data: Mapped[bytes] = mapped_column(LargeBinary)


class DriverRow(Base):
    """A search process working on the store, and when it last said it was alive (see
    :mod:`nasplat.store.owners`)."""

    __tablename__ = "drivers"
    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
