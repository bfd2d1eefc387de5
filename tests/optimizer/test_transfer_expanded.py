"""The transfer prior over an expanded space: parameters the earlier study never had are
marginalized (the prior is flat along them), values it held fixed are known."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from service.optimizer import Observation, SuggestRequest
from service.optimizer.transfer import fit_prior, sources
from service.space import SearchSpace
from tests.optimizer.test_transfer import request as unit_request

EXPANDED = SearchSpace.from_spec(
    {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "y": {"type": "float", "low": 0.0, "high": 1.0},
        "z": {"type": "float", "low": 0.0, "high": 1.0},
    }
)


def f(x: float, y: float) -> float:
    return (x - 0.3) ** 2 + (y - 0.6) ** 2


def request(prior: list[list[Observation]]) -> SuggestRequest:
    return replace(unit_request([], prior), space=EXPANDED)


def earlier(with_z: float | None) -> list[Observation]:
    rng = np.random.default_rng(0)
    out = []
    for x, y in rng.random((20, 2)):
        params = {"x": float(x), "y": float(y)}
        if with_z is not None:
            params["z"] = with_z
        out.append(Observation(params, f(x, y), "complete"))
    return out


def test_a_parameter_the_earlier_study_lacked_is_marginalized() -> None:
    (src,) = sources(request([earlier(None)]))
    assert src.known is not None and list(src.known) == [True, True, False]
    stack, _ = fit_prior([src], None)
    grid = np.array([[0.3, 0.6, z] for z in np.linspace(0, 1, 5)])
    mean = stack.mean(grid)
    assert np.ptp(mean) < 1e-12
    _, dmean = stack.mean_with_grad(grid)
    assert np.all(dmean[:, 2] == 0)
    _, std, _, dstd = stack.top.predict_with_grad(grid)
    assert np.ptp(std) < 1e-12 and np.all(dstd[:, 2] == 0)
    # the known dimensions still carry the earlier study's shape: better near (0.3, 0.6)
    far = stack.mean(np.array([[0.9, 0.1, 0.5]]))
    assert mean[0] > far[0]
    assert len(stack.lengthscale_centre()) == 3


def test_a_value_the_earlier_study_held_fixed_is_known() -> None:
    (src,) = sources(request([earlier(0.25)]))
    assert src.known is None
    assert np.allclose(src.X[:, 2], 0.25)
