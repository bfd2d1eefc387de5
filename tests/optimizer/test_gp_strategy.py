"""The gp strategy end to end through the seam, and the peers behind the same seam."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from service.optimizer import (
    Observation,
    StrategyName,
    StrategySpec,
    SuggestRequest,
    SuggestResult,
    get_strategy,
)
from service.optimizer.gp_strategy import GPStrategy
from service.space import SearchSpace

MIXED = SearchSpace.from_spec(
    {
        "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
        "x": {"type": "float", "low": -2.0, "high": 2.0},
        "layers": {"type": "int", "low": 1, "high": 8},
        "batch": {"type": "int", "low": 16, "high": 512, "log": True},
        "opt": {"type": "categorical", "choices": ["adam", "sgd", True, 3]},
        "seed": {"type": "fixed", "value": 7},
    }
)


def objective(c: dict[str, Any]) -> float:
    penalty = {"adam": 0.0, "sgd": 0.5, True: 1.0, 3: 2.0}[c["opt"]]
    return (
        (math.log10(c["lr"]) + 3) ** 2 + c["x"] ** 2 + 0.1 * abs(c["layers"] - 3) + penalty
    ) + 0.01 * math.log2(c["batch"])


def ask(
    space: SearchSpace,
    observations: list[Observation],
    *,
    pending: list[dict[str, Any]] | None = None,
    count: int = 1,
    seed: int = 0,
    state: dict[str, Any] | None = None,
    direction: str = "minimize",
    **spec: Any,
) -> SuggestResult:
    strategy_spec = StrategySpec(**spec)
    strategy, warning = get_strategy(strategy_spec.name)
    assert warning is None
    result = strategy.suggest(
        SuggestRequest(
            space=space,
            direction=direction,  # type: ignore[arg-type]
            spec=strategy_spec,
            observations=observations,
            pending=pending or [],
            count=count,
            seed=seed,
            state=state or {},
        )
    )
    assert len(result.suggestions) == count
    json.dumps(result.state)
    for s in result.suggestions:
        json.dumps(s.info.to_json())
        assert space.validate(s.params) == s.params
        assert all(type(v) in (int, float, str, bool) for v in s.params.values())
    return result


def history(space: SearchSpace, n: int, seed: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [Observation(c, objective(c), "complete") for c in space.sample(rng, n)]


def keys(space: SearchSpace, configs: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {space.key(c) for c in configs}


@pytest.mark.parametrize("acquisition", ["auto", "ei", "pi", "ucb"])
def test_count_four_gives_distinct_unseen_valid_points(acquisition):
    obs = history(MIXED, 12)
    result = ask(MIXED, obs, count=4, acquisition=acquisition)
    configs = [s.params for s in result.suggestions]
    assert len(keys(MIXED, configs)) == 4
    assert not keys(MIXED, configs) & keys(MIXED, [o.params for o in obs])
    info = result.suggestions[0].info
    assert info.source == "gp"
    assert {"acquisition", "acquisition_value", "mean", "std"} <= set(info.to_json())


def test_four_sequential_calls_with_pending_are_distinct_and_state_round_trips():
    obs = history(MIXED, 12)
    pending: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    for i in range(4):
        result = ask(MIXED, obs, pending=pending, seed=i, state=state)
        state = json.loads(json.dumps(result.state))
        pending.append(result.suggestions[0].params)
    assert len(keys(MIXED, pending)) == 4
    assert "gp" in state and "hedge" in state


def test_pending_points_spread_the_batch():
    space = SearchSpace.from_spec({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    obs = [Observation({"x": x}, (x - 0.5) ** 2, "complete") for x in (0.0, 0.2, 0.8, 1.0, 0.45)]
    result = ask(space, obs, count=4, acquisition="ucb")
    xs = sorted(s.params["x"] for s in result.suggestions)
    assert min(np.diff(xs)) > 1e-3


def test_initial_design_is_sobol_then_gp():
    assert ask(MIXED, [], count=3).suggestions[0].info.source == "sobol"
    result = ask(MIXED, history(MIXED, 3), count=1, n_initial=3)
    assert result.suggestions[0].info.source == "gp"


def test_all_nan_study_does_not_crash():
    rng = np.random.default_rng(0)
    obs = [Observation(c, math.nan, "failed") for c in MIXED.sample(rng, 15)]
    obs += [Observation(c, None, "failed") for c in MIXED.sample(rng, 3)]
    result = ask(MIXED, obs, count=2)
    assert len(keys(MIXED, [s.params for s in result.suggestions])) == 2


def test_failed_and_pruned_trials_mixed_in():
    obs = history(MIXED, 10)
    rng = np.random.default_rng(9)
    obs += [Observation(c, math.inf, "failed") for c in MIXED.sample(rng, 3)]
    obs += [Observation(c, 5.0, "pruned", step=3) for c in MIXED.sample(rng, 3)]
    assert ask(MIXED, obs, count=2).suggestions[0].info.source == "gp"


@pytest.mark.parametrize("case", ["single", "duplicates", "constant"])
def test_degenerate_histories(case):
    space = SearchSpace.from_spec(
        {"a": {"type": "float", "low": 0, "high": 1}, "b": {"type": "int", "low": 0, "high": 9}}
    )
    if case == "single":
        obs = [Observation({"a": 0.3, "b": 2}, 1.0, "complete")]
    elif case == "duplicates":
        obs = [Observation({"a": 0.3, "b": 2}, 1.0 + 0.1 * i, "complete") for i in range(6)]
    else:
        obs = [Observation(c, 4.2, "complete") for c in space.sample(np.random.default_rng(0), 8)]
    result = ask(space, obs, count=3, n_initial=1)
    assert len(keys(space, [s.params for s in result.suggestions])) == 3
    assert math.isfinite(result.suggestions[0].info.mean)


def test_finite_space_is_exhausted_before_any_repeat():
    space = SearchSpace.from_spec(
        {
            "k": {"type": "int", "low": 1, "high": 3},
            "c": {"type": "categorical", "choices": ["a", "b"]},
        }
    )
    obs: list[Observation] = []
    for i in range(6):
        params = ask(space, obs, seed=i, n_initial=2).suggestions[0].params
        obs.append(Observation(params, float(params["k"]), "complete"))
    assert len(keys(space, [o.params for o in obs])) == 6
    assert len(ask(space, obs, count=2).suggestions) == 2


def test_info_mean_is_in_objective_units_and_direction():
    space = SearchSpace.from_spec({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    xs = np.linspace(0, 1, 9)
    obs = [Observation({"x": float(x)}, 1000.0 + 10.0 * x, "complete") for x in xs]
    info = ask(space, obs, direction="maximize", acquisition="ei").suggestions[0].info
    assert 1000.0 < info.mean < 1015.0 and 0.0 < info.std < 5.0


def test_refit_reuses_stored_hyperparameters_between_refits():
    strategy = GPStrategy(always_refit_below=1, refit_divisor=1)
    obs = history(MIXED, 20)
    spec = StrategySpec()
    req = SuggestRequest(MIXED, "minimize", spec, obs, [], 1, 0, {})
    first = strategy.suggest(req)
    gp_state = first.state["gp"]
    assert gp_state["n_fit"] == 20
    again = strategy.suggest(SuggestRequest(MIXED, "minimize", spec, obs, [], 1, 1, first.state))
    assert again.state["gp"] == gp_state


@pytest.mark.parametrize("name", [StrategyName.TPE, StrategyName.SKOPT])
def test_peers_behind_the_seam_give_distinct_plain_valid_points(name):
    pytest.importorskip("optuna" if name == StrategyName.TPE else "skopt")
    obs = history(MIXED, 8)
    obs.append(Observation(MIXED.sample(np.random.default_rng(3), 1)[0], None, "failed"))
    pending = [MIXED.sample(np.random.default_rng(4), 1)[0]]
    count = 2 if name == StrategyName.TPE else 1  # skopt refits once per point: keep it short
    result = ask(MIXED, obs, pending=pending, count=count, name=name.value, n_initial=5)
    configs = [s.params for s in result.suggestions]
    assert len(keys(MIXED, configs)) == count
    assert not keys(MIXED, configs) & keys(MIXED, [*pending, *(o.params for o in obs)])
