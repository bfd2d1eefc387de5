"""The domain's vocabulary: states, roles and principals, directions, why a study stopped.

Everything else imports these from here: the ORM stores them (as their string values), the
wire contract (`service.schemas`) exposes them, the policies and the optimizer compare with
them. Nothing here imports more than the standard library, so the client and the worker
can use them without the server's stack.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


def trial_label(number: int | None, trial_id: int, study_id: int) -> str:
    """How every log line names a trial: "trial #3 (id 17) of study 2": its number within
    the study (as the dashboard shows it) and its id (as the API and artifact folders use
    it). Without a number (a trial run outside the service): "trial id 17 of study 2"."""
    if number is None:
        return f"trial id {trial_id} of study {study_id}"
    return f"trial #{number} (id {trial_id}) of study {study_id}"


class StudyState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    DONE = "done"

    def is_final(self) -> bool:
        """Stopped and done studies lease nothing until resumed or given a larger budget."""
        return self in (StudyState.STOPPED, StudyState.DONE)


class TrialState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    def is_finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)
OPEN_STATES = (TrialState.QUEUED, TrialState.RUNNING)  # a suggestion's pending points


class AttemptOutcome(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    LOST = "lost"
    RELEASED = "released"


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"
    WORKER = "worker"
    VIEWER = "viewer"


@dataclass(frozen=True)
class Principal:
    """Who makes a request: the token's id, the name an admin gave it, and its role."""

    token_id: int
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class Direction(StrEnum):
    """Which way a study's metric improves. The one place minimize/maximize is interpreted."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    @property
    def sign(self) -> float:
        """+1 when maximizing, -1 when minimizing: `sign * value` is always to be maximized."""
        return 1.0 if self is Direction.MAXIMIZE else -1.0

    def better(self, a: float, b: float) -> bool:
        """True when `a` is strictly better than `b`."""
        return a > b if self is Direction.MAXIMIZE else a < b

    def best(self, values: Iterable[float]) -> float | None:
        """The best finite value, or None when there is none."""
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return None
        return max(finite) if self is Direction.MAXIMIZE else min(finite)

    def sort_key(self, value: float) -> float:
        """A key that sorts the best value first."""
        return -self.sign * value


class StopKind(StrEnum):
    """Why a study ended; a study that used its budget resumes when the budget grows."""

    BUDGET = "budget"
    ALL_FAILED = "all_failed"
    TARGET = "target"
    PATIENCE = "patience"
    EI_THRESHOLD = "ei_threshold"
    USER = "user"
    FAILURES = "failures"


@dataclass(frozen=True)
class StopReason:
    """A study's end: what kind of end (for rules) and the sentence shown to people."""

    kind: StopKind
    message: str

    @classmethod
    def budget_used(cls, max_trials: int) -> StopReason:
        return cls(StopKind.BUDGET, f"budget of {max_trials} trials used")

    @classmethod
    def all_failed(cls, n: int) -> StopReason:
        return cls(StopKind.ALL_FAILED, f"all {n} trials failed")

    @classmethod
    def by_user(cls) -> StopReason:
        return cls(StopKind.USER, "stopped by user")

    @classmethod
    def failures_in_a_row(cls, n: int, last_error: str | None) -> StopReason:
        last = f"; the last: {last_error}" if last_error else ""
        return cls(StopKind.FAILURES, f"the last {n} trials failed{last}"[:2000])
