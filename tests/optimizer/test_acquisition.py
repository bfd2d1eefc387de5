"""EI, PI and UCB against scikit-optimize's functions (the oracle), log-EI, and gradients."""

from __future__ import annotations

import numpy as np
import pytest

from service.optimizer.acquisition import Acquisition, ei, log_ei, log_h, pi, ucb
from service.specs import AcquisitionName

skopt_acq = pytest.importorskip("skopt.acquisition")


class ConstantModel:
    """A fake surrogate for skopt: fixed mean and std (skopt minimizes)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean, self.std = mean, std

    def predict(self, X: np.ndarray, return_std: bool = False) -> tuple[np.ndarray, np.ndarray]:
        return self.mean, self.std


@pytest.fixture
def prediction() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=50), rng.uniform(0.01, 2.0, size=50)


@pytest.mark.parametrize("xi", [0.0, 0.01, 0.5])
def test_ei_and_pi_equal_skopt_with_directions_mapped(prediction, xi):
    mu_min, std = prediction
    y_opt = -0.3
    X = np.zeros((len(mu_min), 1))
    model = ConstantModel(mu_min, std)
    expected_ei = skopt_acq.gaussian_ei(X, model, y_opt=y_opt, xi=xi)
    expected_pi = skopt_acq.gaussian_pi(X, model, y_opt=y_opt, xi=xi)
    # skopt minimizes; we maximize -f with incumbent -y_opt.
    np.testing.assert_allclose(ei(-mu_min, std, best=-y_opt, xi=xi), expected_ei, rtol=1e-10)
    np.testing.assert_allclose(pi(-mu_min, std, best=-y_opt, xi=xi), expected_pi, rtol=1e-10)


@pytest.mark.parametrize("beta", [0.5, 1.96, 4.0])
def test_ucb_is_negated_skopt_lcb(prediction, beta):
    mu_min, std = prediction
    model = ConstantModel(mu_min, std)
    expected = skopt_acq.gaussian_lcb(np.zeros((len(mu_min), 1)), model, kappa=beta)
    np.testing.assert_allclose(ucb(-mu_min, std, beta=beta), -expected, rtol=1e-12)


def test_zero_std_gives_zero_ei_and_pi():
    mean, std = np.array([1.0, -1.0]), np.zeros(2)
    assert ei(mean, std, best=0.0, xi=0.0).tolist() == [0.0, 0.0]
    assert pi(mean, std, best=0.0, xi=0.0).tolist() == [0.0, 0.0]


def test_log_ei_matches_log_of_ei_where_ei_is_representable():
    mean = np.linspace(-5, 3, 200)
    std = np.full_like(mean, 0.7)
    np.testing.assert_allclose(
        log_ei(mean, std, best=0.2, xi=0.01), np.log(ei(mean, std, best=0.2, xi=0.01)), rtol=1e-9
    )


def test_log_h_is_finite_and_monotone_where_ei_underflows():
    z = -np.logspace(0, 12, 400)
    values = log_h(z)
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) < 0)
    assert ei(np.array([-40.0]), np.array([1.0]), best=0.0, xi=0.0)[0] == 0.0  # underflows
    assert np.isfinite(log_ei(np.array([-40.0]), np.array([1.0]), best=0.0, xi=0.0)[0])
    expected = -0.5e18 - 0.5 * np.log(2 * np.pi) - 2 * np.log(1e9)
    np.testing.assert_allclose(log_h(np.array([-1e9]))[0], expected)


@pytest.mark.parametrize("noise", [0.0, 0.3])
@pytest.mark.parametrize("name", list(AcquisitionName)[:3])
def test_value_and_grad_matches_finite_differences(name, noise):
    acq = Acquisition(name, beta=2.0, xi=0.01, best=0.4, noise=noise)
    mean = np.array([-30.0, -2.0, 0.1, 0.4, 1.5])
    std = np.array([0.5, 0.3, 1.0, 0.05, 2.0])
    _, dm, ds = acq.value_and_grad(mean, std)
    h = 1e-6
    fd_m = (acq.value_and_grad(mean + h, std)[0] - acq.value_and_grad(mean - h, std)[0]) / (2 * h)
    fd_s = (acq.value_and_grad(mean, std + h)[0] - acq.value_and_grad(mean, std - h)[0]) / (2 * h)
    np.testing.assert_allclose(dm, fd_m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds, fd_s, rtol=1e-5, atol=1e-6)


def test_noisy_ei_and_pi_stop_resampling_where_the_mean_is_known_to_within_the_noise():
    """Same mean, same EI without noise; with a noise variance of 0.3 the point whose std is
    already far below the noise is worth much less than an unexplored one, and the reported
    value agrees with the maximized (log) form."""
    mean, std = np.array([0.5, 0.5]), np.array([0.05, 1.0])
    for name in (AcquisitionName.EI, AcquisitionName.PI):
        quiet = Acquisition(name, best=0.4, noise=0.0)
        noisy = Acquisition(name, best=0.4, noise=0.3)
        assert np.all(noisy.value(mean, std) < quiet.value(mean, std))
        ratio = noisy.value(mean, std) / quiet.value(mean, std)
        assert ratio[0] < 0.01 < 0.3 < ratio[1]
        np.testing.assert_allclose(
            np.log(noisy.value(mean, std)), noisy.value_and_grad(mean, std)[0], rtol=1e-9
        )
    # Below the NOISY threshold (a deterministic objective's noise floor) nothing changes.
    floor = Acquisition(AcquisitionName.EI, best=0.4, noise=1e-3)
    np.testing.assert_array_equal(
        floor.value(mean, std), Acquisition(AcquisitionName.EI, best=0.4).value(mean, std)
    )
