"""Plain records of stored rows, as the store's reader returns them (service.store.reader).

The scheduler, the policies and the dashboard's insights work on these instead of ORM rows:
they carry only the columns a decision needs, and code that takes them never touches a
session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.domain import Direction, TrialState


@dataclass(frozen=True)
class TrialRecord:
    """The columns of a trial that a strategy, a policy or a chart needs."""

    id: int
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    step: int | None
    suggestion: dict[str, Any] = field(default_factory=dict)
    values: list[float] | None = None
    """Every objective's value (several objectives)."""
    feasible: bool | None = None
    """None without constraints; False also for a failure marked infeasible."""
    metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class CompletedTrial:
    """A completed trial with a finite value (what warm start learns from)."""

    params: dict[str, Any]
    value: float
    values: tuple[float, ...] | None = None
    """Every objective's value, for a study with several."""


@dataclass(frozen=True)
class FinishedTrial:
    """How a finished trial ended (what the repeated-failure rule reads)."""

    state: TrialState
    error: str | None


@dataclass(frozen=True)
class StudyRef:
    """What warm start needs to know of a named earlier study."""

    id: int
    objective: str
    direction: Direction


@dataclass(frozen=True)
class StudyTally:
    """How many of a study's trials run, wait and exist, and the next trial number."""

    running: int
    queued: int
    total: int
    next_number: int


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says about itself when it asks for a trial (None: not said)."""

    host: str | None = None
    gpu: str | None = None
    pid: int | None = None
    backend: str | None = None
    device: str | None = None
    device_memory_bytes: int | None = None
    unavailable: str | None = None
    """Why it cannot train; such a worker is recorded and gets no trial."""
