"""Study-level stopping: target, patience and the optimizer's expected-improvement rule."""

from __future__ import annotations

import pytest

from service.domain import Direction, StopKind, StudyState
from service.errors import Conflict
from service.optimizer import SuggestionInfo
from service.policies.stopping import (
    history_stop_reason,
    relative_expected_improvement,
    update_ei_streak,
)
from service.specs import StoppingSpec
from service.store import repository as repo
from tests.policies.conftest import Service

MIN, MAX = Direction.MINIMIZE, Direction.MAXIMIZE
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def test_patience_counts_trials_since_the_last_improvement() -> None:
    spec = StoppingSpec(patience=3, min_trials=1)
    assert history_stop_reason(spec, MIN, [5.0, 4.0, 4.5, 4.2]) is None
    reason = history_stop_reason(spec, MIN, [5.0, 4.0, 4.5, 4.2, None])
    assert reason is not None and reason.kind is StopKind.PATIENCE
    assert "no improvement in the last 3" in reason.message


def test_target_in_either_direction() -> None:
    assert history_stop_reason(StoppingSpec(target=1.0, min_trials=1), MIN, [3.0, 0.9])
    assert not history_stop_reason(StoppingSpec(target=1.0, min_trials=1), MAX, [0.9])
    assert not history_stop_reason(StoppingSpec(target=1.0, min_trials=5), MIN, [0.5])


def test_relative_ei_is_small_when_nothing_is_expected() -> None:
    values = [0.0, 10.0]
    hopeless = relative_expected_improvement(SuggestionInfo("gp", mean=9.0, std=0.01), MIN, values)
    promising = relative_expected_improvement(SuggestionInfo("gp", mean=0.5, std=2.0), MIN, values)
    assert hopeless is not None and promising is not None
    assert hopeless < 1e-6 < promising
    assert relative_expected_improvement(SuggestionInfo("gp", mean=1.0), MIN, values) is None


def test_ei_streak_needs_consecutive_low_values() -> None:
    spec = StoppingSpec(ei_threshold=0.01, ei_patience=2, min_trials=1)
    streak, reason = update_ei_streak(spec, 0, 0.001, 5)
    assert (streak, reason) == (1, None)
    streak, reason = update_ei_streak(spec, streak, 0.5, 5)
    assert (streak, reason) == (0, None)
    streak, _ = update_ei_streak(spec, streak, 0.001, 5)
    streak, reason = update_ei_streak(spec, streak, 0.001, 5)
    assert streak == 2 and reason is not None


def test_a_stopped_study_refuses_suggestions_and_says_why(service: Service) -> None:
    study = service.create(
        name="target",
        objective="external",
        space=SPACE,
        stopping={"target": 0.1, "min_trials": 2},
        budget={"max_trials": 50},
    )
    for value in (1.0, 0.05):
        (trial,) = service.scheduler.suggest(study, 1).trials
        service.lifecycle.complete(trial.id, trial.lease_token or "", value)
    with service.db.read() as session:
        stored = repo.get_study(session, study)
        assert stored.state == StudyState.DONE.value
        assert stored.stop_reason is not None and "target 0.1 reached" in stored.stop_reason
    with pytest.raises(Conflict, match=r"target 0\.1 reached"):
        service.scheduler.suggest(study, 1)


def test_ei_streak_edges_threshold_min_trials_and_no_estimate() -> None:
    """Exactly at the threshold is not low; exactly `min_trials` finished trials may stop; a
    suggestion without an EI estimate (or a spec without the rule) leaves the streak alone."""
    spec = StoppingSpec(ei_threshold=0.01, ei_patience=1, min_trials=4)
    assert update_ei_streak(spec, 3, 0.01, 9) == (0, None)
    streak, reason = update_ei_streak(spec, 0, 0.001, 4)
    assert streak == 1 and reason is not None and reason.kind is StopKind.EI_THRESHOLD
    assert update_ei_streak(spec, 0, 0.001, 3) == (1, None)
    assert update_ei_streak(spec, 2, None, 9) == (2, None)
    assert update_ei_streak(StoppingSpec(min_trials=1), 2, 0.0, 9) == (2, None)
