"""The scheduler hands the strategy the whole study, and applies the study's rules.

In-process on a real SQLite database (tests/policies/conftest.py): running trials reach the
strategy as pending points, failed ones as observations, the EI-threshold rule ends a study
through the scheduler, a larger budget reopens a study that used its budget, and a budget
below the study's trial count is refused. Each test fails when the scheduler drops that part
(checked by mutation: see the README's mutation-testing paragraph).
"""

from __future__ import annotations

from typing import Any

import pytest

from service.core.studies import enqueue_configuration, update_study
from service.domain import StopKind, StudyState
from service.errors import InvalidRequest
from service.schemas import StudyUpdate
from service.store import repository as repo
from service.store.models import Trial
from tests.policies.conftest import Service

LINE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def _gp_study(service: Service, name: str, **spec: Any) -> int:
    return service.create(
        name=name,
        objective="external",
        space=LINE,
        strategy={"name": "gp", "acquisition": "ucb", "n_initial": 2},
        budget={"max_trials": 40, "max_parallel": 10},
        seed=3,
        **spec,
    )


def _ask_one(service: Service, study: int) -> Trial:
    asked = service.scheduler.suggest(study, 1)
    assert len(asked.trials) == 1, asked.reason
    return asked.trials[0]


def _evaluate(service: Service, study: int, xs: list[float], value: Any) -> None:
    """Enqueues the configurations `xs` and completes each with value(x) (None: fails it)."""
    for x in xs:
        enqueue_configuration(service.db, study, {"x": x})
        trial = _ask_one(service, study)
        assert trial.params == {"x": x}
        result = value(x)
        if result is None:
            service.lifecycle.fail(trial.id, trial.lease_token or "", "diverged")
        else:
            service.lifecycle.complete(trial.id, trial.lease_token or "", result)


def _state(service: Service, study: int) -> tuple[str, str | None, str | None]:
    with service.db.read() as session:
        row = repo.get_study(session, study)
        kind = row.stop_kind.value if row.stop_kind is not None else None
        return row.state.value, kind, row.stop_reason


def test_a_running_trial_is_a_pending_point_for_the_next_suggestion(service: Service) -> None:
    """Two parallel workers must not get the same point, nor neighbours."""
    study = _gp_study(service, "pending")
    _evaluate(service, study, [0.0, 0.15, 0.5, 0.7, 1.0], lambda x: (x - 0.3) ** 2)
    first = _ask_one(service, study)
    second = _ask_one(service, study)  # the first is still running
    assert abs(first.params["x"] - second.params["x"]) > 0.02, (first.params, second.params)


def test_failed_trials_reach_the_strategy_as_bad_observations(service: Service) -> None:
    """-x is minimized towards x = 1, but every trial at x >= 0.6 failed: the next
    suggestion stays where trials succeed."""
    study = _gp_study(service, "failures")
    xs = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    _evaluate(service, study, xs, lambda x: -x if x < 0.55 else None)
    assert _ask_one(service, study).params["x"] < 0.6


def test_the_ei_threshold_ends_the_study_through_the_scheduler(service: Service) -> None:
    study = _gp_study(
        service,
        "ei-stop",
        stopping={"ei_threshold": 1.0, "ei_patience": 2, "min_trials": 5},
    )
    _evaluate(service, study, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], lambda x: (x - 0.3) ** 2)
    asked = 0
    while _state(service, study)[0] == StudyState.RUNNING.value:
        trials = service.scheduler.suggest(study, 1).trials
        for trial in trials:
            x = trial.params["x"]
            service.lifecycle.complete(trial.id, trial.lease_token or "", (x - 0.3) ** 2)
        asked += 1
        assert asked <= 20, "the EI rule never fired"
    state, kind, reason = _state(service, study)
    assert (state, kind) == (StudyState.DONE.value, StopKind.EI_THRESHOLD.value)
    assert reason is not None and "expected improvement below 1" in reason
    with service.db.read() as session:
        stopping_state = repo.get_study(session, study).stopping_state or {}
    assert stopping_state["low_ei_streak"] >= 2


def _used_budget(service: Service, name: str, max_trials: int = 2) -> int:
    study = service.create(
        name=name,
        objective="external",
        space=LINE,
        strategy={"name": "random"},
        budget={"max_trials": max_trials, "max_parallel": max_trials},
    )
    for trial in service.scheduler.suggest(study, max_trials).trials:
        service.lifecycle.complete(trial.id, trial.lease_token or "", 1.0)
    assert _state(service, study)[:2] == (StudyState.DONE.value, StopKind.BUDGET.value)
    return study


def _budget(**fields: int) -> StudyUpdate:
    return StudyUpdate.model_validate({"budget": fields})


def test_a_larger_budget_reopens_a_study_that_used_its_budget(service: Service) -> None:
    study = _used_budget(service, "reopen")
    update_study(service.db, study, _budget(max_trials=3))
    assert _state(service, study) == (StudyState.RUNNING.value, None, None)
    assert len(service.scheduler.suggest(study, 5).trials) == 1


def test_a_budget_change_without_room_leaves_a_done_study_done(service: Service) -> None:
    study = _used_budget(service, "no-room")
    done = _state(service, study)
    update_study(service.db, study, _budget(max_parallel=4))
    update_study(service.db, study, _budget(max_trials=2))
    assert _state(service, study) == done
    with service.db.read() as session:
        budget = repo.get_study(session, study).budget
    assert (budget["max_trials"], budget["max_parallel"]) == (2, 4)


def test_a_budget_below_the_trial_count_is_refused_naming_the_field(service: Service) -> None:
    study = _used_budget(service, "shrink")
    with pytest.raises(InvalidRequest, match="already has 2 trials") as caught:
        update_study(service.db, study, _budget(max_trials=1))
    assert caught.value.field == "budget.max_trials"
    with service.db.read() as session:
        assert repo.get_study(session, study).budget["max_trials"] == 2
