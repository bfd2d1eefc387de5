"""SQLAlchemy models: studies, trials, their attempts and intermediate values, workers, tokens.

Rules the rest of the service relies on:
- A trial's `number` is unique within its study and never reused.
- A finished trial (complete, pruned, failed) never changes state again.
- `lease_token` stays on a finished trial so that a repeated complete with the same token is
  recognised as a repeat (idempotent) and one with another token is refused.
- Timestamps are timezone-aware UTC.
- A study's owner (`owner_token_id`, `owner_name`) and a worker id's token (`token_id`) are
  set once; NULL means no owner (admins only) or a worker id that any token may claim.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.domain import (
    AttemptOutcome,
    Direction,
    Role,
    StopKind,
    StudyState,
    TrialState,
)

E = TypeVar("E", bound=StrEnum)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns aware datetimes (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EnumString(TypeDecorator[E]):
    """A domain enum stored as its string value (VARCHAR), read back as the enum member."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    objective: Mapped[str] = mapped_column(String(200))
    objective_args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metric: Mapped[str] = mapped_column(String(200))
    direction: Mapped[Direction] = mapped_column(EnumString(Direction))
    space: Mapped[dict[str, Any]]
    strategy: Mapped[dict[str, Any]]
    budget: Mapped[dict[str, Any]]
    pruning: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    stopping: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    warm_start: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    objectives: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    """Two or three {metric, direction}; None: the one `metric`/`direction` (which hold the
    first objective when set)."""
    constraints: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    seed: Mapped[int] = mapped_column(Integer)
    state: Mapped[StudyState] = mapped_column(
        EnumString(StudyState), default=StudyState.RUNNING, index=True
    )
    stop_kind: Mapped[StopKind | None] = mapped_column(EnumString(StopKind), nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    strategy_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    suggest_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    suggest_failures: Mapped[int] = mapped_column(Integer, default=0)
    suggest_retry_at: Mapped[datetime | None] = mapped_column(nullable=True)
    stopping_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    datasets: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Markdown the owner keeps with the study (PATCH /studies/{id}); the dashboard renders it."""
    owner_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL"), nullable=True
    )
    owner_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The creating token's name: every token of that name owns the study (service.core.owners)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    trials: Mapped[list[Trial]] = relationship(back_populates="study", passive_deletes=True)


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
        Index("ix_trials_study_state", "study_id", "state"),
        Index("ix_trials_state_lease", "state", "lease_expires_at"),
        Index("ix_trials_study_updated", "study_id", "updated_at"),
        Index("ix_trials_worker_state", "worker_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]]
    state: Mapped[TrialState] = mapped_column(EnumString(TrialState))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seed: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(32), default="suggested")
    suggestion: Mapped[dict[str, Any]] = mapped_column(default=dict)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    dataset: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    values: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    """Every objective's value (several objectives); `value` holds the first."""
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    feasible: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    """None without constraints; False also for a trial that failed as infeasible."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    study: Mapped[Study] = relationship(back_populates="trials")


class TrialAttempt(Base):
    """One try of a trial by one worker: its lease, how it ended and why."""

    __tablename__ = "trial_attempts"
    __table_args__ = (UniqueConstraint("trial_id", "number", name="uq_attempts_trial_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_token: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[AttemptOutcome] = mapped_column(
        EnumString(AttemptOutcome), default=AttemptOutcome.RUNNING
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)


class TrialValue(Base):
    """An intermediate value reported at one step; (trial, step) is unique, so repeats overwrite."""

    __tablename__ = "trial_values"

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    """A file a trainer wrote (image, curve, log), stored under the server's artifact folder."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("trial_id", "name", name="uq_artifacts_trial_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A worker id and the token that holds it: only that token leases under the id."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL"), nullable=True
    )
    host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gpu: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    current_trial_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trials_done: Mapped[int] = mapped_column(Integer, default=0)
    busy_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    busy_since: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    backend: Mapped[str | None] = mapped_column(String(32), nullable=True)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    device_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    unavailable: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(EnumString(Role))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
