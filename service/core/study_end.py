"""When a study is over: a stopping rule fired, its budget is used and nothing is left, or
its trials keep failing.

Called after every change that can end a study (a trial finishing, a lease lost for good,
a lease request that found nothing to do); it ends the study through the state machine.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.core import machine
from service.domain import FINISHED_STATES, StopReason, StudyState, TrialState
from service.policies.stopping import history_stop_reason
from service.specs import StoppingSpec
from service.store import reader
from service.store import repository as repo
from service.store.models import Study

DEFAULT_MAX_CONSECUTIVE_FAILURES = 10


def maybe_finish(session: Session, study: Study) -> None:
    """Ends the study DONE when a stopping rule fires, or once its budget is used and
    nothing is running or queued (all failed: said so)."""
    if study.state not in (StudyState.RUNNING, StudyState.PAUSED):
        return
    session.flush()
    if study.stopping:
        reason = history_stop_reason(
            StoppingSpec.model_validate(study.stopping),
            study.direction,
            reader.finished_values(session, study.id),
        )
        if reason is not None:
            machine.finish(study, reason)
            return
    if repo.count_in_states(session, study.id, [TrialState.RUNNING, TrialState.QUEUED]):
        return
    counts = repo.trial_counts(session, [study.id])[study.id]
    finished = sum(counts[s] for s in FINISHED_STATES)
    max_trials = int(study.budget["max_trials"])
    if finished >= max_trials:
        if counts[TrialState.FAILED] == finished:
            machine.finish(study, StopReason.all_failed(finished))
        else:
            machine.finish(study, StopReason.budget_used(max_trials))


def maybe_stop_after_failures(session: Session, study: Study) -> None:
    """Stops the study (STOPPED, with the reason and the last error) once its last
    `budget.max_consecutive_failures` finished trials (default 10) all failed: a trainer or
    argument that fails every trial must not use up the workers or the budget."""
    if study.state not in (StudyState.RUNNING, StudyState.PAUSED):
        return
    limit = study.budget.get("max_consecutive_failures") or DEFAULT_MAX_CONSECUTIVE_FAILURES
    session.flush()
    last = reader.last_finished(session, study.id, int(limit))
    if len(last) == int(limit) and all(t.state == TrialState.FAILED for t in last):
        machine.stop(study, StopReason.failures_in_a_row(int(limit), last[0].error))
