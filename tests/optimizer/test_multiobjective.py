"""Several objectives (log EHVI for the gp strategy, ParEGO over the others) and the
feasibility model, through the strategy seam: suggestions are valid, a batch is spread, the
GP's front beats random search's, and the GP learns to avoid a region that runs out of
memory."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from service.domain import Direction, TrialState
from service.optimizer import Observation, StrategyName, StrategySpec, SuggestRequest, get_strategy
from service.optimizer.feasibility import fit_feasibility
from service.optimizer.gp_strategy import GPStrategy
from service.optimizer.multiobjective import ObjectiveAdapter, scalarize
from service.optimizer.pareto import hypervolume
from service.space import SearchSpace
from service.specs import AcquisitionName

SPACE = SearchSpace.from_spec(
    {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(3)}
)
BOTH_MIN = (Direction.MINIMIZE, Direction.MINIMIZE)


def zdt1(c: dict[str, Any]) -> tuple[float, float]:
    x = [c[f"x{i}"] for i in range(3)]
    g = 1 + 9 * sum(x[1:]) / 2
    return x[0], g * (1 - math.sqrt(x[0] / g))


def request(
    observations: list[Observation], *, name: str = "gp", count: int = 1, seed: int = 0, **kw: Any
) -> SuggestRequest:
    return SuggestRequest(
        space=kw.pop("space", SPACE),
        direction=Direction.MINIMIZE,
        spec=StrategySpec(name=StrategyName(name), acquisition=AcquisitionName.EI),
        observations=observations,
        pending=kw.pop("pending", []),
        count=count,
        seed=seed,
        **kw,
    )


def observe(c: dict[str, Any], values: tuple[float, ...]) -> Observation:
    return Observation(c, values[0], TrialState.COMPLETE, values=values)


def small_gp() -> ObjectiveAdapter:
    """The gp strategy with a smaller candidate pool, to keep multi-trial tests fast."""
    return ObjectiveAdapter(GPStrategy(n_candidates=256))


def run(name: str, n: int, seed: int) -> list[tuple[float, float]]:
    strategy = small_gp() if name == "gp" else get_strategy(StrategyName(name))[0]
    obs: list[Observation] = []
    while len(obs) < n:
        ask = request(obs, name=name, seed=seed + len(obs), directions=BOTH_MIN)
        result = strategy.suggest(ask)
        (s,) = result.suggestions
        obs.append(observe(s.params, zdt1(s.params)))
    return [o.values for o in obs if o.values is not None]  # type: ignore[misc]


def test_scalarization_normalizes_and_skips_missing_values() -> None:
    obs = [
        observe({"x0": 0.0}, (0.0, 10.0)),
        observe({"x0": 0.5}, (1.0, 20.0)),
        Observation({"x0": 0.7}, None, TrialState.FAILED),
        Observation({"x0": 0.9}, 1.0, TrialState.COMPLETE, values=(1.0, math.nan)),
    ]
    out = scalarize(obs, BOTH_MIN, np.array([0.5, 0.5]))
    # z = (0, 0) and (1, 1): s = max(w z) + 0.05 * sum(w z).
    assert out[0].value == pytest.approx(0.0)
    assert out[1].value == pytest.approx(0.5 + 0.05)
    assert out[2].value is None and out[3].value is None
    # A maximized objective flips: the larger value is now the better one.
    flipped = scalarize(obs[:2], (Direction.MINIMIZE, Direction.MAXIMIZE), np.array([0.0, 1.0]))
    assert flipped[1].value == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["gp", "random", "sobol", "tpe"])
def test_every_strategy_answers_a_two_objective_batch(name: str) -> None:
    rng = np.random.default_rng(1)
    obs = [observe(c, zdt1(c)) for c in SPACE.sample(rng, 8)]
    strategy, _ = get_strategy(StrategyName(name))
    result = strategy.suggest(request(obs, name=name, count=4, directions=BOTH_MIN))
    assert len(result.suggestions) == 4
    keys = {SPACE.key(s.params) for s in result.suggestions}
    assert len(keys) == 4
    X = SPACE.encode_many([s.params for s in result.suggestions])
    gaps = [np.linalg.norm(X[i] - X[j]) for i in range(4) for j in range(i)]
    assert min(gaps) > 1e-3


def test_gp_front_beats_random_search_on_zdt1() -> None:
    """16 trials (the first 6 from the Sobol design, then log EHVI) against random search."""
    ref = [1.1, 11.0]
    gp = [hypervolume(run("gp", 16, seed), ref) for seed in (0, 1)]
    rand = [hypervolume(run("random", 16, seed), ref) for seed in (0, 1)]
    assert np.mean(gp) > np.mean(rand), (gp, rand)


def test_feasibility_model_learns_the_infeasible_region_with_a_correct_gradient() -> None:
    space = SearchSpace.from_spec({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    feasible = [Observation({"x": x}, x, TrialState.COMPLETE) for x in (0.05, 0.2, 0.35, 0.5)]
    model = fit_feasibility(
        request(feasible, space=space, infeasible=[{"x": 0.75}, {"x": 0.9}, {"x": 1.0}])
    )
    assert model is not None
    p = model.probability(np.array([[0.2], [0.95]]))
    assert p[0] > 0.8 and p[1] < 0.2
    X = np.array([[0.3], [0.62], [0.8]])
    _, grad = model.log_value_and_grad(X)
    h = 1e-6
    numeric = (model.log_value(X + h) - model.log_value(X - h)) / (2 * h)
    assert grad[:, 0] == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    # Nothing infeasible yet: no model, the acquisition is left alone.
    assert fit_feasibility(request(feasible, space=space)) is None


def oom_search(*, learn_infeasibility: bool) -> tuple[int, float]:
    """30 GP trials on a problem whose optimum (0.6, 0.5) lies on the edge of an
    out-of-memory region (x > 0.6): how many of the last 15 ran out of memory, and the best
    feasible value. Without the feasibility model, out-of-memory trials are plain failures
    (imputed as bad values)."""
    space = SearchSpace.from_spec(
        {name: {"type": "float", "low": 0.0, "high": 1.0} for name in ("x", "y")}
    )
    strategy, _ = get_strategy(StrategyName.GP)
    obs: list[Observation] = []
    infeasible: list[dict[str, Any]] = []
    late = 0
    for i in range(30):
        r = request(obs, space=space, seed=i, infeasible=list(infeasible))
        (s,) = strategy.suggest(r).suggestions
        c = s.params
        if c["x"] > 0.6:
            late += i >= 15
            if learn_infeasibility:
                infeasible.append(c)
            else:
                obs.append(Observation(c, None, TrialState.FAILED))
        else:
            value = (c["x"] - 0.6) ** 2 + (c["y"] - 0.5) ** 2
            obs.append(Observation(c, value, TrialState.COMPLETE))
    return late, min(o.value for o in obs if o.value is not None)


def test_learned_infeasibility_finds_the_optimum_on_the_edge_of_an_oom_region() -> None:
    """The objective's GP extrapolates its trend into the region; the feasibility model keeps
    the search out of it but for a few probes of the edge, and finds a better optimum than
    taking out-of-memory trials for bad values (which keeps far from the edge)."""
    late, best = oom_search(learn_infeasibility=True)
    _, best_as_failures = oom_search(learn_infeasibility=False)
    assert late <= 8
    assert best < 1e-3
    assert best < best_as_failures


def test_constrained_metric_model_gives_the_probability_within_the_bound() -> None:
    """A constraint `size <= 0.5` on a metric size = x: P is high well below 0.5, low well
    above, about one half at the bound; its log's gradient matches finite differences."""
    from service.specs import ConstraintSpec

    space = SearchSpace.from_spec({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    obs = [
        Observation({"x": x}, x, TrialState.COMPLETE, feasible=x <= 0.5, metrics={"size": x})
        for x in np.linspace(0.0, 1.0, 9)
    ]
    r = request(obs, space=space, constraints=(ConstraintSpec(metric="size", max=0.5),))
    model = fit_feasibility(r)
    assert model is not None and model.classifier is None and len(model.metrics) == 1
    p = model.probability(np.array([[0.1], [0.5], [0.9]]))
    assert p[0] > 0.95 and p[2] < 0.05 and 0.2 < p[1] < 0.8
    # Inside the bound (P > DELTA: no penalty kink), between observations (the GP's variance
    # sits at its floor on them).
    X = np.array([[0.3], [0.42], [0.45]])
    _, grad = model.log_value_and_grad(X)
    h = 1e-6
    numeric = (model.log_value(X + h) - model.log_value(X - h)) / (2 * h)
    assert grad[:, 0] == pytest.approx(numeric, rel=1e-3, abs=1e-5)
    # Both bounds: P is high only between them.
    both = request(obs, space=space, constraints=(ConstraintSpec(metric="size", min=0.3, max=0.7),))
    model = fit_feasibility(both)
    assert model is not None
    p = model.probability(np.array([[0.05], [0.5], [0.95]]))
    assert p[1] > 0.9 and p[0] < 0.1 and p[2] < 0.1
    X = np.array([[0.42], [0.55], [0.58]])
    _, grad = model.log_value_and_grad(X)
    numeric = (model.log_value(X + h) - model.log_value(X - h)) / (2 * h)
    assert grad[:, 0] == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def dtlz2(c: dict[str, Any]) -> tuple[float, float, float]:
    x = [c[f"x{i}"] for i in range(3)]
    g = (x[2] - 0.5) ** 2
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return (
        (1 + g) * math.cos(a) * math.cos(b),
        (1 + g) * math.cos(a) * math.sin(b),
        (1 + g) * math.sin(a),
    )


@pytest.mark.parametrize("k", [2, 3])
def test_gp_batch_under_pending_points_is_spread_by_hypervolume_improvement(k: int) -> None:
    """Four suggestions with two trials pending: every one chosen by log EHVI, and no two of
    the six points close together (the believed values join the front, the variance shrinks
    around each)."""
    rng = np.random.default_rng(k)
    f = zdt1 if k == 2 else dtlz2
    directions = (Direction.MINIMIZE,) * k
    obs = [observe(c, f(c)) for c in SPACE.sample(rng, 12)]
    pending = SPACE.sample(rng, 2)
    result = small_gp().suggest(
        request(obs, count=4, pending=pending, directions=directions, seed=5)
    )
    assert [s.info.acquisition for s in result.suggestions] == ["log_ehvi"] * 4
    assert all(s.info.source == "gp" and s.info.mean is not None for s in result.suggestions)
    X = SPACE.encode_many([*pending, *(s.params for s in result.suggestions)])
    gaps = [np.linalg.norm(X[i] - X[j]) for i in range(len(X)) for j in range(i)]
    assert min(gaps) > 0.05, min(gaps)


@pytest.mark.parametrize(
    "values",
    [
        # NaN and infinite values, a failed trial, a duplicate configuration.
        lambda i, c: (math.nan, 1.0) if i == 0 else (math.inf, 0.0) if i == 1 else zdt1(c),
        # A constant objective.
        lambda i, c: (c["x0"], 3.0),
        # Every observation but one failed.
        lambda i, c: zdt1(c) if i == 0 else None,
        # Every observation failed.
        lambda i, c: None,
    ],
)
def test_gp_answers_awkward_two_objective_histories(values: Any) -> None:
    rng = np.random.default_rng(0)
    configs = SPACE.sample(rng, 9)
    configs.append(dict(configs[-1]))
    obs = []
    for i, c in enumerate(configs):
        v = values(i, c)
        if v is None:
            obs.append(Observation(c, None, TrialState.FAILED))
        else:
            obs.append(Observation(c, v[0], TrialState.COMPLETE, values=v))
    strategy, _ = get_strategy(StrategyName.GP)
    result = strategy.suggest(request(obs, count=3, directions=BOTH_MIN))
    keys = {SPACE.key(s.params) for s in result.suggestions}
    assert len(keys) == 3 and not keys & {SPACE.key(c) for c in configs}
    assert not any("failed" in w for w in result.warnings), result.warnings


def test_gp_hypervolume_step_keeps_out_of_an_infeasible_region() -> None:
    """ZDT1 whose region x0 > 0.5 runs out of memory: the feasibility weight on log EHVI
    keeps most late trials out of it (only the feasible half of the front counts)."""
    strategy = small_gp()
    obs: list[Observation] = []
    infeasible: list[dict[str, Any]] = []
    late = 0
    for i in range(22):
        r = request(obs, seed=i, directions=BOTH_MIN, infeasible=list(infeasible))
        (s,) = strategy.suggest(r).suggestions
        if s.params["x0"] > 0.5:
            infeasible.append(s.params)
            late += i >= 12
        else:
            obs.append(observe(s.params, zdt1(s.params)))
    assert late <= 2, late
