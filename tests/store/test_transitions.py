"""The state machine's tables, exhaustively, on SQLite and PostgreSQL.

For every state a trial (or a study) can be in and every event, the event is applied to a
stored row through `service.core.machine`, committed and read back: an allowed event moves
the row to the table's state, any other raises Conflict and leaves the row as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from service.core import machine
from service.core.machine import (
    IDEMPOTENT,
    STUDY_TRANSITIONS,
    TRIAL_TRANSITIONS,
    StudyEvent,
    TrialEvent,
)
from service.core.studies import create_study
from service.core.suggesting import enqueue
from service.domain import AttemptOutcome, StopKind, StopReason, StudyState, TrialState
from service.errors import Conflict
from service.schemas import StudyCreate
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Study, Trial, utcnow

LEASE_SECONDS = 60.0


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def _study(db: Database, name: str) -> int:
    spec = {
        "name": name,
        "objective": "external",
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "budget": {"max_trials": 100, "max_parallel": 100},
    }
    return create_study(db, StudyCreate.model_validate(spec), owner_token_id=None)


TRIAL_EVENTS: dict[TrialEvent, Callable[[Session, Trial], None]] = {
    TrialEvent.START: lambda s, t: machine.start(
        s, t, worker=None, lease_seconds=LEASE_SECONDS, now=utcnow()
    ),
    TrialEvent.REPORT: lambda s, t: machine.report(
        s, t, 1, 0.5, lease_seconds=LEASE_SECONDS, now=utcnow()
    ),
    TrialEvent.COMPLETE: lambda s, t: machine.complete(s, t, value=0.25, now=utcnow()),
    TrialEvent.PRUNE: lambda s, t: machine.prune(s, t, value=0.75, now=utcnow()),
    TrialEvent.FAIL: lambda s, t: machine.fail(s, t, reason="boom", now=utcnow()),
    TrialEvent.LOSE_LEASE: lambda s, t: machine.lose_lease(s, t, max_retries=3, now=utcnow()),
    TrialEvent.RELEASE: lambda s, t: machine.release(s, t, now=utcnow()),
}

# How to bring a fresh QUEUED trial into each state, through allowed events only.
TRIAL_PATHS: dict[TrialState, list[TrialEvent]] = {
    TrialState.QUEUED: [],
    TrialState.RUNNING: [TrialEvent.START],
    TrialState.COMPLETE: [TrialEvent.START, TrialEvent.COMPLETE],
    TrialState.PRUNED: [TrialEvent.START, TrialEvent.PRUNE],
    TrialState.FAILED: [TrialEvent.START, TrialEvent.FAIL],
}


def _apply(db: Database, trial_id: int, event: TrialEvent) -> None:
    with db.write() as session:
        TRIAL_EVENTS[event](session, repo.get_trial(session, trial_id, lock=True))


def _trial(db: Database, trial_id: int) -> Trial:
    with db.read() as session:
        return repo.get_trial(session, trial_id)


def test_every_trial_state_and_event_follows_the_table(db: Database) -> None:
    assert set(TRIAL_PATHS) == set(TrialState), "every trial state is reachable"
    study_id = _study(db, "trials")
    for state, path in TRIAL_PATHS.items():
        for event in TrialEvent:
            with db.write() as session:
                (queued,) = enqueue(session, repo.get_study(session, study_id), [{"x": 0.5}])
                trial_id = queued.id
            for step in path:
                _apply(db, trial_id, step)
            before = _trial(db, trial_id)
            assert before.state is state
            target = TRIAL_TRANSITIONS.get((state, event))
            if target is None:
                with pytest.raises(Conflict, match=f"trial {trial_id} is {state}"):
                    _apply(db, trial_id, event)
                after = _trial(db, trial_id)
                assert (after.state, after.attempt, after.value) == (
                    before.state,
                    before.attempt,
                    before.value,
                ), f"a refused {event} changed the trial"
            else:
                _apply(db, trial_id, event)
                assert _trial(db, trial_id).state is target, f"{state} --{event}-->"


def test_finished_trials_are_final_and_keep_their_lease_token(db: Database) -> None:
    finished = {s for (s, _e) in TRIAL_TRANSITIONS if s.is_finished()}
    assert finished == set(), "no transition leaves a finished state"
    study_id = _study(db, "final")
    with db.write() as session:
        (trial,) = enqueue(session, repo.get_study(session, study_id), [{"x": 0.1}])
    _apply(db, trial.id, TrialEvent.START)
    token = _trial(db, trial.id).lease_token
    _apply(db, trial.id, TrialEvent.COMPLETE)
    done = _trial(db, trial.id)
    assert done.lease_token == token and machine.is_repeat(done, TrialState.COMPLETE, token or "")


def _attempt_outcomes(db: Database, trial_id: int) -> list[AttemptOutcome]:
    with db.read() as session:
        return [a.outcome for a in repo.attempts(session, trial_id)]


def test_a_lost_lease_requeues_until_the_retries_are_spent(db: Database) -> None:
    study_id = _study(db, "retries")
    with db.write() as session:
        (trial,) = enqueue(session, repo.get_study(session, study_id), [{"x": 0.9}])
    for _ in range(2):
        _apply(db, trial.id, TrialEvent.START)
        with db.write() as session:
            row = repo.get_trial(session, trial.id, lock=True)
            machine.lose_lease(session, row, max_retries=1, now=utcnow())
    lost = _trial(db, trial.id)
    assert lost.state is TrialState.FAILED and "lease expired 2 times" in (lost.error or "")
    assert _attempt_outcomes(db, trial.id) == [AttemptOutcome.LOST, AttemptOutcome.LOST]


def test_check_lease_refuses_wrong_expired_and_finished(db: Database) -> None:
    study_id = _study(db, "leases")
    with db.write() as session:
        (trial,) = enqueue(session, repo.get_study(session, study_id), [{"x": 0.2}])
    _apply(db, trial.id, TrialEvent.START)
    running = _trial(db, trial.id)
    token = running.lease_token or ""
    machine.check_lease(running, token, utcnow())
    with pytest.raises(Conflict, match="does not match"):
        machine.check_lease(running, "other", utcnow())
    later = utcnow() + timedelta(seconds=LEASE_SECONDS + 1)
    with pytest.raises(Conflict, match="expired"):
        machine.check_lease(running, token, later)
    _apply(db, trial.id, TrialEvent.COMPLETE)
    with pytest.raises(Conflict, match="not running"):
        machine.check_lease(_trial(db, trial.id), token, utcnow())


STUDY_EVENTS: dict[StudyEvent, Callable[[Study], Any]] = {
    StudyEvent.PAUSE: machine.pause,
    StudyEvent.RESUME: machine.resume,
    StudyEvent.STOP: machine.stop,
    StudyEvent.FINISH: lambda s: machine.finish(s, StopReason.budget_used(100)),
    StudyEvent.REOPEN: machine.reopen_after_budget,
}

STUDY_PATHS: dict[StudyState, list[StudyEvent]] = {
    StudyState.RUNNING: [],
    StudyState.PAUSED: [StudyEvent.PAUSE],
    StudyState.STOPPED: [StudyEvent.STOP],
    StudyState.DONE: [StudyEvent.FINISH],
}


def _act(db: Database, study_id: int, event: StudyEvent) -> None:
    with db.write() as session:
        STUDY_EVENTS[event](repo.get_study(session, study_id, lock=True))


def _stored_study(db: Database, study_id: int) -> Study:
    with db.read() as session:
        return repo.get_study(session, study_id)


def test_every_study_state_and_event_follows_the_table(db: Database) -> None:
    assert set(STUDY_PATHS) == set(StudyState), "every study state is reachable"
    for state, path in STUDY_PATHS.items():
        for event in StudyEvent:
            study_id = _study(db, f"study-{state}-{event}")
            for step in path:
                _act(db, study_id, step)
            assert _stored_study(db, study_id).state is state
            target = STUDY_TRANSITIONS.get((state, event))
            if (state, event) in IDEMPOTENT:
                _act(db, study_id, event)
                assert _stored_study(db, study_id).state is IDEMPOTENT[(state, event)]
            elif target is None and event is StudyEvent.REOPEN:
                # Asked of every study whose budget grows: only a DONE one reopens.
                _act(db, study_id, event)
                assert _stored_study(db, study_id).state is state
            elif target is None:
                with pytest.raises(Conflict, match=f"study {study_id} is {state}"):
                    _act(db, study_id, event)
                assert _stored_study(db, study_id).state is state
            else:
                _act(db, study_id, event)
                assert _stored_study(db, study_id).state is target, f"{state} --{event}-->"


def test_stop_reasons_are_recorded_and_cleared(db: Database) -> None:
    study_id = _study(db, "reasons")
    _act(db, study_id, StudyEvent.STOP)
    stopped = _stored_study(db, study_id)
    assert (stopped.stop_kind, stopped.stop_reason) == (StopKind.USER, "stopped by user")
    assert stopped.finished_at is not None
    _act(db, study_id, StudyEvent.RESUME)
    resumed = _stored_study(db, study_id)
    assert (resumed.stop_kind, resumed.stop_reason, resumed.finished_at) == (None, None, None)


def test_only_a_study_that_used_its_budget_reopens(db: Database) -> None:
    by_rule = _study(db, "target")
    with db.write() as session:
        machine.finish(
            repo.get_study(session, by_rule, lock=True), StopReason(StopKind.TARGET, "target")
        )
        assert not machine.reopen_after_budget(repo.get_study(session, by_rule, lock=True))
    assert _stored_study(db, by_rule).state is StudyState.DONE
    by_budget = _study(db, "budget")
    _act(db, by_budget, StudyEvent.FINISH)
    with db.write() as session:
        assert machine.reopen_after_budget(repo.get_study(session, by_budget, lock=True))
    assert _stored_study(db, by_budget).state is StudyState.RUNNING
