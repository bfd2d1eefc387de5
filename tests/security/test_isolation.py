"""One study's input never stalls anyone else, on SQLite and PostgreSQL.

- A suggestion is computed with no database lock held: while one study's strategy runs,
  another study's lease, report and complete, and a new study, go through.
- A study whose suggestions fail (a space an older version stored, say) is set aside with
  the reason; leasing skips it and serves the other studies; it is retried after a growing
  back-off.
- A study whose trials fail again and again is stopped with the reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from service.core import suggesting
from service.core.lifecycle import TrialLifecycle
from service.core.scheduling import LeasePolicy, Scheduler
from service.core.studies import create_study
from service.domain import StopKind, StudyState, TrialState
from service.optimizer import SuggestRequest, SuggestResult
from service.optimizer import get_strategy as real_get_strategy
from service.schemas import StudyCreate
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Study, utcnow

POLICY = LeasePolicy(lease_seconds=60.0, max_retries=1)
WAIT_S = 30.0


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def _create(db: Database, **spec: Any) -> int:
    return create_study(db, StudyCreate.model_validate(spec), owner_token_id=None)


def _study(db: Database, study_id: int) -> Study:
    with db.read() as session:
        return repo.get_study(session, study_id)


class _BlockingStrategy:
    """Stands in for a strategy that takes long: it waits until the test lets it go."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def suggest(self, request: SuggestRequest) -> SuggestResult:
        self.entered.set()
        assert self.release.wait(WAIT_S), "the test never released the strategy"
        strategy, _ = real_get_strategy(request.spec.name)
        return strategy.suggest(request)


def test_a_slow_suggestion_holds_no_lock_over_other_studies(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _create(
        db,
        name="slow",
        objective="external",
        space={"x": {"type": "float", "low": 0, "high": 1}},
        strategy={"name": "gp"},
    )
    other = _create(db, name="other", objective="synthetic", strategy={"name": "random"})
    blocking = _BlockingStrategy()

    def strategies(name: Any) -> Any:
        return (blocking, None) if name == "gp" else real_get_strategy(name)

    monkeypatch.setattr(suggesting, "get_strategy", strategies)
    scheduler, lifecycle = Scheduler(db, POLICY), TrialLifecycle(db, POLICY)
    asked: list[Any] = []
    asking = threading.Thread(target=lambda: asked.append(scheduler.suggest(slow, 1)))
    asking.start()
    try:
        assert blocking.entered.wait(WAIT_S), "the slow study's strategy never started"
        # All of this would wait for the slow study's transaction if it held one.
        lease = scheduler.lease("worker-1")
        assert lease is not None and lease.study.id == other
        lifecycle.report(lease.trial.id, lease.trial.lease_token or "", 1, 0.5)
        lifecycle.complete(lease.trial.id, lease.trial.lease_token or "", 0.5)
        _create(db, name="created-meanwhile", objective="synthetic")
        assert asking.is_alive(), "the slow suggestion was still being computed"
    finally:
        blocking.release.set()
        asking.join(WAIT_S)
    assert len(asked[0].trials) == 1 and asked[0].trials[0].state == TrialState.RUNNING


def _poison(db: Database, study_id: int) -> None:
    """Writes a space the current version refuses, as an older version could have stored."""
    space = {"x": {"type": "int", "low": 0, "high": 10**330}}
    with db.write() as session:
        session.execute(update(Study).where(Study.id == study_id).values(space=space))


def test_a_failing_study_is_set_aside_and_the_others_keep_leasing(db: Database) -> None:
    poisoned = _create(db, name="poisoned", objective="synthetic", strategy={"name": "random"})
    healthy = _create(
        db,
        name="healthy",
        objective="synthetic",
        strategy={"name": "random"},
        budget={"max_trials": 10, "max_parallel": 10},
    )
    _poison(db, poisoned)
    scheduler = Scheduler(db, POLICY)
    leased = [scheduler.lease(f"w{i}") for i in range(3)]
    assert [lease.study.id if lease else None for lease in leased] == [healthy] * 3
    study = _study(db, poisoned)
    assert study.state == StudyState.RUNNING
    assert study.suggest_error is not None and "InvalidSearchSpace" in study.suggest_error
    assert any(w.startswith("suggestions failing: ") for w in study.warnings)
    assert study.suggest_retry_at is not None and study.suggest_retry_at > utcnow()
    assert study.suggest_failures == 1
    first_delay = study.suggest_retry_at - utcnow()
    # After its back-off it is tried again, fails again and waits twice as long.
    with db.write() as session:
        session.execute(update(Study).where(Study.id == poisoned).values(suggest_retry_at=utcnow()))
    assert scheduler.lease("w9") is not None
    again = _study(db, poisoned)
    assert again.suggest_failures == 2
    assert again.suggest_retry_at is not None
    assert again.suggest_retry_at - utcnow() > first_delay + timedelta(seconds=5)
    asked = scheduler.suggest(poisoned, 1)
    assert asked.trials == [] and (asked.reason or "").startswith("suggestions failing: ")


def test_a_set_aside_study_runs_again_after_a_good_suggestion(db: Database) -> None:
    study_id = _create(db, name="recovers", objective="synthetic", strategy={"name": "random"})
    space = _study(db, study_id).space
    _poison(db, study_id)
    scheduler = Scheduler(db, POLICY)
    assert scheduler.lease("w1") is None
    with db.write() as session:
        session.execute(
            update(Study).where(Study.id == study_id).values(space=space, suggest_retry_at=utcnow())
        )
    assert scheduler.lease("w1") is not None
    healed = _study(db, study_id)
    assert (healed.suggest_error, healed.suggest_failures, healed.suggest_retry_at) == (
        None,
        0,
        None,
    )


def test_trials_failing_in_a_row_stop_the_study(db: Database) -> None:
    study_id = _create(
        db,
        name="failing",
        objective="external",
        space={"x": {"type": "float", "low": 0, "high": 1}},
        strategy={"name": "random"},
        budget={"max_trials": 50, "max_parallel": 5, "max_consecutive_failures": 3},
    )
    scheduler, lifecycle = Scheduler(db, POLICY), TrialLifecycle(db, POLICY)

    def run(fail: bool) -> None:
        (trial,) = scheduler.suggest(study_id, 1).trials
        token = trial.lease_token or ""
        if fail:
            lifecycle.fail(trial.id, token, "KeyError: 'units'")
        else:
            lifecycle.complete(trial.id, token, 1.0)

    for fail in (True, True, False, True, True):
        run(fail)
    assert _study(db, study_id).state == StudyState.RUNNING, "a success resets the count"
    run(True)
    stopped = _study(db, study_id)
    assert stopped.state == StudyState.STOPPED and stopped.stop_kind == StopKind.FAILURES
    assert stopped.stop_reason == "the last 3 trials failed; the last: KeyError: 'units'"
