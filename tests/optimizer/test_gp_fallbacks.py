"""The gp strategy's fallbacks and caps: a failing GP step falls back to random search with
a warning, a failing hyperparameter fit reuses the previous (or default) kernel with a
warning, and past 200 observations the fit, past 2,000 the model, use a subset that keeps
the best points."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.optimizer import Observation, StrategySpec, SuggestRequest, gp_strategy, model
from service.optimizer import gp as gp_module
from service.optimizer.gp import GPParams
from service.optimizer.gp_strategy import GPStrategy
from service.optimizer.model import build_model
from service.space import SearchSpace

PLANE = SearchSpace.from_spec(
    {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "y": {"type": "float", "low": 0.0, "high": 1.0},
    }
)
FIT_WARNING = "GP hyperparameter fit failed; reused the previous/default kernel"


def _loss(c: dict[str, Any]) -> float:
    return (c["x"] - 0.3) ** 2 + (c["y"] - 0.7) ** 2


def _history(n: int, seed: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [Observation(c, _loss(c), "complete") for c in PLANE.sample(rng, n)]  # type: ignore[arg-type]


def _request(observations: list[Observation], *, count: int = 1, **state: Any) -> SuggestRequest:
    return SuggestRequest(
        PLANE, "minimize", StrategySpec(n_initial=3), observations, [], count, 0, state  # type: ignore[arg-type]
    )


def test_a_failing_gp_step_falls_back_to_random_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise np.linalg.LinAlgError("covariance matrix is not positive definite")

    monkeypatch.setattr(gp_strategy, "build_model", broken)
    observations = _history(8)
    result = GPStrategy().suggest(_request(observations, count=3))
    assert [s.info.source for s in result.suggestions] == ["random"] * 3
    assert result.warnings == [
        "GP step failed (covariance matrix is not positive definite); used random"
    ]
    seen = {PLANE.key(o.params) for o in observations}
    keys = {PLANE.key(s.params) for s in result.suggestions}
    assert len(keys) == 3 and not keys & seen


def _failing_minimize(*_args: Any, **_kwargs: Any) -> Any:
    raise ValueError("objective is not finite")


def test_a_failed_fit_uses_the_default_kernel_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gp_module, "minimize", _failing_minimize)
    result = GPStrategy().suggest(_request(_history(8)))
    assert result.suggestions[0].info.source == "gp"
    assert FIT_WARNING in result.warnings
    stored = GPParams.from_state(result.state["gp"], PLANE.dim)
    assert stored == GPParams.default(PLANE.dim)


def test_a_failed_refit_keeps_the_previous_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = GPParams((-1.5, -0.5), 0.3, -7.0)
    state = {"gp": {**previous.to_state(), "n_fit": 1}}
    monkeypatch.setattr(gp_module, "minimize", _failing_minimize)
    result = GPStrategy().suggest(_request(_history(8), **state))
    assert FIT_WARNING in result.warnings
    assert GPParams.from_state(result.state["gp"], PLANE.dim) == previous
    assert result.state["gp"]["n_fit"] == 8


def test_a_successful_fit_gives_no_warning() -> None:
    result = GPStrategy().suggest(_request(_history(8)))
    assert result.warnings == []
    assert GPParams.from_state(result.state["gp"], PLANE.dim) != GPParams.default(PLANE.dim)


def test_past_200_observations_the_fit_uses_a_subset_of_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[int] = []
    fit = model.fit_params

    def spy(X: np.ndarray, y: np.ndarray, **kwargs: Any) -> GPParams | None:
        sizes.append(len(X))
        return fit(X, y, **kwargs)

    monkeypatch.setattr(model, "fit_params", spy)
    rng = np.random.default_rng(0)
    for n, expected in ((120, 120), (230, 200)):
        built = build_model(_request(_history(n)), {}, rng)
        assert len(built.data.y) == n  # the model itself keeps every point below 2,000
        assert sizes[-1] == expected


def test_past_2000_observations_the_model_keeps_the_best_quarter_and_a_random_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reuse a stored fit: this test is about the prediction cap, not the fit's cost.
    params = GPParams.default(PLANE.dim)
    state = {"gp": {**params.to_state(), "n_fit": 2100}}
    observations = _history(2100)
    built = build_model(_request(observations), state, np.random.default_rng(1))
    assert len(built.data.y) == len(built.data.rows) == 2000
    assert len(set(built.data.rows.tolist())) == 2000
    values = np.array([o.value for o in observations])
    best_500 = set(np.argsort(values)[:500].tolist())
    assert best_500 <= set(built.data.rows.tolist())
    kept = built.data.X
    np.testing.assert_allclose(
        kept, PLANE.encode_many([observations[i].params for i in built.data.rows])
    )
    mean, _ = built.surrogate.predict(PLANE.encode_many([{"x": 0.3, "y": 0.7}, {"x": 1, "y": 0}]))
    assert mean[0] > mean[1]  # higher is better in model units: the optimum ranks first
