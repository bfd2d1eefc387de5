"""Warm start: earlier studies' trials inform the new study, from its first suggestion on."""

from __future__ import annotations

import math
from typing import Any

import pytest

from service.domain import TrialState
from service.errors import InvalidRequest
from service.store import repository as repo
from tests.policies.conftest import Service

SPACE = {
    "x1": {"type": "float", "low": -5.0, "high": 10.0},
    "x2": {"type": "float", "low": 0.0, "high": 15.0},
}
OPTIMA = [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)]


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def _source_study(service: Service, n: int = 25) -> int:
    study = service.create(
        name="source",
        objective="external",
        space=SPACE,
        budget={"max_trials": n},
        strategy={"name": "random", "seed": 1},
    )
    for _ in range(n):
        (trial,) = service.scheduler.suggest(study, 1).trials
        value = branin(trial.params["x1"], trial.params["x2"])
        service.lifecycle.complete(trial.id, trial.lease_token or "", value)
    return study


def _first_params(service: Service, study: int) -> dict[str, float]:
    (trial,) = service.scheduler.suggest(study, 1).trials
    return dict(trial.params)


def _run(service: Service, study: int) -> dict[str, float]:
    """One trial: suggested, evaluated on Branin, completed; returns its configuration."""
    (trial,) = service.scheduler.suggest(study, 1).trials
    params = dict(trial.params)
    service.lifecycle.complete(trial.id, trial.lease_token or "", branin(**params))
    return params


def _distance_to_optimum(p: dict[str, float]) -> float:
    return min(math.hypot((p["x1"] - a) / 15, (p["x2"] - b) / 15) for a, b in OPTIMA)


def test_seeding_queues_the_best_earlier_configurations(service: Service) -> None:
    source = _source_study(service)
    with service.db.read() as session:
        best = repo.best_trial(session, repo.get_study(session, source))
        assert best is not None
    study = service.create(
        name="warm",
        objective="external",
        space=SPACE,
        warm_start={"studies": ["source"]},
    )
    assert _first_params(service, study) == best.params


def test_the_earlier_study_steers_the_first_gp_suggestions(service: Service) -> None:
    """With seeding off, a cold GP study starts with space-filling points; a warm one is
    model-based at once and goes straight for the region the earlier study found good."""
    source = _source_study(service)
    with service.db.read() as session:
        best_value = repo.best_trial(session, repo.get_study(session, source)).value  # type: ignore[union-attr]
    common: dict[str, Any] = {"objective": "external", "space": SPACE}
    warm = service.create(
        name="warm-gp",
        strategy={"name": "gp", "seed": 3},
        warm_start={"studies": [source], "n_seed": 0},
        **common,
    )
    cold = service.create(name="cold-gp", strategy={"name": "gp", "seed": 3}, **common)
    warm_first = [_run(service, warm) for _ in range(3)]
    cold_first = [_run(service, cold) for _ in range(3)]
    with service.db.read() as session:
        warm_trials = repo.list_trials(session, warm)[0]
        cold_trials = repo.list_trials(session, cold)[0]
    assert [t.source for t in warm_trials] == ["gp"] * 3
    assert [t.source for t in cold_trials] == ["sobol"] * 3
    assert min(branin(**p) for p in warm_first) < max(best_value * 20, 15.0)
    assert max(_distance_to_optimum(p) for p in warm_first) < 0.25
    assert min(branin(**p) for p in warm_first) < min(branin(**p) for p in cold_first)


def test_warm_start_transfers_to_a_shifted_rescaled_objective(service: Service) -> None:
    """The earlier study measured 2 f + 1 on a box shifted by 3%: after 10 trials the warm
    study's regret is a tenth of a cold one's at most, and the earlier study still informs
    the model after the cold initial design (five trials here)."""
    source = service.create(
        name="shifted",
        objective="external",
        space=SPACE,
        budget={"max_trials": 30},
        strategy={"name": "gp", "seed": 11},
    )
    for _ in range(30):
        (trial,) = service.scheduler.suggest(source, 1).trials
        x1, x2 = trial.params["x1"], trial.params["x2"]
        value = 2.0 * branin(min(x1 + 0.45, 10.0), min(x2 + 0.45, 15.0)) + 1.0
        service.lifecycle.complete(trial.id, trial.lease_token or "", value)
    common: dict[str, Any] = {"objective": "external", "space": SPACE}
    warm = service.create(
        name="warm", strategy={"name": "gp", "seed": 5}, warm_start={"studies": [source]}, **common
    )
    cold = service.create(name="cold", strategy={"name": "gp", "seed": 5}, **common)
    warm_best = min(branin(**_run(service, warm)) for _ in range(10))
    cold_best = min(branin(**_run(service, cold)) for _ in range(10))
    f_opt = 0.397887
    assert warm_best - f_opt < 0.1 * (cold_best - f_opt)
    with service.db.read() as session:
        assert "prior_gp" in repo.get_study(session, warm).strategy_state
        sources = [t.source for t in repo.list_trials(session, warm)[0]]
    assert sources == ["warm_start"] + ["gp"] * 9  # the seed, then the model from trial 2 on


def test_warm_start_sources_must_match_the_objective(service: Service) -> None:
    service.create(name="other", objective="branin", budget={"max_trials": 1})
    with pytest.raises(InvalidRequest, match=r"warm_start\.studies\.0"):
        service.create(
            name="bad", objective="external", space=SPACE, warm_start={"studies": ["other"]}
        )
    with pytest.raises(InvalidRequest, match="no study 'missing'"):
        service.create(
            name="bad2", objective="external", space=SPACE, warm_start={"studies": ["missing"]}
        )


def test_trials_outside_the_new_space_are_left_out(service: Service) -> None:
    _source_study(service, n=10)
    narrow = {"x1": {"type": "float", "low": 0.0, "high": 5.0}, "x2": SPACE["x2"]}
    study = service.create(
        name="narrow",
        objective="external",
        space=narrow,
        warm_start={"studies": ["source"], "n_seed": 100},
    )
    with service.db.read() as session:
        queued, _ = repo.list_trials(session, study, states=[TrialState.QUEUED])
    assert queued, "some earlier trials fit the narrower space"
    assert all(0.0 <= t.params["x1"] <= 5.0 for t in queued)
