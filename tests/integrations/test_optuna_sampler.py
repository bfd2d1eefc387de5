"""TunesmithSampler held to Optuna's own sampler test cases, plus its own rules."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import TrialState, create_trial

from service.integrations.optuna import TunesmithSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestTunesmithSampler(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    """Optuna's shipped cases, twice: with the defaults (most cases then end inside the Sobol
    design) and with the GP from the second trial on (every case then runs the model)."""

    @pytest.fixture(params=["defaults", "gp-from-trial-2"])
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        if request.param == "defaults":
            return lambda: TunesmithSampler(seed=0)
        return lambda: TunesmithSampler(seed=0, n_startup_trials=1)


def _quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    k = trial.suggest_int("k", 0, 10, step=2)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    act = trial.suggest_categorical("act", ["relu", None, 3])
    penalty = {"relu": 0.0, None: 1.0, 3: 2.0}[act]
    return (x - 1.0) ** 2 + (k - 4) ** 2 + math.log10(lr / 1e-2) ** 2 + penalty


def test_gp_suggestions_follow_the_grid_and_the_model() -> None:
    study = optuna.create_study(sampler=TunesmithSampler(seed=1, n_startup_trials=6))
    study.optimize(_quadratic, n_trials=30)
    sources = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(sources) == 30
    for t in sources:
        assert t.params["k"] in range(0, 11, 2)
        assert 1e-4 <= t.params["lr"] <= 1e-1
    assert study.best_value < 1.0  # random search's median best after 30 trials is ~3


def test_seed_makes_the_sampler_reproducible() -> None:
    def run() -> list[dict[str, object]]:
        study = optuna.create_study(sampler=TunesmithSampler(seed=7, n_startup_trials=3))
        study.optimize(_quadratic, n_trials=8)
        return [t.params for t in study.trials]

    assert run() == run()


def test_pending_trials_are_not_suggested_again() -> None:
    """Running trials condition the model: asked in a row, no configuration repeats even on a
    grid of 6 x 6 points."""
    space = {"a": IntDistribution(0, 5), "b": FloatDistribution(0, 1, step=0.2)}
    study = optuna.create_study(sampler=TunesmithSampler(seed=3, n_startup_trials=2))
    for _ in range(3):
        trial = study.ask(space)
        study.tell(trial, trial.params["a"] + trial.params["b"])
    running = [study.ask(space) for _ in range(8)]
    keys = {(t.params["a"], round(t.params["b"], 6)) for t in running}
    assert len(keys) == 8


def test_history_maps_pruned_failed_and_foreign_trials() -> None:
    """Pruned trials count at their last intermediate value; trials whose distribution
    differs are left out; failed ones are observations without value."""
    space = {"x": FloatDistribution(0, 1)}
    study = optuna.create_study(sampler=TunesmithSampler(seed=0, n_startup_trials=1))
    study.add_trial(create_trial(params={"x": 0.2}, distributions=space, value=1.0))
    study.add_trial(
        create_trial(
            params={"x": 0.4},
            distributions=space,
            state=TrialState.PRUNED,
            intermediate_values={1: 5.0, 3: 4.0},
        )
    )
    study.add_trial(create_trial(params={"x": 0.6}, distributions=space, state=TrialState.FAIL))
    other = {"x": FloatDistribution(0, 2)}
    study.add_trial(create_trial(params={"x": 1.5}, distributions=other, value=0.0))
    sampler = study.sampler
    assert isinstance(sampler, TunesmithSampler)
    from service.integrations.optuna_space import EngineSpace

    study.ask()
    current = study.trials[-1]
    observations, pending = sampler._history(study, current, EngineSpace(space))
    assert [(o.params["x"], o.value, o.state, o.step) for o in observations] == [
        (0.2, 1.0, "complete", None),
        (0.4, 4.0, "pruned", 3),
        (0.6, None, "failed", None),
    ]
    assert pending == []


def test_engine_space_round_trips_every_distribution() -> None:
    from service.integrations.optuna_space import EngineSpace

    space = {
        "f": FloatDistribution(-1, 1),
        "fl": FloatDistribution(1e-5, 1, log=True),
        "fs": FloatDistribution(-10.2, 10.2, step=0.1),
        "i": IntDistribution(-3, 7),
        "il": IntDistribution(1, 1000, log=True),
        "is": IntDistribution(3, 9, step=2),
        "c": CategoricalDistribution([None, True, 2, 1.5, "a"]),
    }
    engine = EngineSpace(space)
    rng = np.random.default_rng(0)
    for config in engine.space.sample(rng, 200):
        values = engine.to_optuna(config)
        for name, dist in space.items():
            assert dist._contains(dist.to_internal_repr(values[name])), (name, values[name])
        assert engine.to_engine(values) == config


def test_multi_objective_is_refused() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=TunesmithSampler())
    with pytest.raises(ValueError, match="one objective"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=1)
