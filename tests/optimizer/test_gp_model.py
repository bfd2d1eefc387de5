"""The GP model: recovery of a known function, gradients, conditioning, degenerate data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from service.optimizer.gp import GaussianProcess, GPParams, _neg_log_posterior, fit_params
from service.optimizer.warping import OutputWarp


def _fit(X: np.ndarray, y: np.ndarray) -> GaussianProcess:
    params = fit_params(X, y, starts=[GPParams.default(X.shape[1])])
    assert params is not None
    return GaussianProcess(X, y, params)


def test_recovers_a_known_1d_function_within_its_error_bars():
    f = lambda x: np.sin(6 * x) + 0.5 * x  # noqa: E731
    X = np.linspace(0, 1, 12)[:, None]
    y = f(X[:, 0])
    gp = _fit(X, (y - y.mean()) / y.std())
    Xq = np.linspace(0.02, 0.98, 50)[:, None]
    mean, std = gp.predict(Xq)
    mean = mean * y.std() + y.mean()
    std = std * y.std()
    err = np.abs(mean - f(Xq[:, 0]))
    assert np.all(err <= 3 * std + 1e-3)
    assert err.max() < 0.05


def test_marginal_likelihood_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    X = rng.random((15, 3))
    y = np.sin(3 * X).sum(1)
    y = (y - y.mean()) / y.std()
    theta = np.array([-0.5, 0.2, 1.0, 0.3, -4.0])
    _, grad = _neg_log_posterior(theta, X, y)
    fd = approx_fprime(theta, lambda t: _neg_log_posterior(t, X, y)[0], 1e-6)
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-4)


def test_prediction_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    X = rng.random((20, 3))
    y = np.cos(4 * X).sum(1)
    gp = _fit(X, (y - y.mean()) / y.std()).condition_on_pending(rng.random((2, 3)))
    Xq = rng.random((4, 3))
    _, _, dmean, dstd = gp.predict_with_grad(Xq)
    h = 1e-6
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        mp, sp = gp.predict(Xq + step)
        mm, sm = gp.predict(Xq - step)
        np.testing.assert_allclose(dmean[:, j], (mp - mm) / (2 * h), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(dstd[:, j], (sp - sm) / (2 * h), rtol=1e-4, atol=1e-6)


def test_pending_points_shrink_variance_and_keep_mean():
    rng = np.random.default_rng(3)
    X = 0.5 * rng.random((10, 2))
    y = np.sin(6 * X).sum(1)
    gp = _fit(X, (y - y.mean()) / y.std())
    Xp = np.array([[0.9, 0.9]])
    m0, s0 = gp.predict(Xp)
    m1, s1 = gp.condition_on_pending(Xp).predict(Xp)
    np.testing.assert_allclose(m0, m1)
    assert s1[0] < 0.2 * s0[0]


@pytest.mark.parametrize(
    "X, y",
    [
        (np.array([[0.3, 0.7]]), np.array([0.0])),
        (np.array([[0.3, 0.7]] * 5 + [[0.1, 0.1]]), np.array([1.0, 1.1, 0.9, 1.0, 1.0, -1.0])),
        (np.random.default_rng(4).random((8, 2)), np.zeros(8)),
    ],
    ids=["single", "duplicates", "constant"],
)
def test_degenerate_data_fits_and_predicts_finite(X, y):
    warp = OutputWarp.fit(y)
    gp = _fit(X, warp.y)
    mean, std = gp.predict(np.random.default_rng(5).random((10, 2)))
    assert np.all(np.isfinite(mean)) and np.all(std > 0)


def test_output_warp_tames_outliers_and_imputes_failures():
    values = np.array([-1.0, -1.2, -0.9, -1e9, np.nan, -1.1, -0.95])
    warp = OutputWarp.fit(values)
    assert np.all(np.isfinite(warp.y))
    assert np.argmax(warp.y) == 2
    good = warp.y[[0, 1, 2, 5, 6]]
    assert warp.y.min() > good.min() - 5 * good.std()
    mean, std = warp.to_original(warp.y[[2]], np.array([0.1]))
    np.testing.assert_allclose(mean, [-0.9])
    assert std[0] > 0
