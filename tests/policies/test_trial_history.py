"""What the state machine records, as a user reads it back: each attempt's outcome, error and
end time, why a study refuses an action, and an import that no worker can lease from
before it is whole.

In-process on a real SQLite database (tests/policies/conftest.py). Written from mutation
testing's survivors in service/core/machine.py (see the README's mutation-testing
paragraph).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from service import portability
from service.core.scheduling import reap_expired
from service.core.studies import StudyAction, act_on_study
from service.domain import StudyState, TrialState
from service.errors import Conflict
from service.portability import export_study, import_study
from service.store import repository as repo
from service.store.models import Trial, Worker, utcnow
from tests.policies.conftest import Service


def _study(service: Service, name: str = "history", **budget: object) -> int:
    return service.create(
        name=name,
        objective="synthetic",
        strategy={"name": "random"},
        budget={"max_trials": 3, "max_parallel": 2, **budget},
        seed=2,
    )


def _attempts(service: Service, trial_id: int) -> list[tuple[str, str | None, bool]]:
    """(outcome, error, ended) of each attempt, oldest first."""
    with service.db.read() as session:
        return [
            (a.outcome.value, a.error, a.ended_at is not None)
            for a in repo.attempts(session, trial_id)
        ]


def _trial(service: Service, trial_id: int) -> Trial:
    with service.db.read() as session:
        trial = repo.get_trial(session, trial_id)
        session.expunge(trial)
        return trial


def test_a_released_attempt_says_so_and_frees_its_worker(service: Service) -> None:
    _study(service)
    lease = service.scheduler.lease("w-release")
    assert lease is not None
    with service.db.read() as session:
        (attempt,) = repo.attempts(session, lease.trial.id)
        assert (attempt.worker_id, attempt.started_at is not None) == ("w-release", True)
        worker = session.get(Worker, "w-release")
        assert worker is not None and worker.busy_since is not None
    service.lifecycle.release(lease.trial.id, lease.trial.lease_token or "")
    assert _attempts(service, lease.trial.id) == [("released", "released by worker", True)]
    trial = _trial(service, lease.trial.id)
    assert (trial.state, trial.worker_id, trial.lease_expires_at) == (
        TrialState.QUEUED,
        None,
        None,
    )


def test_an_expired_lease_names_its_worker_and_then_fails_the_trial(service: Service) -> None:
    _study(service, max_retries=1)
    first = service.scheduler.lease("w-lost")
    assert first is not None
    later = utcnow() + timedelta(hours=1)
    with service.db.write() as session:
        assert reap_expired(session, service.scheduler.policy, later) == 1
    assert _attempts(service, first.trial.id) == [("lost", "lease expired (worker w-lost)", True)]
    assert _trial(service, first.trial.id).worker_id is None
    started = _trial(service, first.trial.id).started_at
    assert started is not None
    again = service.scheduler.lease("w-again")
    assert again is not None and again.trial.id == first.trial.id
    assert _trial(service, first.trial.id).started_at == started  # the first start is kept
    with service.db.write() as session:
        reap_expired(session, service.scheduler.policy, later + timedelta(hours=1))
    trial = _trial(service, first.trial.id)
    assert (trial.state, trial.worker_id) == (TrialState.FAILED, None)
    assert trial.error == "lease expired 2 times; last worker w-again"
    assert trial.finished_at is not None
    assert [a[0] for a in _attempts(service, trial.id)] == ["lost", "lost"]


def test_failed_and_pruned_trials_record_when_they_ended(service: Service) -> None:
    study = _study(service)
    failed, other = service.scheduler.suggest(study, 2).trials
    service.lifecycle.fail(failed.id, failed.lease_token or "", "boom")
    assert _attempts(service, failed.id) == [("failed", "boom", True)]
    assert _trial(service, failed.id).finished_at is not None
    service.lifecycle.complete(other.id, other.lease_token or "", 1.0)
    assert _trial(service, other.id).finished_at is not None


def test_a_refused_action_says_what_the_study_is_and_why(service: Service) -> None:
    study = _study(service, max_trials=1)
    (trial,) = service.scheduler.suggest(study, 1).trials
    service.lifecycle.complete(trial.id, trial.lease_token or "", 1.0)
    with pytest.raises(Conflict) as refused:
        act_on_study(service.db, study, StudyAction.PAUSE)
    assert str(refused.value) == (
        f"study {study} is done (budget of 1 trials used); only a running study pauses"
    )
    paused = _study(service, name="paused")
    act_on_study(service.db, paused, StudyAction.PAUSE)
    with pytest.raises(Conflict) as refused:
        act_on_study(service.db, paused, StudyAction.PAUSE)
    assert str(refused.value) == f"study {paused} is paused; only a running study pauses"


def test_an_import_is_paused_until_its_last_trial_is_written(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = _study(service, name="source")
    (trial,) = service.scheduler.suggest(study, 1).trials
    service.lifecycle.complete(trial.id, trial.lease_token or "", 1.0)
    document = export_study(service.db, study)
    seen: list[tuple[StudyState, str | None]] = []
    add_trial = portability._add_trial

    def watching(session, imported, t):  # type: ignore[no-untyped-def]
        with service.db.read() as other:  # what another connection (a worker) sees
            row = repo.get_study(other, imported.id)
            seen.append((row.state, row.stop_reason))
        add_trial(session, imported, t)

    monkeypatch.setattr(portability, "_add_trial", watching)
    copy = import_study(service.db, document, name="copy")
    assert seen == [(StudyState.PAUSED, "importing")]
    with service.db.read() as session:
        row = repo.get_study(session, copy)
        assert (row.state, row.stop_kind) == (StudyState.RUNNING, None)


def test_a_heartbeat_tells_the_server_its_worker_is_alive(service: Service) -> None:
    _study(service)
    lease = service.scheduler.lease("w-beat")
    assert lease is not None

    def last_seen() -> object:
        with service.db.read() as session:
            worker = session.get(Worker, "w-beat")
            assert worker is not None
            return worker.last_seen_at

    before = last_seen()
    service.lifecycle.heartbeat(lease.trial.id, lease.trial.lease_token or "")
    assert last_seen() > before  # type: ignore[operator]


def test_only_a_failure_said_infeasible_marks_its_configuration(service: Service) -> None:
    study = _study(service)
    plain, oom = service.scheduler.suggest(study, 2).trials
    service.lifecycle.fail(plain.id, plain.lease_token or "", "diverged")
    service.lifecycle.fail(oom.id, oom.lease_token or "", "out of memory", infeasible=True)
    assert (_trial(service, plain.id).feasible, _trial(service, oom.id).feasible) == (None, False)


def test_a_first_report_at_step_zero_is_step_zero(service: Service) -> None:
    study = _study(service)
    (trial,) = service.scheduler.suggest(study, 1).trials
    service.lifecycle.report(trial.id, trial.lease_token or "", 0, 0.5)
    assert _trial(service, trial.id).step == 0


def test_a_trial_keeps_how_it_was_suggested(service: Service) -> None:
    study = _study(service)
    (trial,) = service.scheduler.suggest(study, 1).trials
    assert _trial(service, trial.id).suggestion == {"source": "random"}
