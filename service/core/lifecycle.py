"""What happens to a leased trial: reports, heartbeats, complete, fail, release.

Every call that a worker or client may repeat is idempotent: a report for a step already
stored overwrites it, and a complete or fail repeated with the same lease token returns the
finished trial unchanged. A call whose lease token is not the trial's current, unexpired
lease raises Conflict (HTTP 409) and changes nothing. The transitions themselves are the
state machine's (service.core.machine); this module adds the rules around them: pruning on
report, the study's end after a trial finishes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from service.core import machine
from service.core.datasets import record_dataset
from service.core.results import judge, merge_metrics
from service.core.scheduling import LeasePolicy
from service.core.study_end import maybe_finish, maybe_stop_after_failures
from service.domain import TrialState, trial_label
from service.policies.pruning import peer_states, should_prune
from service.schemas import DatasetRecord
from service.specs import parse_pruning
from service.store import reader
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Study, Trial, utcnow

log = logging.getLogger(__name__)


class ReportAction(StrEnum):
    CONTINUE = "continue"
    PRUNE = "prune"


def _prunes(session: Session, study: Study, trial: Trial, step: int) -> bool:
    """The study's pruning rule applied to `trial`, which has just reported `step`."""
    if not study.pruning:
        return False
    rule = parse_pruning(study.pruning)
    states = peer_states(rule, step)
    if states is None:
        return False
    own = reader.trial_values(session, trial.id, up_to=step)
    peers = reader.values_at_step(session, study.id, step, states)
    return should_prune(rule, study.direction, step, own, peers)


class TrialLifecycle:
    def __init__(self, db: Database, policy: LeasePolicy) -> None:
        self.db = db
        self.policy = policy

    def report(
        self,
        trial_id: int,
        token: str,
        step: int,
        value: float,
        *,
        metrics: Mapping[str, float] | None = None,
    ) -> ReportAction:
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            now = utcnow()
            machine.check_lease(trial, token, now)
            machine.report(
                session, trial, step, value, lease_seconds=self.policy.lease_seconds, now=now
            )
            if metrics:
                trial.metrics = merge_metrics(trial.metrics, metrics)
            study = repo.get_study(session, trial.study_id)
            if _prunes(session, study, trial, step):
                machine.prune(session, trial, value=value, now=now)
                maybe_finish(session, study)
                label = trial_label(trial.number, trial.id, study.id)
                log.info("%s pruned at step %s", label, step)
                return ReportAction.PRUNE
            return ReportAction.CONTINUE

    def heartbeat(self, trial_id: int, token: str) -> Trial:
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            now = utcnow()
            machine.check_lease(trial, token, now)
            machine.extend_lease(trial, lease_seconds=self.policy.lease_seconds, now=now)
            if trial.worker_id is not None:
                repo.touch_worker(session, trial.worker_id)
            return trial

    def complete(
        self,
        trial_id: int,
        token: str,
        value: float | None = None,
        *,
        values: Sequence[float] | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> Trial:
        """Completes with `value` (one objective) or `values` (several) and `metrics`;
        raises InvalidRequest when they do not fit the study (service.core.results)."""

        def transition(session: Session, trial: Trial, *, now: datetime) -> None:
            study = repo.get_study(session, trial.study_id)
            result = judge(study, trial, value=value, values=values, metrics=metrics)
            trial.values, trial.metrics, trial.feasible = (
                result.values,
                result.metrics,
                result.feasible,
            )
            machine.complete(session, trial, value=result.value, now=now)

        return self._end(trial_id, token, TrialState.COMPLETE, transition)

    def fail(self, trial_id: int, token: str, reason: str, *, infeasible: bool = False) -> Trial:
        """Fails the trial; `infeasible` (out of memory, say) marks its configuration as one
        that cannot run, which the optimizer learns to avoid (`feasible` False)."""

        def transition(session: Session, trial: Trial, *, now: datetime) -> None:
            machine.fail(session, trial, reason=reason, now=now)
            if infeasible:
                trial.feasible = False

        trial = self._end(trial_id, token, TrialState.FAILED, transition)
        log.info("%s failed: %s", trial_label(trial.number, trial.id, trial.study_id), reason)
        return trial

    def _end(
        self,
        trial_id: int,
        token: str,
        state: TrialState,
        transition: Callable[..., None],
    ) -> Trial:
        """Ends a running trial by `transition` (complete or fail) under `token`; a repeat of
        the call that ended it returns the trial unchanged. The study may end with it."""
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            if machine.is_repeat(trial, state, token):
                return trial
            now = utcnow()
            machine.check_lease(trial, token, now)
            transition(session, trial, now=now)
            study = repo.get_study(session, trial.study_id)
            if state == TrialState.FAILED:
                maybe_stop_after_failures(session, study)
            maybe_finish(session, study)
            return trial

    def record_dataset(self, trial_id: int, token: str, record: DatasetRecord) -> Trial:
        """The data the running trial trains on (see service.core.datasets)."""
        with self.db.write() as session:
            # The study row first, then the trial's: the order every writer locks them in.
            study_id = repo.get_trial(session, trial_id).study_id
            study = repo.get_study(session, study_id, lock=True)
            trial = repo.get_trial(session, trial_id, lock=True)
            machine.check_lease(trial, token, utcnow())
            record_dataset(study, trial, record)
            return trial

    def release(self, trial_id: int, token: str) -> Trial:
        """Gives a trial back without counting a lost attempt (a worker shutting down)."""
        with self.db.write() as session:
            trial = repo.get_trial(session, trial_id, lock=True)
            if trial.state == TrialState.QUEUED:
                return trial
            now = utcnow()
            machine.check_lease(trial, token, now)
            machine.release(session, trial, now=now)
            return trial
