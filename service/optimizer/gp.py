"""A Gaussian-process regressor in numpy/scipy: Matern-5/2 ARD kernel, MAP-fitted.

Shapes (n observations, m query points, d encoded columns):

    X: (n, d) in the unit cube        y: (n,) standardized, higher is better
    Xq: (m, d)                        mean, std: (m,)      dmean, dstd: (m, d)
    lengthscales: (d,)                K_inv: (n + k, n + k) inverse of K + noise I over the
                                      observed and k pending points

Model: y = f(X) + eps, f ~ GP(0, signal * matern52(r)), r^2 = sum_j ((x_j - x'_j) / l_j)^2,
eps ~ N(0, noise). Hyperparameters are fitted by maximizing log marginal likelihood plus log
priors (MAP), all in log space:

    log l_j    ~ N(-0.7 + log(d) / 2, 1)         (dimension-scaled as in Hvarfner et al. 2024,
                                                  centred shorter: chosen on the benchmark)
    log signal ~ N(0, 1)                          (outputs are standardized)
    log noise  ~ N(-6, 4)                         (near-deterministic objectives by default)

The priors keep the fit sensible with 1 to 5 points. Cholesky adds jitter (growing tenfold, at
most 6 times) when K + noise I is not numerically positive definite. Only `fit` and
`GaussianProcess.__init__` cost O(n^3); prediction costs O(m n^2), conditioning on k pending
points O(k n^2), `with_targets` (same kernel, other y) O(n^2), and a `PosteriorMean` (the mean
alone, for the lower levels of a warm-start prior) O(m n d).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.linalg import LinAlgError, cho_solve, lapack
from scipy.optimize import minimize

logger = logging.getLogger(__name__)

_SQRT5 = math.sqrt(5.0)
_LOG_L_BOUNDS = (math.log(5e-3), math.log(1e2))
_LOG_SIGNAL_BOUNDS = (math.log(5e-2), math.log(2e1))
_LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(5e-1))
_SIGNAL_PRIOR = (0.0, 1.0)
_NOISE_PRIOR = (-6.0, 2.0)


def _lengthscale_prior(d: int) -> tuple[float, float]:
    return -0.7 + 0.5 * math.log(max(d, 1)), 1.0


@dataclass(frozen=True)
class GPParams:
    """Kernel hyperparameters, in log space; JSON round-trips through to_state/from_state."""

    log_lengthscales: tuple[float, ...]
    log_signal: float
    log_noise: float

    @property
    def theta(self) -> np.ndarray:
        return np.array([*self.log_lengthscales, self.log_signal, self.log_noise])

    @classmethod
    def from_theta(cls, theta: np.ndarray) -> GPParams:
        return cls(tuple(float(v) for v in theta[:-2]), float(theta[-2]), float(theta[-1]))

    @classmethod
    def default(cls, d: int) -> GPParams:
        """The prior mode: where fitting starts and what it falls back to."""
        mu_l, _ = _lengthscale_prior(d)
        return cls((mu_l,) * d, _SIGNAL_PRIOR[0], _NOISE_PRIOR[0])

    def to_state(self) -> dict[str, Any]:
        return {
            "log_lengthscales": list(self.log_lengthscales),
            "log_signal": self.log_signal,
            "log_noise": self.log_noise,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], d: int) -> GPParams | None:
        """Returns None when the stored parameters do not fit a d-column space."""
        try:
            ls = tuple(float(v) for v in state["log_lengthscales"])
            params = cls(ls, float(state["log_signal"]), float(state["log_noise"]))
        except (KeyError, TypeError, ValueError):
            return None
        if len(ls) != d or not np.all(np.isfinite(params.theta)):
            return None
        return params


def matern52(X1: np.ndarray, X2: np.ndarray, lengthscales: np.ndarray, signal: float) -> np.ndarray:
    r = _distance(X1, X2, lengthscales)
    return signal * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-_SQRT5 * r)


def _distance(X1: np.ndarray, X2: np.ndarray, lengthscales: np.ndarray) -> np.ndarray:
    A = X1 / lengthscales
    B = X2 / lengthscales
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.sqrt(np.maximum(sq, 0.0))


def safe_cholesky(K: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, adding diagonal jitter when needed; raises LinAlgError at last."""
    jitter = 0.0
    scale = float(np.mean(np.diag(K))) if K.size else 1.0
    for attempt in range(7):
        try:
            return np.linalg.cholesky(K + jitter * np.eye(len(K)))
        except np.linalg.LinAlgError:
            jitter = scale * 1e-9 * 10.0**attempt
    raise LinAlgError("covariance matrix is not positive definite even with jitter")


def _inverse_from_cholesky(L: np.ndarray) -> np.ndarray:
    """(L L^T)^-1 by LAPACK potri (a third of the work of solving against the identity)."""
    if not len(L):
        # A transfer model's residual GP before the study's first value: potri rejects n = 0.
        return np.zeros((0, 0))
    inv, info = lapack.dpotri(L, lower=1)
    if info != 0:
        return cho_solve((L, True), np.eye(len(L)))
    return np.tril(inv) + np.tril(inv, -1).T


class Surrogate(Protocol):
    """What the acquisition maximizer needs from a model: a GP, or a transfer model whose mean
    adds a prior from earlier studies (service/optimizer/transfer.py)."""

    def predict(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def predict_with_grad(
        self, Xq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...

    def condition_on_pending(self, Xp: np.ndarray) -> Surrogate: ...


class GaussianProcess:
    """A GP conditioned on (X, y) with fixed hyperparameters.

    `condition_on_pending` returns a copy whose variance also accounts for points being
    evaluated, with the mean unchanged: this is both the kriging believer (fantasized values
    equal to the predicted mean) and GP-BUCB's exact variance reduction. The variance uses an
    explicit inverse of K + noise I (from the Cholesky factor, grown by block updates for
    pending points), so predictions are matrix products rather than triangular solves.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, params: GPParams) -> None:
        self.params = params
        self.lengthscales = np.exp(np.array(params.log_lengthscales))
        self.signal = math.exp(params.log_signal)
        self.noise = math.exp(params.log_noise)
        self.X = X
        self.y = y
        K = matern52(X, X, self.lengthscales, self.signal) + self.noise * np.eye(len(X))
        L = safe_cholesky(K)
        self.chol = L
        self.alpha = cho_solve((L, True), y)
        self.X_var = X
        self.K_inv = _inverse_from_cholesky(L)

    def solve(self, B: np.ndarray) -> np.ndarray:
        """(K + noise I)^-1 B over the observed points, from the stored Cholesky factor."""
        return cho_solve((self.chol, True), B)

    def posterior_mean(self) -> PosteriorMean:
        """The mean over the observed points only (pending points never move the mean)."""
        return PosteriorMean(self.X, self.alpha, self.lengthscales, self.signal)

    def with_targets(self, y: np.ndarray) -> GaussianProcess:
        """The same inputs and kernel with other targets, in O(n^2): the transfer model refits
        its residuals after re-estimating how the prior maps onto the study's values."""
        out = object.__new__(GaussianProcess)
        out.__dict__.update(self.__dict__)
        out.y = y
        out.alpha = self.solve(y)
        return out

    def condition_on_pending(self, Xp: np.ndarray) -> GaussianProcess:
        if len(Xp) == 0:
            return self
        out = object.__new__(GaussianProcess)
        out.__dict__.update(self.__dict__)
        Kxp = matern52(self.X_var, Xp, self.lengthscales, self.signal)
        Kpp = matern52(Xp, Xp, self.lengthscales, self.signal) + self.noise * np.eye(len(Xp))
        B = self.K_inv @ Kxp
        S_inv = cho_solve((safe_cholesky(Kpp - Kxp.T @ B), True), np.eye(len(Xp)))
        BS = B @ S_inv
        out.K_inv = np.block([[self.K_inv + BS @ B.T, -BS], [-BS.T, S_inv]])
        out.X_var = np.vstack([self.X_var, Xp])
        return out

    def predict(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Kv = matern52(Xq, self.X_var, self.lengthscales, self.signal)
        mean = Kv[:, : len(self.X)] @ self.alpha
        var = np.maximum(self.signal - ((Kv @ self.K_inv) * Kv).sum(1), 1e-12)
        return mean, np.sqrt(var)

    def predict_with_grad(
        self, Xq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """mean, std and their gradients with respect to each query point."""
        n = len(self.X)
        inv_l2 = 1.0 / self.lengthscales**2
        r = _distance(Xq, self.X_var, self.lengthscales)
        e = np.exp(-_SQRT5 * r)
        Kv = self.signal * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * e
        C = -(5.0 / 3.0) * self.signal * (1.0 + _SQRT5 * r) * e
        mean = Kv[:, :n] @ self.alpha
        Ca = C[:, :n] * self.alpha[None, :]
        dmean = (Xq * Ca.sum(1)[:, None] - Ca @ self.X) * inv_l2
        W = Kv @ self.K_inv
        var = np.maximum(self.signal - (W * Kv).sum(1), 1e-12)
        std = np.sqrt(var)
        Cw = C * W
        dvar = -2.0 * (Xq * Cw.sum(1)[:, None] - Cw @ self.X_var) * inv_l2
        return mean, std, dmean, dvar / (2.0 * std[:, None])


class PosteriorMean:
    """The mean alone of a GP posterior (`GaussianProcess.posterior_mean`).

    Lower levels of a transfer prior are only asked for their mean, at O(m n d) per query
    instead of the O(m n^2) of a variance, and with its gradient for the maximizer.
    """

    def __init__(self, X: np.ndarray, alpha: np.ndarray, lengthscales: np.ndarray, signal: float):
        self.X = X
        self.alpha = alpha
        self.lengthscales = lengthscales
        self.signal = signal

    def mean(self, Xq: np.ndarray) -> np.ndarray:
        return matern52(Xq, self.X, self.lengthscales, self.signal) @ self.alpha

    def mean_with_grad(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean and its gradient with respect to each query point: (m,), (m, d)."""
        r = _distance(Xq, self.X, self.lengthscales)
        e = np.exp(-_SQRT5 * r)
        Kv = self.signal * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * e
        Ca = -(5.0 / 3.0) * self.signal * (1.0 + _SQRT5 * r) * e * self.alpha[None, :]
        dmean = (Xq * Ca.sum(1)[:, None] - Ca @ self.X) / self.lengthscales**2
        return Kv @ self.alpha, dmean


def _neg_log_posterior(
    theta: np.ndarray, X: np.ndarray, y: np.ndarray, ls_centre: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    n, d = X.shape
    ls = np.exp(theta[:d])
    signal, noise = math.exp(theta[d]), math.exp(theta[d + 1])
    r = _distance(X, X, ls)
    e = np.exp(-_SQRT5 * r)
    Kf = signal * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * e
    L = np.linalg.cholesky(Kf + (noise + 1e-10) * np.eye(n))
    alpha = cho_solve((L, True), y)
    nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(L)).sum()) + 0.5 * n * math.log(2 * math.pi)
    Kinv = cho_solve((L, True), np.eye(n))
    G = np.outer(alpha, alpha) - Kinv
    M = G * ((5.0 / 3.0) * signal * (1.0 + _SQRT5 * r) * e)
    grad = np.empty(d + 2)
    grad[:d] = -0.5 * (2.0 * (X * X).T @ M.sum(1) - 2.0 * (X * (M @ X)).sum(0)) / ls**2
    grad[d] = -0.5 * float((G * Kf).sum())
    grad[d + 1] = -0.5 * noise * float(np.trace(G))

    mu_l, s_l = _lengthscale_prior(d)
    centre = mu_l if ls_centre is None else ls_centre
    nlp = 0.5 * float((((theta[:d] - centre) / s_l) ** 2).sum())
    nlp += 0.5 * float((theta[d] - _SIGNAL_PRIOR[0]) / _SIGNAL_PRIOR[1]) ** 2
    nlp += 0.5 * float((theta[d + 1] - _NOISE_PRIOR[0]) / _NOISE_PRIOR[1]) ** 2
    grad[:d] += (theta[:d] - centre) / s_l**2
    grad[d] += (theta[d] - _SIGNAL_PRIOR[0]) / _SIGNAL_PRIOR[1] ** 2
    grad[d + 1] += (theta[d + 1] - _NOISE_PRIOR[0]) / _NOISE_PRIOR[1] ** 2
    return nll + nlp, grad


def fit_params(
    X: np.ndarray,
    y: np.ndarray,
    *,
    starts: Sequence[GPParams],
    max_iter: int = 200,
    lengthscale_centre: Sequence[float] | None = None,
) -> GPParams | None:
    """MAP hyperparameters by L-BFGS-B from each start; the best wins.

    `lengthscale_centre` moves the centre of the log-lengthscale prior (same spread): a
    warm-started study's residual GP centres it on the lengthscales the earlier study's GP
    learned (service/optimizer/transfer.py).

    Returns None when every start fails (non-finite objective, Cholesky failure): the caller
    then keeps its previous parameters or the prior mode (see `GPParams.default`).
    """
    d = X.shape[1]
    bounds = [_LOG_L_BOUNDS] * d + [_LOG_SIGNAL_BOUNDS, _LOG_NOISE_BOUNDS]
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    ls_centre = None if lengthscale_centre is None else np.array(lengthscale_centre)
    best: tuple[float, np.ndarray] | None = None
    for start in starts:
        theta0 = np.clip(start.theta, lo, hi)
        try:
            with np.errstate(all="ignore"):
                res = minimize(
                    _neg_log_posterior,
                    theta0,
                    args=(X, y, ls_centre),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    options={"maxiter": max_iter},
                )
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            logger.debug("GP fit from one start failed: %s", exc)
            continue
        ok = np.isfinite(res.fun) and np.all(np.isfinite(res.x))
        if ok and (best is None or res.fun < best[0]):
            best = (float(res.fun), res.x)
    return None if best is None else GPParams.from_theta(best[1])
