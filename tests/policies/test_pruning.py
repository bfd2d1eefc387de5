"""Pruning rules decide prune/continue correctly on fixed curves, through the real store."""

from __future__ import annotations

import math

import pytest

from service.domain import Direction, TrialState
from service.policies.pruning import asha_decision, asha_rung, median_decision, should_prune
from service.specs import AshaRule, MedianRule
from service.store import repository as repo
from tests.policies.conftest import Service

MIN, MAX = Direction.MINIMIZE, Direction.MAXIMIZE
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def test_median_rule_waits_for_warmup_and_min_trials() -> None:
    rule = MedianRule(warmup_steps=2, min_trials=3)
    peers = [1.0, 2.0, 3.0]
    assert not median_decision(rule, MIN, [9.0, 9.0], peers, step=2)  # warm-up
    assert not median_decision(rule, MIN, [9.0] * 3, peers[:2], step=3)  # too few
    assert median_decision(rule, MIN, [9.0] * 3, peers, step=3)
    assert not median_decision(rule, MIN, [9.0, 9.0, 1.5], peers, step=3)  # 1.5 < 2.0


def test_median_rule_respects_direction() -> None:
    rule = MedianRule(min_trials=1)
    assert median_decision(rule, MAX, [0.1], [0.5, 0.9], step=1)
    assert not median_decision(rule, MAX, [0.8], [0.5, 0.9], step=1)


def test_a_report_that_cannot_be_compared_prunes_nothing() -> None:
    """Only a finite report at the step being decided is judged: not a NaN or infinite one
    (the API refuses them; stored data is not trusted), not an older step's, not an empty
    curve, and not a median trial with no finite value of its own."""
    rule = MedianRule(min_trials=1)
    peers = [1.0, 1.0]
    assert should_prune(rule, MIN, 2, [(1, 9.0), (2, 9.0)], peers)
    assert not should_prune(rule, MIN, 2, [(1, 9.0), (2, math.nan)], peers)
    assert not should_prune(rule, MIN, 2, [(1, 9.0), (2, math.inf)], peers)
    assert not should_prune(rule, MIN, 2, [(1, 9.0)], peers)
    assert not should_prune(rule, MIN, 2, [], peers)
    assert not median_decision(rule, MIN, [math.nan, math.inf], peers, step=2)
    asha = AshaRule(min_steps=1, reduction_factor=2)
    assert should_prune(asha, MIN, 2, [(1, 9.0), (2, 9.0)], [1.0, 9.0])
    assert not should_prune(asha, MIN, 3, [(3, 9.0)], [1.0, 9.0])  # between rungs 2 and 4


def test_asha_rungs_are_geometric() -> None:
    rule = AshaRule(min_steps=1, reduction_factor=3)
    assert [asha_rung(rule, s) for s in (1, 2, 3, 4, 9, 10, 27)] == [0, None, 1, None, 2, None, 3]


def test_asha_keeps_top_fraction() -> None:
    rule = AshaRule(reduction_factor=3)
    six = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # top third: 1.0 and 2.0 go on
    assert not asha_decision(rule, MIN, 2.0, six)
    assert asha_decision(rule, MIN, 3.0, six)
    assert not asha_decision(rule, MIN, 1.0, [1.0])  # alone at the rung: it is the best
    assert asha_decision(rule, MIN, 2.0, [1.0, 2.0])  # fewer than 3: only the best


def _run_curve(service: Service, study_id: int, curve: list[float]) -> tuple[list[str], int]:
    (trial,) = service.scheduler.suggest(study_id, 1).trials
    actions = []
    for step, value in enumerate(curve, start=1):
        action = service.lifecycle.report(trial.id, trial.lease_token or "", step, value)
        actions.append(action.value)
        if action.value == "prune":
            return actions, trial.id
    service.lifecycle.complete(trial.id, trial.lease_token or "", curve[-1])
    return actions, trial.id


def test_median_prunes_a_bad_curve_in_a_real_study(service: Service) -> None:
    study = service.create(
        name="median",
        objective="external",
        space=SPACE,
        pruning={"rule": "median", "warmup_steps": 1, "min_trials": 2},
        budget={"max_trials": 5},
    )
    good = [5.0, 4.0, 3.0, 2.0]
    assert _run_curve(service, study, good)[0] == ["continue"] * 4
    assert _run_curve(service, study, [5.5, 4.5, 3.5, 2.5])[0] == ["continue"] * 4
    actions, trial_id = _run_curve(service, study, [9.0, 9.0, 9.0, 9.0])
    assert actions == ["continue", "prune"]  # step 1 is warm-up; step 2 is worse than median
    with service.db.read() as session:
        from service.store import repository as repo

        pruned = repo.get_trial(session, trial_id)
        assert pruned.state == TrialState.PRUNED.value
        assert (pruned.value, pruned.step) == (9.0, 2)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_asha_in_a_real_study(service: Service, direction: str) -> None:
    sign = 1.0 if direction == "minimize" else -1.0
    study = service.create(
        name=f"asha-{direction}",
        objective="external",
        space=SPACE,
        direction=direction,
        pruning={"rule": "asha", "min_steps": 1, "reduction_factor": 2},
        budget={"max_trials": 4},
    )
    assert _run_curve(service, study, [sign * 1.0, sign * 0.5])[0] == ["continue", "continue"]
    # Worse than the only other trial at rung 0 (step 1): with reduction factor 2 it stops.
    assert _run_curve(service, study, [sign * 2.0, sign * 0.1])[0] == ["prune"]
    assert _run_curve(service, study, [sign * 0.5, sign * 0.4])[0] == ["continue", "continue"]


def test_a_pruned_trial_frees_its_worker_at_once(service: Service) -> None:
    service.create(
        name="frees",
        objective="synthetic",
        objective_args={"steps": 3},
        pruning={"rule": "asha", "min_steps": 1, "reduction_factor": 2},
        budget={"max_trials": 3, "max_parallel": 1},
    )
    first = service.scheduler.lease("w1")
    assert first is not None
    token = first.trial.lease_token or ""
    service.lifecycle.report(first.trial.id, token, 1, 1.0)
    service.lifecycle.complete(first.trial.id, token, 1.0)
    second = service.scheduler.lease("w1")
    assert second is not None
    action = service.lifecycle.report(second.trial.id, second.trial.lease_token or "", 1, 5.0)
    assert action.value == "prune"
    third = service.scheduler.lease("w1")  # max_parallel 1: only possible if the slot is free
    assert third is not None and third.trial.id not in (first.trial.id, second.trial.id)


def test_asha_decides_nothing_between_rungs(service: Service) -> None:
    """Rungs at steps 1, 2, 4 (reduction factor 2): a value far worse than every peer at
    step 3 is not judged there; at step 4, the next rung, it is. A pruned trial records
    when it ended."""
    study = service.create(
        name="between-rungs",
        objective="external",
        space=SPACE,
        pruning={"rule": "asha", "min_steps": 1, "reduction_factor": 2},
        budget={"max_trials": 4},
    )
    _run_curve(service, study, [1.0, 1.0, 1.0, 1.0])
    actions, pruned = _run_curve(service, study, [0.5, 0.5, 100.0, 100.0])
    assert actions == ["continue", "continue", "continue", "prune"]
    with service.db.read() as session:
        trial = repo.get_trial(session, pruned)
        assert (trial.state, trial.finished_at is not None) == (TrialState.PRUNED, True)


def test_reported_metrics_accumulate_over_steps(service: Service) -> None:
    study = service.create(
        name="metrics", objective="external", space=SPACE, budget={"max_trials": 2}
    )
    (trial,) = service.scheduler.suggest(study, 1).trials
    token = trial.lease_token or ""
    service.lifecycle.report(trial.id, token, 1, 0.5, metrics={"loss": 0.5, "n_params": 10.0})
    service.lifecycle.report(trial.id, token, 2, 0.4, metrics={"loss": 0.4})
    with service.db.read() as session:
        assert repo.get_trial(session, trial.id).metrics == {"loss": 0.4, "n_params": 10.0}
