"""Log expected hypervolume improvement: the box decomposition against pareto.py's exact
hypervolume, the Monte Carlo estimate against brute force, and its gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.optimizer.ehvi import LogEHVI, improvement, nondominated_boxes, normal_draws
from service.optimizer.pareto import hypervolume, nondominated


def random_front(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    Y = rng.random((n, k))
    return Y[nondominated(Y)]


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("n", [0, 1, 7, 25])
def test_boxes_cover_exactly_what_the_front_does_not_dominate(k: int, n: int) -> None:
    rng = np.random.default_rng(n * 10 + k)
    front = random_front(rng, n, k) if n else np.zeros((0, k))
    ref = np.full(k, 1.1)
    lower, upper = nondominated_boxes(front, ref)
    base = hypervolume(front, ref) if n else 0.0
    # Clipped at a lower corner L, the boxes and the dominated region fill [L, ref] exactly.
    corner = np.full(k, -0.5)
    clipped = np.prod(np.maximum(upper - np.maximum(lower, corner), 0.0), axis=1).sum()
    assert clipped + base == pytest.approx(np.prod(ref - corner), rel=1e-12)
    # The improvement of a new point is the hypervolume it adds, for points anywhere.
    Y = rng.random((40, k)) * 1.4 - 0.2
    added = [hypervolume(np.vstack([front, y]), ref) - base for y in Y]
    assert improvement(Y, lower, upper) == pytest.approx(added, abs=1e-12)


def test_points_outside_the_reference_box_and_duplicates_change_nothing() -> None:
    ref = np.array([1.0, 1.0, 1.0])
    front = np.array([[0.2, 0.5, 0.4], [0.5, 0.2, 0.3], [0.3, 0.3, 0.9]])
    noisy = np.vstack([front, front[:1], [[1.5, 0.0, 0.0]], [[0.1, np.nan, 0.1]]])
    Y = np.random.default_rng(3).random((30, 3))
    a = improvement(Y, *nondominated_boxes(front, ref))
    b = improvement(Y, *nondominated_boxes(noisy, ref))
    assert a == pytest.approx(b, abs=1e-15)


@pytest.mark.parametrize("k", [2, 3])
def test_ehvi_matches_brute_force_monte_carlo(k: int) -> None:
    """exp(log EHVI) with 1,024 quasi-random draws against the mean of the exact hypervolume
    gain over 1,500 pseudo-random draws of the posterior."""
    rng = np.random.default_rng(k)
    front = random_front(rng, 6, k)
    ref = np.full(k, 1.1)
    base = hypervolume(front, ref)
    lower, upper = nondominated_boxes(front, ref)
    acq = LogEHVI(lower, upper, normal_draws(1024, k, seed=0))
    means = np.array([np.full(k, 0.45), np.full(k, 0.7), np.linspace(0.1, 0.9, k)])
    stds = np.array([np.full(k, 0.2), np.full(k, 0.3), np.linspace(0.3, 0.05, k)])
    estimate = np.exp(acq.value(means, stds))
    for mean, std, got in zip(means, stds, estimate, strict=True):
        Y = mean + std * rng.standard_normal((1500, k))
        gains = np.array([hypervolume(np.vstack([front, y]), ref) - base for y in Y])
        standard_error = gains.std() / math.sqrt(len(gains))
        assert gains.mean() > 1e-4
        assert abs(got - gains.mean()) < 4 * standard_error + 1e-3 * gains.mean(), (
            got,
            gains.mean(),
        )


def test_log_ehvi_gradient_matches_finite_differences_and_stays_finite_far_away() -> None:
    rng = np.random.default_rng(7)
    front = random_front(rng, 8, 3)
    acq = LogEHVI(*nondominated_boxes(front, np.full(3, 1.1)), normal_draws(64, 3, seed=1))
    mean = rng.random((5, 3))
    std = 0.05 + 0.2 * rng.random((5, 3))
    _, d_mean, d_std = acq.value_and_grad(mean, std)
    h = 1e-6
    for j in range(3):
        step = np.zeros((5, 3))
        step[:, j] = h
        numeric = (acq.value(mean + step, std) - acq.value(mean - step, std)) / (2 * h)
        assert d_mean[:, j] == pytest.approx(numeric, rel=1e-4, abs=1e-6)
        numeric = (acq.value(mean, std + step) - acq.value(mean, std - step)) / (2 * h)
        assert d_std[:, j] == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    # Behind the front with a tiny std no draw improves: the log stays finite and still ranks
    # the nearer point higher.
    far = acq.value(np.array([[0.95, 0.95, 0.95], [1.05, 1.05, 1.05]]), np.full((2, 3), 1e-6))
    assert np.all(np.isfinite(far)) and far[0] > far[1]
