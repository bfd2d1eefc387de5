"""The gp strategy uses everything it is given: pending points move the next suggestion away,
failed trials make their region look bad, and GP-Hedge learns from its nominees.

Each test fails when the strategy ignores that part of its input (checked by mutation:
see the README's mutation-testing paragraph).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.optimizer import Observation, StrategySpec, SuggestRequest, SuggestResult
from service.optimizer.gp_strategy import GPStrategy
from service.optimizer.model import build_model
from service.space import SearchSpace

LINE = SearchSpace.from_spec({"x": {"type": "float", "low": 0.0, "high": 1.0}})


def _request(
    observations: list[Observation],
    *,
    acquisition: str = "ucb",
    pending: list[dict[str, Any]] | None = None,
    state: dict[str, Any] | None = None,
    direction: str = "minimize",
    seed: int = 0,
) -> SuggestRequest:
    return SuggestRequest(
        space=LINE,
        direction=direction,  # type: ignore[arg-type]
        spec=StrategySpec(acquisition=acquisition, n_initial=2),  # type: ignore[arg-type]
        observations=observations,
        pending=pending or [],
        count=1,
        seed=seed,
        state=state or {},
    )


def _x(result: SuggestResult) -> float:
    return float(result.suggestions[0].params["x"])


def _bowl(xs: tuple[float, ...]) -> list[Observation]:
    return [Observation({"x": x}, (x - 0.3) ** 2, "complete") for x in xs]


@pytest.mark.parametrize("acquisition", ["ucb", "ei", "pi"])
def test_a_pending_point_moves_the_next_suggestion_away(acquisition: str) -> None:
    """A worker already evaluates the point the GP likes best: the next worker must get a
    clearly different point, not its neighbour (the pending point's variance is gone)."""
    observations = _bowl((0.0, 0.15, 0.5, 0.7, 1.0))
    alone = _x(GPStrategy().suggest(_request(observations, acquisition=acquisition)))
    beside = _x(
        GPStrategy().suggest(
            _request(observations, acquisition=acquisition, pending=[{"x": alone}])
        )
    )
    assert abs(beside - alone) > 0.02, (alone, beside)


def test_pending_points_lower_the_variance_the_model_reports() -> None:
    observations = _bowl((0.0, 0.5, 1.0))
    request = _request(observations, pending=[{"x": 0.25}])
    model = build_model(request, {}, np.random.default_rng(0))
    query = np.array([[0.25]])
    _, free_std = model.surrogate.predict(query)
    _, busy_std = model.with_pending.predict(query)
    assert busy_std[0] < 0.2 * free_std[0]


def _fails_on_the_right() -> list[Observation]:
    """-x is minimized towards x = 1, but every trial at x >= 0.6 failed."""
    done = [Observation({"x": x}, -x, "complete") for x in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)]
    failed = [Observation({"x": x}, None, "failed") for x in (0.6, 0.7, 0.8, 0.9, 1.0)]
    return done + failed


def test_failed_trials_make_their_region_look_bad_to_the_model() -> None:
    model = build_model(_request(_fails_on_the_right()), {}, np.random.default_rng(0))
    mean, _ = model.surrogate.predict(np.array([[0.5], [0.8]]))
    # Model units are maximized: the failed region is predicted worse than the best point.
    assert mean[1] < mean[0] - 0.5


@pytest.mark.parametrize("acquisition", ["ucb", "ei"])
def test_suggestions_stay_out_of_the_region_where_trials_failed(acquisition: str) -> None:
    result = GPStrategy().suggest(_request(_fails_on_the_right(), acquisition=acquisition))
    assert _x(result) < 0.6


def _hedge_state(gains: dict[str, float], nominees: dict[str, float]) -> dict[str, Any]:
    return {
        "hedge": {
            "gains": gains,
            "nominees": [{"arm": arm, "x": [x]} for arm, x in nominees.items()],
        }
    }


def test_hedge_gains_grow_by_each_nominees_predicted_value() -> None:
    """UCB nominated the optimum, EI a middling point, PI the worst: their gains must rank
    that way, and the nominees are replaced by this call's."""
    observations = _bowl((0.0, 0.15, 0.5, 0.7, 1.0))
    state = _hedge_state({"ucb": 0.0, "pi": 0.0, "ei": 0.0}, {"ucb": 0.3, "ei": 0.6, "pi": 1.0})
    result = GPStrategy().suggest(_request(observations, acquisition="auto", state=state))
    gains = result.state["hedge"]["gains"]
    assert gains["ucb"] > gains["ei"] > gains["pi"]
    assert gains["ucb"] > 0 > gains["pi"]
    assert result.suggestions[0].info.hedge_gains == gains
    nominees = result.state["hedge"]["nominees"]
    assert sorted(n["arm"] for n in nominees) == ["ei", "pi", "ucb"]
    assert [0.3] not in [n["x"] for n in nominees]


def test_hedge_gains_accumulate_over_calls() -> None:
    observations = _bowl((0.0, 0.15, 0.5, 0.7, 1.0))
    state: dict[str, Any] = {}
    for seed in range(3):
        result = GPStrategy().suggest(
            _request(observations, acquisition="auto", state=state, seed=seed)
        )
        state = result.state
        x = _x(result)
        observations = [*observations, Observation({"x": x}, (x - 0.3) ** 2, "complete")]
    gains = state["hedge"]["gains"]
    assert all(abs(g) > 0.1 for g in gains.values()), gains


@pytest.mark.parametrize("favourite", ["ucb", "pi", "ei"])
def test_hedge_picks_the_arm_with_by_far_the_largest_gain(favourite: str) -> None:
    observations = _bowl((0.0, 0.15, 0.5, 0.7, 1.0))
    gains = {arm: (500.0 if arm == favourite else 0.0) for arm in ("ucb", "pi", "ei")}
    for seed in range(3):
        state = _hedge_state(gains, {})
        result = GPStrategy().suggest(
            _request(observations, acquisition="auto", state=state, seed=seed)
        )
        assert result.suggestions[0].info.acquisition == favourite
