"""Warm start across an expanded space: the new study searches a parameter (or a conditional
branch) the earlier study never had, and still learns from every earlier trial."""

from __future__ import annotations

from typing import Any

from service.store import repository as repo
from tests.policies.conftest import Service
from tests.policies.test_warm_start import SPACE, branin

F_OPT = 0.397887
WIDER = {**SPACE, "x3": {"type": "float", "low": 0.0, "high": 1.0}}
BRANCHED = {
    **SPACE,
    "scale": {"type": "categorical", "choices": ["off", "on"]},
    "x3": {"type": "float", "low": 0.0, "high": 1.0, "condition": {"scale": ["on"]}},
}


def wider(p: dict[str, Any]) -> float:
    """Branin plus a bowl along the added parameter (its best value 0.75)."""
    return branin(p["x1"], p["x2"]) + 4.0 * (p["x3"] - 0.75) ** 2


def branched(p: dict[str, Any]) -> float:
    """The added branch, with x3 near 0.75, is better than the earlier study's whole space."""
    if p["scale"] == "off":
        return branin(p["x1"], p["x2"])
    return branin(p["x1"], p["x2"]) + 4.0 * (p["x3"] - 0.75) ** 2 - 0.3


def _earlier(service: Service, n: int = 30) -> int:
    """The earlier study: 2 f + 1 on a box shifted by 3%, over (x1, x2) only."""
    source = service.create(
        name="earlier",
        objective="external",
        space=SPACE,
        budget={"max_trials": n},
        strategy={"name": "gp", "seed": 11},
    )
    for _ in range(n):
        (trial,) = service.scheduler.suggest(source, 1).trials
        x1, x2 = trial.params["x1"], trial.params["x2"]
        value = 2.0 * branin(min(x1 + 0.45, 10.0), min(x2 + 0.45, 15.0)) + 1.0
        service.lifecycle.complete(trial.id, trial.lease_token or "", value)
    return source


def _best_of(service: Service, study: int, f: Any, n: int) -> float:
    best = float("inf")
    for _ in range(n):
        (trial,) = service.scheduler.suggest(study, 1).trials
        value = f(dict(trial.params))
        service.lifecycle.complete(trial.id, trial.lease_token or "", value)
        best = min(best, value)
    return best


def test_an_added_parameter_still_learns_from_the_earlier_study(service: Service) -> None:
    """Every earlier trial lacks x3: the prior is fitted on (x1, x2) and is flat along x3
    (marginalized); the warm study's regret after 12 trials is under a third of a cold one's,
    and every trial after the seeds is model-based."""
    source = _earlier(service)
    common: dict[str, Any] = {"objective": "external", "space": WIDER}
    warm = service.create(
        name="warm", strategy={"name": "gp", "seed": 5}, warm_start={"studies": [source]}, **common
    )
    cold = service.create(name="cold", strategy={"name": "gp", "seed": 5}, **common)
    warm_best = _best_of(service, warm, wider, 12)
    cold_best = _best_of(service, cold, wider, 12)
    assert warm_best - F_OPT < (cold_best - F_OPT) / 3, (warm_best, cold_best)
    with service.db.read() as session:
        trials = repo.list_trials(session, warm)[0]
        assert "prior_gp" in repo.get_study(session, warm).strategy_state
    assert trials[0].source == "warm_start" and trials[0].params["x3"] == 0.5
    assert {t.source for t in trials[1:]} == {"gp"}


def test_an_added_conditional_branch_still_learns_from_the_earlier_study(
    service: Service,
) -> None:
    """The earlier trials lack `scale` and its child x3: both are marginalized, and the warm
    study beats a cold one on the expanded space within 12 trials."""
    source = _earlier(service)
    common: dict[str, Any] = {"objective": "external", "space": BRANCHED}
    warm = service.create(
        name="warm", strategy={"name": "gp", "seed": 5}, warm_start={"studies": [source]}, **common
    )
    cold = service.create(name="cold", strategy={"name": "gp", "seed": 5}, **common)
    f_opt = F_OPT - 0.3
    warm_best = _best_of(service, warm, branched, 12)
    cold_best = _best_of(service, cold, branched, 12)
    assert warm_best - f_opt < (cold_best - f_opt) / 3, (warm_best, cold_best)
