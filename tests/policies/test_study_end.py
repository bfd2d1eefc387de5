"""When a study ends on its own: failures in a row, a used budget, all trials failed.

In-process on a real SQLite database (tests/policies/conftest.py), through the lifecycle a
worker's complete and fail calls go through. Written from mutation testing's survivors in
service/core/study_end.py (see the README's mutation-testing paragraph).
"""

from __future__ import annotations

from typing import Any

from service.core.studies import StudyAction, act_on_study
from service.store import repository as repo
from tests.policies.conftest import Service

LINE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def _study(service: Service, max_trials: int = 30, name: str = "ends", **budget: Any) -> int:
    return service.create(
        name=name,
        objective="external",
        space=LINE,
        strategy={"name": "random"},
        budget={"max_trials": max_trials, "max_parallel": 4, **budget},
        seed=1,
    )


def _run(service: Service, study: int, outcomes: str) -> None:
    """Leases one trial per character and ends it: 'f' fails it, 'c' completes it."""
    for i, outcome in enumerate(outcomes):
        asked = service.scheduler.suggest(study, 1)
        assert len(asked.trials) == 1, asked.reason
        trial = asked.trials[0]
        token = trial.lease_token or ""
        if outcome == "f":
            service.lifecycle.fail(trial.id, token, f"error {i}")
        else:
            service.lifecycle.complete(trial.id, token, float(i))


def _state(service: Service, study: int) -> tuple[str, str | None, str | None]:
    with service.db.read() as session:
        row = repo.get_study(session, study)
        kind = row.stop_kind.value if row.stop_kind is not None else None
        return row.state.value, kind, row.stop_reason


def test_a_study_stops_after_its_limit_of_failures_in_a_row(service: Service) -> None:
    study = _study(service, max_consecutive_failures=3)
    _run(service, study, "cff")  # a success first: only the last 3 finished trials count
    assert _state(service, study)[0] == "running"
    _run(service, study, "f")
    state, kind, reason = _state(service, study)
    assert (state, kind) == ("stopped", "failures")
    assert reason == "the last 3 trials failed; the last: error 0"


def test_a_success_between_failures_keeps_the_study_running(service: Service) -> None:
    study = _study(service, max_consecutive_failures=3)
    _run(service, study, "ffcff")
    assert _state(service, study) == ("running", None, None)


def test_without_a_limit_ten_failures_in_a_row_stop_the_study(service: Service) -> None:
    study = _study(service)
    _run(service, study, "f" * 9)
    assert _state(service, study)[0] == "running"
    _run(service, study, "f")
    assert _state(service, study)[:2] == ("stopped", "failures")


def test_a_paused_study_also_stops_after_failures_in_a_row(service: Service) -> None:
    study = _study(service, max_consecutive_failures=2)
    _run(service, study, "f")
    asked = service.scheduler.suggest(study, 1)
    (trial,) = asked.trials
    act_on_study(service.db, study, StudyAction.PAUSE)
    service.lifecycle.fail(trial.id, trial.lease_token or "", "still failing")
    state, kind, reason = _state(service, study)
    assert (state, kind) == ("stopped", "failures")
    assert reason is not None and reason.endswith("the last: still failing")


def test_a_used_budget_ends_the_study_done_naming_why(service: Service) -> None:
    used = _study(service, max_trials=3)
    _run(service, used, "fcf")
    assert _state(service, used) == ("done", "budget", "budget of 3 trials used")
    failed = _study(service, max_trials=3, name="all failed")
    _run(service, failed, "fff")
    assert _state(service, failed) == ("done", "all_failed", "all 3 trials failed")


def test_a_study_with_a_trial_running_is_not_done_before_it_ends(service: Service) -> None:
    study = _study(service, max_trials=2)
    _run(service, study, "c")
    (running,) = service.scheduler.suggest(study, 1).trials
    with service.db.read() as session:
        assert repo.get_study(session, study).state.value == "running"
    service.lifecycle.complete(running.id, running.lease_token or "", 1.0)
    assert _state(service, study)[:2] == ("done", "budget")
