"""The warm-start transfer model: prior stack, affine map, residual GP, edge cases."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import qmc, spearmanr

from service.optimizer import (
    Observation,
    StrategyName,
    StrategySpec,
    SuggestRequest,
    get_strategy,
)
from service.optimizer.gp import GaussianProcess, GPParams, fit_params
from service.optimizer.gp_strategy import GPStrategy
from service.optimizer.transfer import (
    TransferGP,
    fit_prior,
    map_prior,
    sources,
    with_initial_prior,
)
from service.optimizer.warping import OutputWarp
from service.space import SearchSpace

UNIT = SearchSpace.from_spec(
    {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "y": {"type": "float", "low": 0.0, "high": 1.0},
    }
)


def branin(c: dict[str, Any]) -> float:
    """Branin on the unit square (minimized; three optima)."""
    x1, x2 = 15.0 * c["x"] - 5.0, 15.0 * c["y"]
    b, k, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + k * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def shifted(c: dict[str, Any]) -> float:
    """What the earlier study measured: Branin 3% of the box away, rescaled to 2 f + 1."""
    moved = {k: min(v + 0.03, 1.0) for k, v in c.items()}
    return 2.0 * branin(moved) + 1.0


def sobol(n: int, seed: int) -> list[dict[str, float]]:
    pts = qmc.Sobol(2, scramble=True, seed=seed).random_base2(6)[:n]
    return [{"x": float(a), "y": float(b)} for a, b in pts]


def observe(f: Any, configs: list[dict[str, float]]) -> list[Observation]:
    return [Observation(c, f(c), "complete") for c in configs]


def request(
    observations: list[Observation],
    prior: list[list[Observation]],
    *,
    count: int = 1,
    seed: int = 0,
    state: dict[str, Any] | None = None,
    pending: list[dict[str, Any]] | None = None,
) -> SuggestRequest:
    return SuggestRequest(
        space=UNIT,
        direction="minimize",
        spec=StrategySpec(seed=seed),
        observations=observations,
        pending=pending or [],
        count=count,
        seed=seed,
        state=state or {},
        prior=prior,
    )


GRID = np.array([[a, b] for a in np.linspace(0.02, 0.98, 15) for b in np.linspace(0.02, 0.98, 15)])
TRUTH = -np.array([branin({"x": a, "y": b}) for a, b in GRID])  # maximization convention


def transfer_model(own: list[Observation], prior: list[list[Observation]]) -> TransferGP:
    """The model the gp strategy builds, with the residual's hyperparameters fitted."""
    req = request(own, prior)
    stack, _ = fit_prior(sources(req), None)
    X = UNIT.encode_many(o.params for o in own)
    y = OutputWarp.fit(np.array([-float(o.value) for o in own]), rank_warp=False).y  # type: ignore[arg-type]
    centre = stack.lengthscale_centre()
    residual = y - stack.mean(X)
    start = GPParams((*centre,), 0.0, -6.0)
    params = fit_params(X, residual, starts=[start], lengthscale_centre=centre) or start
    return TransferGP.fit(stack, X, y, params)


# ---- the affine map ---------------------------------------------------------------------------


def test_map_recovers_slope_and_offset():
    rng = np.random.default_rng(0)
    m = rng.standard_normal(60)
    a, b = map_prior(m, 2.0 * m + 1.0)
    assert a == pytest.approx(2.0, abs=0.05) and b == pytest.approx(1.0, abs=0.05)


def test_map_edge_cases():
    assert map_prior(np.zeros(0), np.zeros(0)) == (1.0, 0.0)  # no own value: prior as is
    a, b = map_prior(np.array([0.7]), np.array([-0.2]))
    assert a == pytest.approx(1.0) and b == pytest.approx(-0.9)  # one value: aligned
    # Anti-correlated: the prior is dropped (a = 0), not inverted; b is then the mean.
    m = np.linspace(-1, 1, 9)
    a, b = map_prior(m, -3.0 * m + 0.5)
    assert a == 0.0 and b == pytest.approx(0.5)
    # The prior predicts the same everywhere the study looked: no information on the slope.
    a, b = map_prior(np.full(4, 0.3), np.array([1.0, -1.0, 0.5, -0.5]))
    assert a == pytest.approx(1.0) and math.isfinite(b)


# ---- the stack --------------------------------------------------------------------------------


def test_prior_mean_recovers_a_shifted_rescaled_function_from_three_own_points():
    prior = [observe(shifted, sobol(40, 1))]
    own = observe(branin, sobol(3, 7))
    warm = transfer_model(own, prior)
    X = UNIT.encode_many(o.params for o in own)
    y = OutputWarp.fit(np.array([-float(o.value) for o in own]), rank_warp=False).y  # type: ignore[arg-type]
    cold = GaussianProcess(
        X, y, fit_params(X, y, starts=[GPParams.default(2)]) or GPParams.default(2)
    )
    warm_rho = spearmanr(warm.predict(GRID)[0], TRUTH).statistic
    cold_rho = spearmanr(cold.predict(GRID)[0], TRUTH).statistic
    assert warm_rho > 0.9 > cold_rho + 0.3
    assert warm.a > 0


def test_residual_gp_learns_what_the_prior_misses():
    """Own values = 1.5 x prior mean - 0.3 + a smooth bump: the map and the bump are found."""
    prior = [observe(shifted, sobol(40, 1))]
    stack, _ = fit_prior(sources(request([], prior)), None)
    bump = lambda X: 0.4 * np.sin(3.0 * X[:, 0])  # noqa: E731
    X = UNIT.encode_many(sobol(16, 3))
    y = 1.5 * stack.mean(X) - 0.3 + bump(X)
    centre = stack.lengthscale_centre()
    params = fit_params(
        X, y - stack.mean(X), starts=[GPParams.default(2)], lengthscale_centre=centre
    )
    model = TransferGP.fit(stack, X, y, params or GPParams.default(2))
    assert model.a == pytest.approx(1.5, abs=0.25)
    # b and the residual's mean share the bump's offset; together they recover it.
    residual_mean = model.residual.predict(GRID)[0] + model.b
    err = residual_mean - (bump(GRID) - 0.3)
    assert np.sqrt(np.mean(err**2)) < 0.06
    full = 1.5 * stack.mean(GRID) - 0.3 + bump(GRID)
    prior_only = model.a * stack.mean(GRID) + model.b
    assert (
        np.abs(model.predict(GRID)[0] - full).max() < 0.15 < 0.25 < np.abs(prior_only - full).max()
    )


def test_earlier_levels_stack_oldest_first():
    older = [observe(lambda c: 5.0 * branin(c), sobol(30, 2))]
    newer = [observe(shifted, sobol(30, 4))]
    stack, states = fit_prior(sources(request([], [older[0], newer[0]])), None)
    assert len(stack.levels) == 2 and [s["n"] for s in states] == [30, 30]
    # The stack predicts the newer study's (standardized, maximized) values best.
    newer_y = sources(request([], newer))[0].y
    pred = stack.mean(UNIT.encode_many(o.params for o in newer[0]))
    assert spearmanr(pred, newer_y).statistic > 0.95


def test_cached_prior_hyperparameters_are_reused_until_the_study_grows():
    src = sources(request([], [observe(shifted, sobol(30, 1))]))
    _, states = fit_prior(src, None)
    tampered = [{**states[0], "log_signal": 1.5}]
    stack, again = fit_prior(src, json.loads(json.dumps(tampered)))
    assert stack.top.params.log_signal == 1.5 and again == tampered
    grown = sources(request([], [observe(shifted, sobol(31, 1))]))
    stack, refit = fit_prior(grown, tampered)
    assert refit[0]["n"] == 31 and stack.top.params.log_signal != 1.5


def test_prediction_gradients_match_finite_differences():
    prior = [observe(shifted, sobol(30, 1))]
    model = transfer_model(observe(branin, sobol(4, 5)), prior)
    model = model.condition_on_pending(np.array([[0.3, 0.6]]))
    assert 0.0 < model._top_weight() < 1.0
    Xq = np.array([[0.21, 0.73], [0.55, 0.12], [0.9, 0.4]])
    _, _, dmean, dstd = model.predict_with_grad(Xq)
    h = 1e-6
    for j in range(2):
        step = np.zeros(2)
        step[j] = h
        up, down = model.predict(Xq + step), model.predict(Xq - step)
        np.testing.assert_allclose(dmean[:, j], (up[0] - down[0]) / (2 * h), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dstd[:, j], (up[1] - down[1]) / (2 * h), rtol=1e-4, atol=1e-5)


def test_std_moves_from_the_prior_to_the_study_as_its_points_accumulate():
    prior = [observe(shifted, sobol(30, 1))]
    few = transfer_model(observe(branin, sobol(2, 5)), prior)
    many = transfer_model(observe(branin, sobol(24, 5)), prior)
    assert few._top_weight() < 0.5 < many._top_weight() < 1.0
    no_own = TransferGP.fit(few.prior, np.zeros((0, 2)), np.zeros(0), GPParams.default(2))
    assert no_own._top_weight() == 0.0
    np.testing.assert_allclose(no_own.predict(GRID)[1], few.prior.top.predict(GRID)[1])
    ignored = TransferGP(few.prior, 0.0, 0.0, few.residual)
    np.testing.assert_allclose(ignored.predict(GRID)[1], few.residual.predict(GRID)[1])


# ---- inputs and the strategy ------------------------------------------------------------------


def test_unusable_earlier_trials_are_left_out():
    good = observe(shifted, sobol(6, 1))
    noise = [
        Observation({"x": 0.5, "y": 0.5}, math.nan, "complete"),
        Observation({"x": 0.4, "y": 0.5}, math.inf, "complete"),
        Observation({"x": 0.3, "y": 0.5}, None, "failed"),
        Observation({"x": 0.2, "y": 0.5}, 3.0, "pruned", step=2),
        Observation({"x": 1.5, "y": 0.5}, 3.0, "complete"),  # out of range
        Observation({"x": 0.5}, 3.0, "complete"),  # a parameter missing
        Observation({"x": 0.5, "y": 0.5, "z": 1}, 3.0, "complete"),  # unknown parameter
    ]
    one = observe(shifted, sobol(1, 2))
    flat = [Observation(c, 4.0, "complete") for c in sobol(5, 3)]
    found = sources(request([], [[*good, *noise], [], one, flat, noise]))
    assert len(found) == 1 and len(found[0].y) == 6


def test_a_prior_that_adds_nothing_leaves_the_cold_strategy_unchanged():
    own = observe(branin, sobol(8, 5))
    useless = [
        [],
        observe(shifted, sobol(1, 2)),
        [Observation(c, 4.0, "complete") for c in sobol(4, 3)],
    ]
    cold = GPStrategy().suggest(request(own, []))
    warm = GPStrategy().suggest(request(own, useless))
    assert [s.params for s in warm.suggestions] == [s.params for s in cold.suggestions]
    assert "prior_gp" not in warm.state


def test_no_own_value_yet_is_model_based_and_a_batch_spreads():
    prior = [observe(shifted, sobol(30, 1))]
    result = GPStrategy().suggest(request([], prior, count=3))
    assert [s.info.source for s in result.suggestions] == ["gp"] * 3
    assert result.suggestions[0].info.mean is None  # no own value: no scale to report
    xs = UNIT.encode_many(s.params for s in result.suggestions)
    assert min(np.linalg.norm(xs[i] - xs[j]) for i in range(3) for j in range(i)) > 1e-3
    json.dumps(result.state)
    assert result.state["prior_gp"][0]["n"] == 30


@pytest.mark.parametrize("case", ["constant", "failed", "nan"])
def test_degenerate_own_values_still_suggest(case):
    prior = [observe(shifted, sobol(30, 1))]
    configs = sobol(5, 9)
    value, state = {"constant": (2.0, "complete"), "failed": (None, "failed")}.get(
        case, (math.nan, "complete")
    )
    own = [Observation(c, value, state) for c in configs]  # type: ignore[arg-type]
    result = GPStrategy().suggest(request(own, prior, count=2))
    assert [s.info.source for s in result.suggestions] == ["gp", "gp"]


def test_warm_model_is_used_past_the_initial_design():
    prior = [observe(shifted, sobol(30, 1))]
    own = observe(branin, sobol(25, 5))
    result = GPStrategy().suggest(request(own, prior))
    assert result.suggestions[0].info.source == "gp" and "prior_gp" in result.state


def test_peers_see_the_prior_only_during_their_initial_design():
    prior = [observe(shifted, sobol(6, 1))]
    own = [
        Observation({"x": 0.1, "y": 0.1}, 9.0, "complete"),
        Observation({"x": 0.9, "y": 0.9}, 11.0, "complete"),
    ]
    early = with_initial_prior(request(own, prior), n_initial=5)
    assert len(early.observations) == 8 and early.observations[-2:] == own
    mapped = [float(o.value) for o in early.observations[:6]]  # type: ignore[arg-type]
    assert np.mean(mapped) == pytest.approx(10.0) and np.std(mapped) == pytest.approx(1.0)
    late = request(observe(branin, sobol(5, 2)), prior)
    assert with_initial_prior(late, n_initial=5) is late


@pytest.mark.parametrize("name", ["tpe", "skopt", "random", "sobol"])
def test_other_strategies_accept_a_prior(name):
    strategy, warning = get_strategy(StrategyName(name))
    assert warning is None
    prior = [observe(shifted, sobol(12, 1))]
    result = strategy.suggest(request(observe(branin, sobol(3, 2)), prior, count=2))
    assert len({UNIT.key(s.params) for s in result.suggestions}) == 2
