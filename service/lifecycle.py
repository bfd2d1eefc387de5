"""What happens to a leased trial: reports, heartbeats, complete, fail, release; study actions.

Every call that a worker or client may repeat is idempotent: a report for a step already
stored overwrites it, and a complete or fail repeated with the same lease token returns the
finished trial unchanged. A call whose lease token is not the trial's current, unexpired
lease raises Conflict (HTTP 409) and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from service.errors import Conflict
from service.scheduling import LeasePolicy, maybe_finish, reap_expired
from service.store import repository as repo
from service.store.db import Database
from service.store.models import AttemptOutcome, Study, StudyState, Trial, TrialState, utcnow

log = logging.getLogger(__name__)


class ReportAction(StrEnum):
    CONTINUE = "continue"
    PRUNE = "prune"


class StudyAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


def _check_lease(session: Session, trial: Trial, token: str, policy: LeasePolicy) -> None:
    if trial.state != TrialState.RUNNING.value:
        raise Conflict(f"trial {trial.id} is {trial.state}, not running")
    if trial.lease_token != token:
        raise Conflict(f"lease token does not match trial {trial.id}'s current lease")
    now = utcnow()
    if trial.lease_expires_at is not None and trial.lease_expires_at <= now:
        reap_expired(session, policy, now)
        raise Conflict(f"the lease on trial {trial.id} expired")


def _finish(
    session: Session,
    trial: Trial,
    state: TrialState,
    *,
    value: float | None,
    error: str | None,
) -> None:
    now = utcnow()
    trial.state = state.value
    trial.value = value
    trial.error = error
    trial.finished_at = now
    trial.lease_expires_at = None
    repo.end_attempt(session, trial, AttemptOutcome(state.value), error, now)
    repo.worker_finished_trial(session, trial.worker_id, counted=True)
    maybe_finish(session, repo.get_study(session, trial.study_id))


class TrialLifecycle:
    def __init__(self, db: Database, policy: LeasePolicy) -> None:
        self.db = db
        self.policy = policy

    def _extend(self, trial: Trial, now: datetime) -> None:
        trial.lease_expires_at = now + timedelta(seconds=self.policy.lease_seconds)

    def report(self, trial_id: int, token: str, step: int, value: float) -> ReportAction:
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            _check_lease(session, trial, token, self.policy)
            repo.put_value(session, trial.id, step, value)
            trial.step = max(step, trial.step or 0)
            self._extend(trial, utcnow())
            study = repo.get_study(session, trial.study_id)
            if self._should_prune(session, study, trial, step):
                _finish(session, trial, TrialState.PRUNED, value=value, error=None)
                log.info("study %s trial %s pruned at step %s", study.id, trial.number, step)
                return ReportAction.PRUNE
            return ReportAction.CONTINUE

    def _should_prune(self, session: Session, study: Study, trial: Trial, step: int) -> bool:
        from service.pruning import should_prune

        return should_prune(session, study, trial, step)

    def heartbeat(self, trial_id: int, token: str) -> Trial:
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            _check_lease(session, trial, token, self.policy)
            self._extend(trial, utcnow())
            if trial.worker_id is not None:
                repo.touch_worker(session, trial.worker_id, host=None, gpu=None, pid=None)
            return trial

    def complete(self, trial_id: int, token: str, value: float) -> Trial:
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            if trial.state == TrialState.COMPLETE.value and trial.lease_token == token:
                return trial
            _check_lease(session, trial, token, self.policy)
            _finish(session, trial, TrialState.COMPLETE, value=value, error=None)
            return trial

    def fail(self, trial_id: int, token: str, reason: str) -> Trial:
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            if trial.state == TrialState.FAILED.value and trial.lease_token == token:
                return trial
            _check_lease(session, trial, token, self.policy)
            _finish(session, trial, TrialState.FAILED, value=None, error=reason)
            log.info("study %s trial %s failed: %s", trial.study_id, trial.number, reason)
            return trial

    def release(self, trial_id: int, token: str) -> Trial:
        """Gives a trial back without counting a lost attempt (a worker shutting down)."""
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            if trial.state == TrialState.QUEUED.value:
                return trial
            _check_lease(session, trial, token, self.policy)
            repo.end_attempt(
                session, trial, AttemptOutcome.RELEASED, "released by worker", utcnow()
            )
            repo.worker_finished_trial(session, trial.worker_id, counted=False)
            trial.state = TrialState.QUEUED.value
            trial.lease_expires_at = None
            trial.worker_id = None
            return trial


def change_study_state(db: Database, study_id: int, action: StudyAction) -> Study:
    """pause: no new trials, running ones go on; resume: back to running; stop: like pause,
    but final until resumed, with the reason recorded."""
    with db.write() as session:
        study = repo.get_study(session, study_id, lock=True)
        state = StudyState(study.state)
        if action is StudyAction.PAUSE:
            if state is not StudyState.RUNNING:
                raise Conflict(f"study {study_id} is {state.value}; only a running study pauses")
            study.state = StudyState.PAUSED.value
        elif action is StudyAction.RESUME:
            if state is StudyState.RUNNING:
                return study
            if state is StudyState.DONE:
                raise Conflict(f"study {study_id} is done ({study.stop_reason}); raise its budget")
            study.state = StudyState.RUNNING.value
            study.stop_reason = None
            study.finished_at = None
        elif action is StudyAction.STOP:
            if state in (StudyState.STOPPED, StudyState.DONE):
                return study
            study.state = StudyState.STOPPED.value
            study.stop_reason = "stopped by user"
            study.finished_at = utcnow()
        log.info("study %s: %s -> %s", study_id, state.value, study.state)
        return study
