"""The state machine: the one module that changes a trial's or a study's state.

Every transition is a row of one of the two tables below; an event whose (state, event) pair
is missing raises Conflict (HTTP 409) naming the state and the event, and changes nothing.
Callers (the scheduler, the lifecycle of a leased trial, study actions, import) hold the
rows they pass in under the study's or the trial's lock, inside one write transaction.

Trials:

    QUEUED  --start-->      RUNNING   a lease: token, expiry, a new attempt
    RUNNING --report-->     RUNNING   a step recorded, the lease extended
    RUNNING --complete-->   COMPLETE  with its value
    RUNNING --prune-->      PRUNED    with its last value
    RUNNING --fail-->       FAILED    with the reason (also a lost lease past its retries)
    RUNNING --lose_lease--> QUEUED    the lease expired: the attempt is LOST, the trial runs again
    RUNNING --release-->    QUEUED    handed back by its worker: the attempt is RELEASED

A finished trial (complete, pruned, failed) never changes again. Its lease token stays on it
so that a repeated complete or fail with the same token is recognised as a repeat.

Studies:

    RUNNING --pause-->   PAUSED    no new trials; running ones go on
    PAUSED  --resume-->  RUNNING
    STOPPED --resume-->  RUNNING
    RUNNING --stop-->    STOPPED   (PAUSED too) final until resumed: by its user, or after
                                   `budget.max_consecutive_failures` failed trials in a row
    RUNNING --finish-->  DONE      (PAUSED too) with a StopReason: budget used, all failed, a
                                   stopping rule
    DONE    --reopen-->  RUNNING   only a study whose reason is BUDGET, when its budget grows

Repeating an action that is already in effect (resume a running study, stop a stopped or
done one) is not an error: the tables map it onto the same state (`IDEMPOTENT`).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from service.domain import (
    AttemptOutcome,
    StopKind,
    StopReason,
    StudyState,
    TrialState,
    trial_label,
)
from service.errors import Conflict
from service.store import repository as repo
from service.store.models import Study, Trial, TrialAttempt, Worker, utcnow

log = logging.getLogger(__name__)


class TrialEvent(StrEnum):
    START = "start"
    REPORT = "report"
    COMPLETE = "complete"
    PRUNE = "prune"
    FAIL = "fail"
    LOSE_LEASE = "lose_lease"
    RELEASE = "release"


class StudyEvent(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    FINISH = "finish"
    REOPEN = "reopen"


TRIAL_TRANSITIONS: dict[tuple[TrialState, TrialEvent], TrialState] = {
    (TrialState.QUEUED, TrialEvent.START): TrialState.RUNNING,
    (TrialState.RUNNING, TrialEvent.REPORT): TrialState.RUNNING,
    (TrialState.RUNNING, TrialEvent.COMPLETE): TrialState.COMPLETE,
    (TrialState.RUNNING, TrialEvent.PRUNE): TrialState.PRUNED,
    (TrialState.RUNNING, TrialEvent.FAIL): TrialState.FAILED,
    (TrialState.RUNNING, TrialEvent.LOSE_LEASE): TrialState.QUEUED,
    (TrialState.RUNNING, TrialEvent.RELEASE): TrialState.QUEUED,
}

STUDY_TRANSITIONS: dict[tuple[StudyState, StudyEvent], StudyState] = {
    (StudyState.RUNNING, StudyEvent.PAUSE): StudyState.PAUSED,
    (StudyState.PAUSED, StudyEvent.RESUME): StudyState.RUNNING,
    (StudyState.STOPPED, StudyEvent.RESUME): StudyState.RUNNING,
    (StudyState.RUNNING, StudyEvent.STOP): StudyState.STOPPED,
    (StudyState.PAUSED, StudyEvent.STOP): StudyState.STOPPED,
    (StudyState.RUNNING, StudyEvent.FINISH): StudyState.DONE,
    (StudyState.PAUSED, StudyEvent.FINISH): StudyState.DONE,
    (StudyState.DONE, StudyEvent.REOPEN): StudyState.RUNNING,
}

IDEMPOTENT: dict[tuple[StudyState, StudyEvent], StudyState] = {
    (StudyState.RUNNING, StudyEvent.RESUME): StudyState.RUNNING,
    (StudyState.STOPPED, StudyEvent.STOP): StudyState.STOPPED,
    (StudyState.DONE, StudyEvent.STOP): StudyState.DONE,
}

_STUDY_HINTS = {
    StudyEvent.PAUSE: "only a running study pauses",
    StudyEvent.RESUME: "raise its budget to run it again",
    StudyEvent.FINISH: "only a running or paused study finishes",
    StudyEvent.REOPEN: "only a study that used its budget reopens",
}

_OUTCOMES = {
    TrialEvent.COMPLETE: AttemptOutcome.COMPLETE,
    TrialEvent.PRUNE: AttemptOutcome.PRUNED,
    TrialEvent.FAIL: AttemptOutcome.FAILED,
}


def _trial_target(trial: Trial, event: TrialEvent) -> TrialState:
    target = TRIAL_TRANSITIONS.get((trial.state, event))
    if target is None:
        raise Conflict(f"trial {trial.id} is {trial.state}; it cannot {event.replace('_', ' ')}")
    return target


def _study_target(study: Study, event: StudyEvent) -> StudyState | None:
    """The new state; None when the event is a repeat that changes nothing."""
    if (study.state, event) in IDEMPOTENT:
        return None
    target = STUDY_TRANSITIONS.get((study.state, event))
    if target is None:
        reason = f" ({study.stop_reason})" if study.stop_reason else ""
        hint = _STUDY_HINTS.get(event, f"it cannot {event}")
        raise Conflict(f"study {study.id} is {study.state}{reason}; {hint}")
    return target


# ---- trials -----------------------------------------------------------------------------


def new_trial(
    study: Study,
    *,
    number: int,
    params: dict[str, Any],
    seed: int,
    source: str,
    suggestion: dict[str, Any],
) -> Trial:
    """A QUEUED trial of `study` (the caller adds it to the session)."""
    return Trial(
        study_id=study.id,
        number=number,
        params=params,
        state=TrialState.QUEUED,
        seed=seed,
        source=source,
        suggestion=suggestion,
    )


def imported_trial(study: Study, state: TrialState, **columns: Any) -> Trial:
    """A trial restored from an export: its state kept, except that a trial that was running
    comes back QUEUED (its lease belonged to the other server)."""
    restored = TrialState.QUEUED if state is TrialState.RUNNING else state
    return Trial(study_id=study.id, state=restored, **columns)


def imported_study(state: StudyState, stop_kind: StopKind | None, **columns: Any) -> Study:
    """A study being restored from an export (see `restore_imported`)."""
    return Study(state=state, stop_kind=stop_kind, **columns)


def restore_imported(
    study: Study,
    state: StudyState,
    stop_kind: StopKind | None,
    stop_reason: str | None,
    finished_at: datetime | None,
) -> None:
    """An import's last step: the study, created PAUSED while its trials were written, gets
    the state it had on the server it came from."""
    study.state = state
    study.stop_kind, study.stop_reason, study.finished_at = stop_kind, stop_reason, finished_at


def check_lease(trial: Trial, token: str, now: datetime) -> None:
    """Raises Conflict unless `token` is the trial's current, unexpired lease. An expired
    lease is left for the reaper (`lose_lease`), which queues the trial again."""
    if trial.state != TrialState.RUNNING:
        raise Conflict(f"trial {trial.id} is {trial.state}, not running")
    if trial.lease_token != token:
        raise Conflict(f"lease token does not match trial {trial.id}'s current lease")
    if trial.lease_expires_at is not None and trial.lease_expires_at <= now:
        raise Conflict(f"the lease on trial {trial.id} expired")


def is_repeat(trial: Trial, state: TrialState, token: str) -> bool:
    """True when a complete or fail is a retry of the one that already finished the trial."""
    return trial.state == state and trial.lease_token == token


def start(
    session: Session,
    trial: Trial,
    *,
    worker: Worker | None,
    lease_seconds: float,
    now: datetime,
) -> None:
    """QUEUED -> RUNNING under a fresh lease token, recording a new attempt."""
    trial.state = _trial_target(trial, TrialEvent.START)
    worker_id = worker.id if worker is not None else None
    trial.attempt += 1
    trial.lease_token = secrets.token_hex(16)
    trial.lease_expires_at = now + timedelta(seconds=lease_seconds)
    trial.worker_id = worker_id
    trial.started_at = trial.started_at or now
    session.add(
        TrialAttempt(
            trial_id=trial.id,
            number=trial.attempt,
            worker_id=worker_id,
            lease_token=trial.lease_token,
            started_at=now,
        )
    )
    if worker is not None:
        worker.current_trial_id = trial.id
        worker.busy_since = now


def extend_lease(trial: Trial, *, lease_seconds: float, now: datetime) -> None:
    """A heartbeat: the lease runs `lease_seconds` from now."""
    trial.lease_expires_at = now + timedelta(seconds=lease_seconds)


def report(
    session: Session,
    trial: Trial,
    step: int,
    value: float,
    *,
    lease_seconds: float,
    now: datetime,
) -> None:
    """RUNNING -> RUNNING: the value at `step` recorded (a repeated step overwrites), the
    lease extended."""
    trial.state = _trial_target(trial, TrialEvent.REPORT)
    repo.put_value(session, trial.id, step, value)
    trial.step = max(step, trial.step or 0)
    extend_lease(trial, lease_seconds=lease_seconds, now=now)


def _finish(
    session: Session,
    trial: Trial,
    event: TrialEvent,
    *,
    value: float | None,
    error: str | None,
    now: datetime,
    outcome: AttemptOutcome | None = None,
) -> None:
    trial.state = _trial_target(trial, event)
    trial.value = value
    trial.error = error
    trial.finished_at = now
    trial.lease_expires_at = None
    ended = outcome or _OUTCOMES[event]
    repo.end_attempt(session, trial, ended, error, now)
    repo.worker_finished_trial(session, trial.worker_id, counted=ended is not AttemptOutcome.LOST)


def complete(session: Session, trial: Trial, *, value: float, now: datetime) -> None:
    """RUNNING -> COMPLETE with `value`."""
    _finish(session, trial, TrialEvent.COMPLETE, value=value, error=None, now=now)


def prune(session: Session, trial: Trial, *, value: float, now: datetime) -> None:
    """RUNNING -> PRUNED with its last reported value."""
    _finish(session, trial, TrialEvent.PRUNE, value=value, error=None, now=now)


def fail(session: Session, trial: Trial, *, reason: str, now: datetime) -> None:
    """RUNNING -> FAILED with the reason."""
    _finish(session, trial, TrialEvent.FAIL, value=None, error=reason, now=now)


def _requeue(
    session: Session, trial: Trial, event: TrialEvent, outcome: AttemptOutcome, error: str,
    now: datetime,
) -> None:
    trial.state = _trial_target(trial, event)
    repo.end_attempt(session, trial, outcome, error, now)
    repo.worker_finished_trial(session, trial.worker_id, counted=False)
    trial.lease_expires_at = None
    trial.worker_id = None


def release(session: Session, trial: Trial, *, now: datetime) -> None:
    """RUNNING -> QUEUED: the worker gives the trial back (shutting down); the attempt is
    RELEASED, which does not count against the trial's retries."""
    _requeue(session, trial, TrialEvent.RELEASE, AttemptOutcome.RELEASED, "released by worker", now)


def lose_lease(session: Session, trial: Trial, *, max_retries: int, now: datetime) -> None:
    """The lease expired: the attempt is LOST; the trial is QUEUED again, or FAILED once more
    than `max_retries` attempts were lost."""
    worker_id = trial.worker_id
    error = f"lease expired (worker {worker_id})"
    lost = repo.lost_attempts(session, trial.id) + 1
    if lost > max_retries:
        _finish(
            session,
            trial,
            TrialEvent.FAIL,
            value=None,
            error=f"lease expired {lost} times; last worker {worker_id}",
            now=now,
            outcome=AttemptOutcome.LOST,
        )
        trial.worker_id = None
    else:
        _requeue(session, trial, TrialEvent.LOSE_LEASE, AttemptOutcome.LOST, error, now)
    log.warning(
        "%s: lease expired (attempt %s); now %s",
        trial_label(trial.number, trial.id, trial.study_id),
        trial.attempt,
        trial.state,
    )


# ---- studies ----------------------------------------------------------------------------


def _move(
    study: Study, event: StudyEvent, reason: StopReason | None = None, now: datetime | None = None
) -> bool:
    """Applies `event`; a study that ends (stopped or done) records `reason` and when it
    ended (`now`, default the current time). False when the event was a repeat."""
    target = _study_target(study, event)
    if target is None:
        return False
    log.info("study %s: %s -> %s (%s)", study.id, study.state, target, event)
    study.state = target
    if target is StudyState.RUNNING or target is StudyState.PAUSED:
        study.stop_kind, study.stop_reason, study.finished_at = None, None, None
    else:
        assert reason is not None
        study.stop_kind, study.stop_reason = reason.kind, reason.message
        study.finished_at = now or utcnow()
    return True


def pause(study: Study) -> None:
    _move(study, StudyEvent.PAUSE)


def resume(study: Study) -> None:
    _move(study, StudyEvent.RESUME)


def stop(
    study: Study, reason: StopReason | None = None, *, now: datetime | None = None
) -> None:
    """Stops a running or paused study: by its user, or by a rule (`reason`)."""
    _move(study, StudyEvent.STOP, reason or StopReason.by_user(), now)


def finish(study: Study, reason: StopReason, *, now: datetime | None = None) -> None:
    """Ends a running or paused study DONE with `reason`."""
    _move(study, StudyEvent.FINISH, reason, now)


def reopen_after_budget(study: Study) -> bool:
    """A study that ended because its budget was used runs again (its budget has grown);
    any other study is left as it is. True when it reopened."""
    if study.state != StudyState.DONE or study.stop_kind != StopKind.BUDGET:
        return False
    return _move(study, StudyEvent.REOPEN)
